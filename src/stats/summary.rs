//! The end-of-run summary (a table and JSON) and the live status line.

use std::collections::BTreeMap;
use std::fmt::Write;
use tokio::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::lane::{LaneStats, OpStats, histogram};
use super::snapshot::Snapshot;
use super::verdict::Verified;
use crate::cql::ErrorKind;

/// Post-warm-up histograms and counters: the summary's source.
pub struct Measured {
    from: Option<Instant>,
    to: Option<Instant>,
    /// Process CPU seconds when the run started issuing, and when it ended.
    cpu: (f64, f64),
    sigfig: u8,
    ops: Vec<OpStats>,
    lag: Histogram<u64>,
    /// Whole-run counts (warm-up included), each counted where it happens: the ops the
    /// schedule made due in the run's window (by the engine, from the schedule, at the end),
    /// and the requests the lanes gave up at the drain deadline.
    pub scheduled: u64,
    pub abandoned: u64,
}

impl Measured {
    pub fn new(ops: usize, sigfig: u8) -> Measured {
        Measured {
            from: None,
            to: None,
            cpu: (0.0, 0.0),
            sigfig,
            ops: (0..ops).map(|_| OpStats::new(sigfig)).collect(),
            lag: histogram(sigfig),
            scheduled: 0,
            abandoned: 0,
        }
    }

    pub fn start(&mut self, from: Instant) {
        self.from = Some(from);
        self.cpu.0 = crate::process::cpu_seconds().unwrap_or(0.0);
    }

    pub fn finish(&mut self, to: Instant) {
        self.to = Some(to);
        self.cpu.1 = crate::process::cpu_seconds().unwrap_or(0.0);
    }

    pub fn add(&mut self, s: &LaneStats) {
        let _ = self.lag.add(&s.lag);
        for (m, op) in self.ops.iter_mut().zip(&s.ops) {
            if let Some(op) = op {
                m.add(op);
            }
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Percentiles {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1e6,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSummary {
    pub name: String,
    pub count: u64,
    pub ok: u64,
    pub errors: u64,
    /// Non-zero error counts by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub ops_per_second: f64,
    pub rows: u64,
    pub payload_bytes: u64,
    pub retries: u64,
    /// Sent -> response, of successful requests.
    pub service_time: Option<Percentiles>,
    /// Intended start -> response, of successful requests (only with a target rate).
    pub response_time: Option<Percentiles>,
    /// Sent -> error, of failed requests (every kind).
    pub failed_service_time: Option<Percentiles>,
    /// Pages fetched by successful reads, and their mean time per page (the read's service
    /// time over its pages).
    #[serde(default)]
    pub pages: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_page_time_ms: Option<f64>,
    /// Verified reads by verdict, whole run (warm-up included); absent for an op that does
    /// not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// An ANN op's recall, when it is checked (`[ops.recall]`; the whole run, warm-up too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall: Option<super::RecallSummary>,
}

/// The run's result. Its JSON form (`--summary-json`) is a stable interface: fields are only
/// ever added (`engine::tests` reads it back as this type, and pins its keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub workload: String,
    pub model: String,
    /// Seconds measured (after warm-up).
    pub duration_seconds: f64,
    pub ops: Vec<OpSummary>,
    pub total: OpSummary,
    pub schedule_lag: Option<Percentiles>,
    /// Whole-run accounting, warm-up included: every scheduled op is sent, dropped (late
    /// under on_backlog = "drop"), or not sent because the run ended first (with a rate:
    /// due before the end, still queued); every sent one ends ok, failed, or abandoned
    /// (still in flight when draining timed out). Each term is counted on its own (scheduled
    /// from the schedule, abandoned by the lanes at the drain deadline), so the two sums are
    /// checks, not identities.
    pub scheduled: u64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub not_sent_run_ended: u64,
    pub abandoned: u64,
    pub peak_in_flight: u64,
    pub in_flight_limit: u64,
    /// CPU time of the whole cqlpulse process while issuing (warm-up included), and per op
    /// sent, in microseconds.
    pub client_cpu_seconds: f64,
    pub client_cpu_us_per_op: f64,
    /// Peak resident memory of the process so far.
    pub peak_rss_bytes: u64,
}

/// The ops' verdicts, from the whole run (a row missing in the warm-up is still missing), and
/// all of them together in `total`.
fn with_verdicts(
    mut ops: Vec<OpSummary>,
    mut total: OpSummary,
    last: &Snapshot,
) -> (Vec<OpSummary>, OpSummary) {
    let mut all = Verified::default();
    for (op, snap) in ops.iter_mut().zip(&last.ops) {
        if !snap.verified.is_empty() {
            op.verified = Some(snap.verified);
            all.add(&snap.verified);
        }
    }
    total.verified = Some(all).filter(|v| !v.is_empty());
    (ops, total)
}

/// One op's figures over the measured `secs` (its recall and verdicts are added after).
fn op_summary(name: &str, op: &OpStats, secs: f64, sigfig: u8) -> OpSummary {
    let errors = op.error_count();
    OpSummary {
        name: name.to_string(),
        count: op.ok + errors,
        ok: op.ok,
        errors,
        errors_by_kind: ErrorKind::ALL
            .iter()
            .filter(|k| op.errors[k.index()] > 0)
            .map(|k| (k.name().to_string(), op.errors[k.index()]))
            .collect(),
        ops_per_second: if secs > 0.0 {
            (op.ok + errors) as f64 / secs
        } else {
            0.0
        },
        rows: op.rows,
        payload_bytes: op.bytes,
        retries: op.retries,
        service_time: Percentiles::of(&op.service),
        response_time: Percentiles::of(&op.response),
        failed_service_time: op
            .failed
            .as_ref()
            .and_then(|f| Percentiles::of(&f.service_all(sigfig))),
        pages: op.pages,
        mean_page_time_ms: (op.pages > 0).then(|| op.paged_ns as f64 / 1e6 / op.pages as f64),
        verified: None,
        recall: None,
    }
}

impl Summary {
    pub fn new(
        workload: &str,
        model: &str,
        names: &[String],
        m: &Measured,
        last: &Snapshot,
    ) -> Summary {
        let secs = match (m.from, m.to) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let summarize = |name: &str, op: &OpStats| op_summary(name, op, secs, m.sigfig);
        let ops: Vec<OpSummary> = names
            .iter()
            .zip(&m.ops)
            .zip(&last.ops)
            .map(|((n, op), snap)| OpSummary {
                recall: snap.recall.as_ref().map(super::RecallSummary::from),
                ..summarize(n, op)
            })
            .collect();
        let mut all = OpStats::new(m.sigfig);
        for op in &m.ops {
            all.add(op);
        }
        let (ops, total) = with_verdicts(ops, summarize("total", &all), last);
        let ok = last.ok();
        let failed = last.errors();
        let dropped = last.dropped_backlog;
        let not_sent = last.not_sent_run_ended;
        Summary {
            workload: workload.to_string(),
            model: model.to_string(),
            duration_seconds: secs,
            total,
            ops,
            schedule_lag: Percentiles::of(&m.lag),
            scheduled: m.scheduled,
            sent: last.issued,
            ok,
            failed,
            dropped,
            not_sent_run_ended: not_sent,
            abandoned: m.abandoned,
            peak_in_flight: last.peak_in_flight,
            in_flight_limit: last.gauges.in_flight_limit,
            client_cpu_seconds: m.cpu.1 - m.cpu.0,
            client_cpu_us_per_op: if last.issued > 0 {
                (m.cpu.1 - m.cpu.0) * 1e6 / last.issued as f64
            } else {
                0.0
            },
            peak_rss_bytes: last.process.map_or(0, |p| p.peak_resident_bytes),
        }
    }

    /// Verified reads and pages, one line per op that has them.
    fn reads_table(&self, out: &mut String) {
        for op in &self.ops {
            if let Some(v) = &op.verified {
                let _ = writeln!(
                    out,
                    "verified reads of {}: ok {}, missing {}, mismatch {} (skipped, nothing acknowledged yet: {})",
                    op.name, v.ok, v.missing, v.mismatch, v.skipped
                );
            }
            if let Some(ms) = op.mean_page_time_ms {
                let _ = writeln!(
                    out,
                    "pages of {}: {} ({:.1} rows and {ms:.3} ms per page)",
                    op.name,
                    op.pages,
                    op.rows as f64 / op.pages as f64
                );
            }
        }
    }

    /// Per op: the recall of an ANN op with `[ops.recall]` that ran (and the checks made),
    /// then the errors by kind of an op that had some.
    fn op_lines(&self, out: &mut String) {
        for op in self.ops.iter().filter(|o| o.count > 0) {
            if let Some(r) = &op.recall {
                let _ = writeln!(
                    out,
                    "recall of {}: {} over {} checked queries ({} of {} neighbours), skipped {} over the CPU budget, {} with the queue full",
                    op.name,
                    r.recall.map_or("-".to_string(), |x| format!("{x:.4}")),
                    r.checked,
                    r.hits,
                    r.expected,
                    r.skipped_budget,
                    r.skipped_queue
                );
            }
        }
        for op in self.ops.iter().filter(|o| !o.errors_by_kind.is_empty()) {
            let kinds: Vec<String> = op
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "errors of {}: {}", op.name, kinds.join(", "));
        }
    }

    /// The one-screen table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cqlpulse: workload `{}`, model {}, {:.1} s measured",
            self.workload, self.model, self.duration_seconds
        );
        let header = format!(
            "{:<14} {:>10} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "op", "count", "ops/s", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        let rows = |out: &mut String, pick: &dyn Fn(&OpSummary) -> Option<&Percentiles>| {
            let _ = writeln!(out, "{header}");
            for op in self.ops.iter().chain(std::iter::once(&self.total)) {
                if op.count == 0 && op.name != "total" {
                    continue;
                }
                let p = pick(op);
                let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                let _ = writeln!(
                    out,
                    "{:<14} {:>10} {:>10.1} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
                    op.name,
                    op.count,
                    op.ops_per_second,
                    op.errors,
                    f(p.map(|p| p.p50_ms)),
                    f(p.map(|p| p.p90_ms)),
                    f(p.map(|p| p.p99_ms)),
                    f(p.map(|p| p.p999_ms)),
                    f(p.map(|p| p.max_ms)),
                );
            }
        };
        let _ = writeln!(out, "service time of successes (sent -> response):");
        rows(&mut out, &|o| o.service_time.as_ref());
        if self.total.response_time.is_some() {
            let _ = writeln!(
                out,
                "response time (intended start -> response, free of coordinated omission):"
            );
            rows(&mut out, &|o| o.response_time.as_ref());
        }
        if let Some(lag) = &self.schedule_lag {
            let _ = writeln!(
                out,
                "schedule lag (intended -> sent): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                lag.p50_ms, lag.p99_ms, lag.max_ms
            );
        }
        self.reads_table(&mut out);
        self.op_lines(&mut out);
        let _ = writeln!(
            out,
            "scheduled {}: sent {} (ok {}, failed {}, abandoned {}), dropped {}, not sent (run ended) {}; peak in flight {} of {}",
            self.scheduled,
            self.sent,
            self.ok,
            self.failed,
            self.abandoned,
            self.dropped,
            self.not_sent_run_ended,
            self.peak_in_flight,
            self.in_flight_limit
        );
        let _ = writeln!(
            out,
            "client: {:.2} s CPU, {:.2} us per op; peak RSS {:.1} MiB",
            self.client_cpu_seconds,
            self.client_cpu_us_per_op,
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0)
        );
        out
    }
}

/// One line of progress: on stderr when it is a terminal, as a log event otherwise.
pub fn status_line(s: &Snapshot) {
    let p99 = s
        .ops
        .iter()
        .map(|o| quantile(&o.service, &s.bounds, 0.99))
        .fold(0.0, f64::max);
    let target = if s.gauges.target_rate > 0.0 {
        format!(" (target {:.0})", s.gauges.target_rate)
    } else {
        String::new()
    };
    let line = format!(
        "[{:>6.1}s] {:<8} {:>9.0} ops/s{} | p99 <= {} | in flight {}/{} | ok {} | errors {} | dropped {}",
        s.elapsed.as_secs_f64(),
        s.gauges.phase.name(),
        s.achieved_rate,
        target,
        format_seconds(p99),
        s.in_flight,
        s.gauges.in_flight_limit,
        s.ok(),
        s.errors(),
        s.dropped_backlog,
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Not eprintln!, which panics when stderr cannot be written.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
    } else {
        tracing::info!("{line}");
    }
}

/// The bucket bound below which a fraction `q` of the observations fall (as PromQL would
/// bound it, without interpolation).
pub fn quantile(b: &super::snapshot::Buckets, bounds: &[f64], q: f64) -> f64 {
    if b.count == 0 {
        return 0.0;
    }
    let rank = (q * b.count as f64).ceil() as u64;
    for (i, c) in b.cumulative().enumerate() {
        if c >= rank {
            return bounds.get(i).copied().unwrap_or(f64::INFINITY);
        }
    }
    f64::INFINITY
}

fn format_seconds(s: f64) -> String {
    if s.is_infinite() {
        "+Inf".to_string()
    } else if s < 1e-3 {
        format!("{:.0} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}
