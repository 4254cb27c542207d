//! The collector: every metric family, rendered by `prometheus-client` from one published
//! [`Snapshot`]. The families are listed in docs/metrics.md, and `catalogue_tests.rs` holds
//! this file to that list. It is built per scrape from an `Arc` the aggregator already made,
//! so nothing is copied into a registry and the request path never sees it. Metric names and
//! labels are pinned by tests: the dashboards and alert rules depend on them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, MetricEncoder, NativeHistogram,
    NativeHistogramBuckets, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use super::Format;
use crate::cql::ErrorKind;
use crate::stats::{
    Buckets, NATIVE_SCHEMA, NodeSnapshot, OpSnapshot, Phase, RunPhase, Snapshot, Verdict,
};

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
/// run id (see `http::run_identity`).
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

/// Values below this go to the zero bucket of a native histogram. Latencies are at least
/// 100 ns, so it stays empty; it must be above zero for Prometheus to see a native histogram
/// at all (the value client_golang uses).
const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// Everything one scrape shows.
#[derive(Debug)]
pub struct SnapshotCollector {
    /// The one source of every figure (gauges and process statistics included).
    pub snapshot: Arc<Snapshot>,
    pub info: Arc<RunInfo>,
    pub identity: RunIdentity,
    pub format: Format,
}

pub(super) type Labels<'a> = [(&'a str, &'a str)];

/// The label set of a series without labels.
const NONE: &Labels = &[];

/// A per-op counter: name, help, and how to read it from an op's snapshot.
type PerOp = (&'static str, &'static str, fn(&OpSnapshot) -> u64);

/// No exemplars on this histogram (the crate's type for "none").
const NO_EXEMPLARS: Option<&HashMap<usize, Exemplar<NoLabelSet, f64>>> = None;

impl SnapshotCollector {
    /// Pages of reads (for an op once it has fetched one) and verified reads by result (for
    /// an op that verifies, once it has a verdict): series only where there is something to
    /// count, so writes pay nothing.
    fn read_counters(
        &self,
        d: &mut DescriptorEncoder,
        s: &Snapshot,
        op_labels: &[[(&str, &str); 1]],
    ) -> fmt::Result {
        let paged: Vec<(&OpSnapshot, &[(&str, &str); 1])> = s
            .ops
            .iter()
            .zip(op_labels)
            .filter(|(o, _)| o.pages > 0)
            .collect();
        let pages: Vec<(&Labels, u64)> = paged.iter().map(|(o, l)| (&l[..], o.pages)).collect();
        self.counter(
            d,
            "cqlpulse_pages_total",
            "Pages fetched by successful reads.",
            &pages,
        )?;
        let seconds: Vec<(&Labels, f64)> = paged
            .iter()
            .map(|(o, l)| (&l[..], o.paged_seconds))
            .collect();
        self.counter(
            d,
            "cqlpulse_paged_read_seconds_total",
            "Service time of the successful reads counted in pages_total: over it, the time per page.",
            &seconds,
        )?;
        let labels: Vec<[(&str, &str); 2]> = s
            .ops
            .iter()
            .filter(|o| !o.verified.is_empty())
            .flat_map(|o| {
                Verdict::COUNTED
                    .iter()
                    .map(|v| [("op", o.name.as_str()), ("result", v.name())])
            })
            .collect();
        let verified: Vec<(&Labels, u64)> = s
            .ops
            .iter()
            .filter(|o| !o.verified.is_empty())
            .flat_map(|o| Verdict::COUNTED.iter().map(|&v| o.verified.get(v)))
            .zip(&labels)
            .map(|(n, l)| (&l[..], n))
            .collect();
        self.counter(
            d,
            "cqlpulse_verified_reads_total",
            "Verified reads by result: ok, missing (the acknowledged row was not found), mismatch (other values), skipped (nothing acknowledged yet).",
            &verified,
        )
    }

    pub(super) fn counter<V: EncodeCounterValue>(
        &self,
        d: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        samples: &[(&Labels, V)],
    ) -> fmt::Result {
        // The crate adds `_total` to counter samples: the catalogue names the family.
        let family = name.strip_suffix("_total").unwrap_or(name);
        let mut m = d.encode_descriptor(family, help, None, MetricType::Counter)?;
        for (labels, v) in samples {
            m.encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(v, None)?;
        }
        Ok(())
    }

    pub(super) fn gauge<V: EncodeGaugeValue>(
        &self,
        d: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        samples: &[(&Labels, V)],
    ) -> fmt::Result {
        let mut m = d.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, v) in samples {
            m.encode_family(labels)?.encode_gauge(v)?;
        }
        Ok(())
    }

    /// The classic buckets of `b` as (upper bound, count): `+Inf` left implicit in protobuf, as
    /// client_golang does.
    fn classic(&self, b: &Buckets) -> Vec<(f64, u64)> {
        let bounds = &self.snapshot.bounds;
        let mut classic: Vec<(f64, u64)> = b
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (bounds.get(i).copied().unwrap_or(f64::INFINITY), c))
            .collect();
        if self.format == Format::Protobuf {
            classic.pop();
        }
        classic
    }

    /// One histogram: classic buckets (`+Inf` left implicit in protobuf, as client_golang
    /// does), and the native buckets, which only the protobuf encoder writes.
    fn histogram(&self, m: &mut MetricEncoder, labels: &Labels, b: &Buckets) -> fmt::Result {
        let classic = self.classic(b);
        let (spans, deltas) = b.native.spans_and_deltas();
        let native = NativeHistogram {
            schema: NATIVE_SCHEMA,
            zero_threshold: ZERO_THRESHOLD,
            zero_count: 0,
            negative: NativeHistogramBuckets {
                spans: &[],
                deltas: &[],
            },
            positive: NativeHistogramBuckets {
                spans: &spans,
                deltas: &deltas,
            },
            created: None,
        };
        m.encode_family(&labels)?.encode_histogram_with_native(
            b.sum_seconds,
            b.count,
            &classic,
            NO_EXEMPLARS,
            native,
        )
    }

    /// A histogram with classic buckets only: the per-node histograms are counted straight
    /// into the bucket layout by the lanes, without the HDR bins native buckets come from.
    fn classic_histogram(
        &self,
        m: &mut MetricEncoder,
        labels: &Labels,
        b: &Buckets,
    ) -> fmt::Result {
        let classic = self.classic(b);
        m.encode_family(&labels)?
            .encode_histogram(b.sum_seconds, b.count, &classic, NO_EXEMPLARS)
    }

    fn histograms<'a>(
        &self,
        d: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        series: impl Iterator<Item = (Vec<(&'a str, &'a str)>, &'a Buckets)>,
    ) -> fmt::Result {
        let mut m = d.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, b) in series {
            self.histogram(&mut m, &labels, b)?;
        }
        Ok(())
    }

    fn requests(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let ops = &self.snapshot.ops;
        let mut outcomes = Vec::new();
        let mut by_kind = Vec::new();
        let names: Vec<Vec<[(&str, &str); 2]>> = ops
            .iter()
            .map(|op| {
                ErrorKind::ALL
                    .iter()
                    .map(|k| [("op", op.name.as_str()), ("kind", k.name())])
                    .collect()
            })
            .collect();
        let ok_error: Vec<[[(&str, &str); 2]; 2]> = ops
            .iter()
            .map(|op| {
                [
                    [("op", op.name.as_str()), ("outcome", "ok")],
                    [("op", op.name.as_str()), ("outcome", "error")],
                ]
            })
            .collect();
        for (op, [ok, error]) in ops.iter().zip(&ok_error) {
            outcomes.push((&ok[..], op.ok));
            outcomes.push((&error[..], op.errors_total()));
        }
        for (op, kinds) in ops.iter().zip(&names) {
            for (kind, labels) in ErrorKind::ALL.iter().zip(kinds) {
                by_kind.push((&labels[..], op.errors[kind.index()]));
            }
        }
        self.counter(
            d,
            "cqlpulse_requests_total",
            "Completed requests (after retries), by op and outcome.",
            &outcomes,
        )?;
        self.counter(
            d,
            "cqlpulse_request_errors_total",
            "Failed requests by op and error kind.",
            &by_kind,
        )
    }

    /// The latency histograms. Failures have their own series (`outcome="error"`, and by
    /// kind), written once the op has failed at least once: a healthy run does not pay a
    /// series per bucket for errors it never had.
    fn latencies(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let ops = &self.snapshot.ops;
        let by_outcome = |pick: fn(&OpSnapshot) -> (&Buckets, &Buckets)| {
            ops.iter().flat_map(move |op| {
                let (ok, error) = pick(op);
                let failed = op.errors_total() > 0;
                std::iter::once((vec![("op", op.name.as_str()), ("outcome", "ok")], ok)).chain(
                    failed.then(|| (vec![("op", op.name.as_str()), ("outcome", "error")], error)),
                )
            })
        };
        self.histograms(
            d,
            "cqlpulse_request_duration_seconds",
            "Service time: request sent to response received, by outcome.",
            by_outcome(|op| (&op.service, &op.failed_service)),
        )?;
        self.histograms(
            d,
            "cqlpulse_response_time_seconds",
            "Response time: intended start (from the rate schedule) to response, by outcome; free of coordinated omission. Empty without a rate.",
            by_outcome(|op| (&op.response, &op.failed_response)),
        )?;
        self.histograms(
            d,
            "cqlpulse_failed_request_duration_seconds",
            "Service time of failed requests: sent to error, by error kind.",
            ops.iter().flat_map(|op| {
                ErrorKind::ALL
                    .iter()
                    .filter(|k| op.errors[k.index()] > 0)
                    .map(|k| {
                        (
                            vec![("op", op.name.as_str()), ("kind", k.name())],
                            &op.failed_by_kind[k.index()],
                        )
                    })
            }),
        )?;
        self.histograms(
            d,
            "cqlpulse_schedule_lag_seconds",
            "Schedule lag: intended start to request sent. Empty without a rate.",
            std::iter::once((Vec::new(), &self.snapshot.lag)),
        )
    }

    /// The engine's gauges, then its counters ([`Self::engine_counters`]).
    fn engine(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let (s, g) = (&*self.snapshot, &self.snapshot.gauges);
        let flag = |b: bool| u64::from(b);
        let gauges: [(&str, &str, u64); 7] = [
            (
                "cqlpulse_in_flight_requests",
                "Requests sent and not yet answered.",
                s.in_flight,
            ),
            (
                "cqlpulse_in_flight_limit",
                "The in-flight limit: the model's concurrency, capped by max_in_flight.",
                g.in_flight_limit,
            ),
            (
                "cqlpulse_in_flight_peak_requests",
                "Highest in-flight count seen since the start (sum of per-lane peaks per interval).",
                s.peak_in_flight,
            ),
            (
                "cqlpulse_paused",
                "1 while the load is paused.",
                flag(g.paused),
            ),
            (
                "cqlpulse_connections",
                "Open connections of the driver.",
                s.cluster.connections,
            ),
            (
                "cqlpulse_known_hosts",
                "Nodes the driver knows.",
                s.cluster.known_hosts,
            ),
            (
                "cqlpulse_connected_hosts",
                "Nodes with at least one open connection.",
                s.cluster.connected_hosts,
            ),
        ];
        for (name, help, v) in gauges {
            self.gauge(d, name, help, &[(NONE, v)])?;
        }
        self.gauge(
            d,
            "cqlpulse_target_rate",
            "Operations per second the schedule asks for (0 = unthrottled or paused).",
            &[(NONE, g.target_rate)],
        )?;
        self.gauge(
            d,
            "cqlpulse_up",
            "1 while the run is connected and issuing (phase running).",
            &[(NONE, flag(g.phase == Phase::Running))],
        )?;
        self.engine_counters(d)
    }

    /// Ops sent and dropped, per-op counters, and reloads.
    fn engine_counters(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let (s, g) = (&*self.snapshot, &self.snapshot.gauges);
        self.counter(
            d,
            "cqlpulse_ops_issued_total",
            "Requests sent.",
            &[(NONE, s.issued)],
        )?;
        self.counter(
            d,
            "cqlpulse_ops_dropped_total",
            "Scheduled ops never sent: late under on_backlog=drop (backlog), or due but not sent when the run ended (run_ended).",
            &[
                (&[("reason", "backlog")], s.dropped_backlog),
                (&[("reason", "run_ended")], s.not_sent_run_ended),
            ],
        )?;
        let per_op: [PerOp; 3] = [
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
        let op_labels: Vec<[(&str, &str); 1]> =
            s.ops.iter().map(|op| [("op", op.name.as_str())]).collect();
        for (name, help, value) in per_op {
            let samples: Vec<(&Labels, u64)> = s
                .ops
                .iter()
                .zip(&op_labels)
                .map(|(op, l)| (&l[..], value(op)))
                .collect();
            self.counter(d, name, help, &samples)?;
        }
        self.read_counters(d, s, &op_labels)?;
        self.counter(
            d,
            "cqlpulse_config_reloads_total",
            "Spec reloads, applied or rejected.",
            &[
                (&[("result", "applied")], g.reloads_applied),
                (&[("result", "rejected")], g.reloads_rejected),
            ],
        )
    }

    fn identity(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let (info, id) = (&self.info, &self.identity);
        let (shard, count) = (info.shard.to_string(), id.shard_count.to_string());
        self.gauge(
            d,
            "cqlpulse_run_info",
            "Constant 1, labelled with the run's workload, model, shard, run id (new per process start) and spec digest (changes on reload).",
            &[(
                &[
                    ("workload", info.workload.as_str()),
                    ("model", info.model.as_str()),
                    ("shard", &shard),
                    ("shard_count", &count),
                    ("run_id", id.run_id.as_str()),
                    ("spec_digest", id.spec_digest.as_str()),
                ],
                1u64,
            )],
        )?;
        let phases: Vec<[(&str, &str); 1]> = RunPhase::ALL
            .iter()
            .map(|p| [("phase", p.name())])
            .collect();
        let samples: Vec<(&Labels, u64)> = RunPhase::ALL
            .iter()
            .zip(&phases)
            .map(|(p, l)| (&l[..], u64::from(*p == id.phase)))
            .collect();
        self.gauge(
            d,
            "cqlpulse_run_phase",
            "1 for the phase the run is in (starting, warmup, measuring, paused, draining, done), 0 for the others.",
            &samples,
        )?;
        self.gauge(
            d,
            "cqlpulse_shards",
            "Instances sharing the workload (shard.count).",
            &[(NONE, u64::from(id.shard_count))],
        )?;
        self.gauge(
            d,
            "cqlpulse_build_info",
            "Constant 1, labelled with the cqlpulse version.",
            &[(&[("version", info.version)], 1u64)],
        )
    }

    /// Per coordinator node: label `node` is `ADDRESS:PORT`, at most 64 values and `other`.
    fn nodes(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let nodes = &self.snapshot.nodes;
        let labels: Vec<[[(&str, &str); 2]; 2]> = nodes
            .iter()
            .map(|n| {
                [
                    [("node", n.node.as_str()), ("outcome", "ok")],
                    [("node", n.node.as_str()), ("outcome", "error")],
                ]
            })
            .collect();
        let mut requests = Vec::new();
        for (n, [ok, error]) in nodes.iter().zip(&labels) {
            requests.push((&ok[..], n.ok));
            requests.push((&error[..], n.errors));
        }
        self.counter(
            d,
            "cqlpulse_node_requests_total",
            "Completed requests (after retries) by the node that coordinated the last attempt, and outcome.",
            &requests,
        )?;
        let node_labels: Vec<[(&str, &str); 1]> =
            nodes.iter().map(|n| [("node", n.node.as_str())]).collect();
        let mut m = d.encode_descriptor(
            "cqlpulse_node_request_duration_seconds",
            "Service time of successful requests, by coordinator node.",
            None,
            MetricType::Histogram,
        )?;
        for (n, l) in nodes.iter().zip(&node_labels) {
            self.classic_histogram(&mut m, &l[..], &n.service)?;
        }
        type PerNode = (&'static str, &'static str, fn(&NodeSnapshot) -> u64);
        let gauges: [PerNode; 2] = [
            (
                "cqlpulse_node_in_flight_requests",
                "Requests sent to the node and not yet answered.",
                |n| n.in_flight,
            ),
            (
                "cqlpulse_node_up",
                "1 while the driver has an open connection to the node (considers it up), else 0.",
                |n| u64::from(n.up),
            ),
        ];
        for (name, help, value) in gauges {
            let samples: Vec<(&Labels, u64)> = nodes
                .iter()
                .zip(&node_labels)
                .map(|(n, l)| (&l[..], value(n)))
                .collect();
            self.gauge(d, name, help, &samples)?;
        }
        self.counter(d, "cqlpulse_speculative_executions_total", "Speculative executions started by the driver (0 unless cluster.speculative_execution is set).", &[(NONE, self.snapshot.cluster.speculative_executions)])
    }

    fn process(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        self.gauge(
            d,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            &[(NONE, self.info.start_time)],
        )?;
        let Some(p) = &self.snapshot.process else {
            return Ok(());
        };
        self.counter(
            d,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent, in seconds.",
            &[(NONE, p.cpu_seconds)],
        )?;
        let gauges: [(&str, &str, u64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                p.max_fds,
            ),
        ];
        for (name, help, v) in gauges {
            self.gauge(d, name, help, &[(NONE, v)])?;
        }
        self.counter(
            d,
            "process_io_read_bytes_total",
            "Bytes read through system calls (files and sockets).",
            &[(NONE, p.io_read_bytes)],
        )?;
        self.counter(
            d,
            "process_io_write_bytes_total",
            "Bytes written through system calls (files and sockets).",
            &[(NONE, p.io_write_bytes)],
        )
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut d: DescriptorEncoder) -> fmt::Result {
        self.requests(&mut d)?;
        self.latencies(&mut d)?;
        self.engine(&mut d)?;
        self.recall(&mut d)?;
        self.nodes(&mut d)?;
        self.identity(&mut d)?;
        self.process(&mut d)
    }
}
