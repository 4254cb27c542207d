//! The text exposition of one snapshot. Metric names and labels are pinned by tests: the
//! dashboards and alert rules depend on them.

use std::fmt::Write;

use crate::cql::ErrorKind;
use crate::process::{self, Process};
use crate::stats::{Buckets, Gauges, OpSnapshot, Phase, RunPhase, Snapshot};

/// Constant facts about the run, for `cqlpulse_run_info` and `cqlpulse_build_info`.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub workload: String,
    pub model: String,
    pub shard: u32,
    pub shard_count: u32,
    pub version: &'static str,
    /// Process start, seconds since the Unix epoch.
    pub start_time: f64,
}

/// Which run a scrape comes from, and how far it has got: read at scrape time, apart from the
/// run id. Kept apart from [`RunInfo`] (and rendered by [`render_run_identity`]) so that the
/// exposition can change library without touching how these values are found.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    /// New at every process start (16 hex digits): tells a restarted daemon from the run before.
    pub run_id: String,
    /// Digest of the spec in force; changes when a reload applies a change.
    pub spec_digest: String,
    pub phase: RunPhase,
    /// Instances sharing the workload (the spec's `shard.count`), as a number for alerts.
    pub shard_count: u32,
}

/// Reads one counter of an op's snapshot.
type PerOp = fn(&OpSnapshot) -> u64;

struct Out<'a> {
    s: &'a mut String,
}

impl Out<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.s, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                // Label values come from validated names and closed sets: nothing to escape.
                let _ = write!(self.s, "{k}=\"{v}\"");
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {}", number(value));
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.head(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], b: &Buckets, bounds: &[f64]) {
        let bucket = format!("{name}_bucket");
        for (i, cumulative) in b.cumulative().enumerate() {
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |&x| number(x));
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, b.sum_seconds);
        self.sample(&format!("{name}_count"), labels, b.count as f64);
    }
}

fn number(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Renders everything a scrape returns. `gauges` are read at scrape time, so a control change
/// shows at once rather than with the next snapshot.
pub fn render(s: &Snapshot, gauges: &Gauges, info: &RunInfo, out: &mut String) {
    let mut o = Out { s: out };
    let bounds = &s.bounds;

    o.head(
        "cqlpulse_requests_total",
        "counter",
        "Completed requests (after retries), by op and outcome.",
    );
    for op in &s.ops {
        o.sample(
            "cqlpulse_requests_total",
            &[("op", &op.name), ("outcome", "ok")],
            op.ok as f64,
        );
        o.sample(
            "cqlpulse_requests_total",
            &[("op", &op.name), ("outcome", "error")],
            op.errors_total() as f64,
        );
    }
    o.head(
        "cqlpulse_request_errors_total",
        "counter",
        "Failed requests by op and error kind.",
    );
    for op in &s.ops {
        for kind in ErrorKind::ALL {
            o.sample(
                "cqlpulse_request_errors_total",
                &[("op", &op.name), ("kind", kind.name())],
                op.errors[kind.index()] as f64,
            );
        }
    }
    o.head(
        "cqlpulse_request_duration_seconds",
        "histogram",
        "Service time: request sent to response received.",
    );
    for op in &s.ops {
        o.histogram(
            "cqlpulse_request_duration_seconds",
            &[("op", &op.name)],
            &op.service,
            bounds,
        );
    }
    o.head("cqlpulse_response_time_seconds", "histogram", "Response time: intended start (from the rate schedule) to response; free of coordinated omission. Empty without a rate.");
    for op in &s.ops {
        o.histogram(
            "cqlpulse_response_time_seconds",
            &[("op", &op.name)],
            &op.response,
            bounds,
        );
    }
    o.head(
        "cqlpulse_schedule_lag_seconds",
        "histogram",
        "Schedule lag: intended start to request sent. Empty without a rate.",
    );
    o.histogram("cqlpulse_schedule_lag_seconds", &[], &s.lag, bounds);

    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let singles: [(&str, &str, &str, f64); 9] = [
        (
            "cqlpulse_in_flight_requests",
            "gauge",
            "Requests sent and not yet answered.",
            s.in_flight as f64,
        ),
        (
            "cqlpulse_in_flight_limit",
            "gauge",
            "The in-flight limit: the model's concurrency, capped by max_in_flight.",
            gauges.in_flight_limit as f64,
        ),
        (
            "cqlpulse_in_flight_peak_requests",
            "gauge",
            "Highest in-flight count seen since the start (sum of per-lane peaks per interval).",
            s.peak_in_flight as f64,
        ),
        (
            "cqlpulse_target_rate",
            "gauge",
            "Operations per second the schedule asks for (0 = unthrottled or paused).",
            gauges.target_rate,
        ),
        (
            "cqlpulse_paused",
            "gauge",
            "1 while the load is paused.",
            flag(gauges.paused),
        ),
        (
            "cqlpulse_ops_issued_total",
            "counter",
            "Requests sent.",
            s.issued as f64,
        ),
        (
            "cqlpulse_connections",
            "gauge",
            "Open connections of the driver.",
            s.cluster.connections as f64,
        ),
        (
            "cqlpulse_known_hosts",
            "gauge",
            "Nodes the driver knows.",
            s.cluster.known_hosts as f64,
        ),
        (
            "cqlpulse_connected_hosts",
            "gauge",
            "Nodes with at least one open connection.",
            s.cluster.connected_hosts as f64,
        ),
    ];
    for (name, kind, help, value) in singles {
        o.single(name, kind, help, value);
    }
    o.head("cqlpulse_ops_dropped_total", "counter", "Scheduled ops never sent: late under on_backlog=drop (backlog), or pending when draining began (draining).");
    o.sample(
        "cqlpulse_ops_dropped_total",
        &[("reason", "backlog")],
        s.dropped_backlog as f64,
    );
    o.sample(
        "cqlpulse_ops_dropped_total",
        &[("reason", "draining")],
        s.dropped_draining as f64,
    );
    let per_op: [(&str, &str, PerOp); 3] = [
        (
            "cqlpulse_retries_total",
            "Retries of idempotent requests after retryable errors.",
            |op| op.retries,
        ),
        ("cqlpulse_rows_total", "Rows returned by reads.", |op| {
            op.rows
        }),
        (
            "cqlpulse_payload_bytes_total",
            "Bytes of bound values sent.",
            |op| op.bytes,
        ),
    ];
    for (name, help, value) in per_op {
        o.head(name, "counter", help);
        for op in &s.ops {
            o.sample(name, &[("op", &op.name)], value(op) as f64);
        }
    }
    o.head(
        "cqlpulse_config_reloads_total",
        "counter",
        "Spec reloads, applied or rejected.",
    );
    o.sample(
        "cqlpulse_config_reloads_total",
        &[("result", "applied")],
        gauges.reloads_applied as f64,
    );
    o.sample(
        "cqlpulse_config_reloads_total",
        &[("result", "rejected")],
        gauges.reloads_rejected as f64,
    );
    o.single(
        "cqlpulse_up",
        "gauge",
        "1 while the run is connected and issuing (phase running).",
        flag(gauges.phase == Phase::Running),
    );

    o.head(
        "cqlpulse_build_info",
        "gauge",
        "Constant 1, labelled with the cqlpulse version.",
    );
    o.sample("cqlpulse_build_info", &[("version", info.version)], 1.0);

    o.single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        info.start_time,
    );
    if let Some(p) = process::read() {
        process_metrics(&mut o, &p);
    }
}

// ---------------------------------------------------------------- run identity (issue 13)
/// `cqlpulse_run_info` (with the run id and spec digest), `cqlpulse_run_phase` and
/// `cqlpulse_shards`. Separate from [`render`] so it can be ported on its own.
pub fn render_run_identity(info: &RunInfo, id: &RunIdentity, out: &mut String) {
    let mut o = Out { s: out };
    let (shard, count) = (info.shard.to_string(), id.shard_count.to_string());
    o.head(
        "cqlpulse_run_info",
        "gauge",
        "Constant 1, labelled with the run's workload, model, shard, run id (new per process start) and spec digest (changes on reload).",
    );
    o.sample(
        "cqlpulse_run_info",
        &[
            ("workload", &info.workload),
            ("model", &info.model),
            ("shard", &shard),
            ("shard_count", &count),
            ("run_id", &id.run_id),
            ("spec_digest", &id.spec_digest),
        ],
        1.0,
    );
    o.head(
        "cqlpulse_run_phase",
        "gauge",
        "1 for the phase the run is in (starting, warmup, measuring, paused, draining, done), 0 for the others.",
    );
    for phase in RunPhase::ALL {
        o.sample(
            "cqlpulse_run_phase",
            &[("phase", phase.name())],
            if phase == id.phase { 1.0 } else { 0.0 },
        );
    }
    o.single(
        "cqlpulse_shards",
        "gauge",
        "Instances sharing the workload (shard.count).",
        f64::from(id.shard_count),
    );
}

fn process_metrics(o: &mut Out<'_>, p: &Process) {
    let families: [(&str, &str, &str, f64); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent, in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_io_read_bytes_total",
            "counter",
            "Bytes read through system calls (files and sockets).",
            p.io_read_bytes as f64,
        ),
        (
            "process_io_write_bytes_total",
            "counter",
            "Bytes written through system calls (files and sockets).",
            p.io_write_bytes as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        o.single(name, kind, help, value);
    }
}

#[cfg(test)]
mod catalogue;
#[cfg(test)]
mod tests;
