//! Snapshots: what exporters read. Plain data, replaced twice a second; readers hold an
//! `Arc` to the latest and never block the aggregator or the lanes.

use std::time::Duration;

use serde::Serialize;

use crate::cql::ErrorKind;

/// A Prometheus-style histogram: counts per bucket (not cumulative; the last is +Inf), with
/// the sum and count of observations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Buckets {
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Buckets {
    pub fn new(bounds: usize) -> Buckets {
        Buckets {
            counts: vec![0; bounds + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }

    /// Adds an HDR histogram (in nanoseconds) to the buckets whose upper bounds are
    /// `bounds_ns`. Each HDR bin goes to the first bucket whose bound covers the bin's highest
    /// equivalent value: a value is never counted below its bucket.
    pub fn add_hdr<T: hdrhistogram::Counter>(
        &mut self,
        h: &hdrhistogram::Histogram<T>,
        bounds_ns: &[u64],
    ) {
        if h.is_empty() {
            return;
        }
        for v in h.iter_recorded() {
            let value = h.highest_equivalent(v.value_iterated_to());
            let n = v.count_at_value().as_u64();
            let i = bounds_ns.partition_point(|&b| b < value);
            self.counts[i] += n;
        }
        self.count += h.len();
        self.sum_seconds += h.mean() * h.len() as f64 / 1e9;
    }

    /// Cumulative counts, as `le` buckets are exposed.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.iter().scan(0u64, |acc, c| {
            *acc += c;
            Some(*acc)
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OpSnapshot {
    pub name: String,
    pub ok: u64,
    pub errors: [u64; ErrorKind::COUNT],
    pub rows: u64,
    pub bytes: u64,
    pub retries: u64,
    pub service: Buckets,
    pub response: Buckets,
}

impl OpSnapshot {
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// What the engine says about itself when a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gauges {
    pub phase: Phase,
    pub paused: bool,
    pub target_rate: f64,
    pub in_flight_limit: u64,
    pub reloads_applied: u64,
    pub reloads_rejected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Connecting,
    Running,
    Draining,
    Done,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Connecting => "connecting",
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Done => "done",
        }
    }
}

/// The phase of a run as operators read it (`cqlpulse_run_phase`, `/status` `run_phase`):
/// the daemon's [`Phase`] with `running` split by the warm-up and by a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    Starting,
    Warmup,
    Measuring,
    Paused,
    Draining,
    Done,
}

impl RunPhase {
    pub const ALL: [RunPhase; 6] = [
        RunPhase::Starting,
        RunPhase::Warmup,
        RunPhase::Measuring,
        RunPhase::Paused,
        RunPhase::Draining,
        RunPhase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Warmup => "warmup",
            RunPhase::Measuring => "measuring",
            RunPhase::Paused => "paused",
            RunPhase::Draining => "draining",
            RunPhase::Done => "done",
        }
    }

    /// `elapsed` is the time since the run started issuing (the snapshot's), `warmup` the
    /// spec's `load.warmup`. A pause wins over the warm-up: nothing is being measured then.
    pub fn of(phase: Phase, paused: bool, elapsed: Duration, warmup: Duration) -> RunPhase {
        match phase {
            Phase::Starting | Phase::Connecting => RunPhase::Starting,
            Phase::Running if paused => RunPhase::Paused,
            Phase::Running if elapsed < warmup => RunPhase::Warmup,
            Phase::Running => RunPhase::Measuring,
            Phase::Draining => RunPhase::Draining,
            Phase::Done => RunPhase::Done,
        }
    }
}

/// Driver state, sampled by the aggregator (never on the request path).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterGauges {
    pub known_hosts: u64,
    pub connected_hosts: u64,
    pub connections: u64,
    /// Speculative executions the driver has started (0 unless enabled).
    pub speculative_executions: u64,
    /// Every node of the node table, in index order: its label value and whether the driver
    /// considers it up (has an open connection to it).
    pub nodes: Vec<NodeState>,
}

/// A node as the driver sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeState {
    pub node: String,
    pub up: bool,
}

/// One node's requests since the start, as coordinator.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSnapshot {
    /// `ADDRESS:PORT`, or `other` for every node past the first 64.
    pub node: String,
    pub up: bool,
    pub in_flight: u64,
    pub ok: u64,
    pub errors: u64,
    /// Service time of its successful requests.
    pub service: Buckets,
    /// The 99th percentile of that service time over the last few seconds (the bound of its
    /// bucket, as PromQL would say), in seconds; 0 without requests.
    pub recent_p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Time since the run started issuing.
    pub elapsed: Duration,
    pub gauges: Gauges,
    pub cluster: ClusterGauges,
    pub ops: Vec<OpSnapshot>,
    /// Per coordinator node, in node-table order.
    pub nodes: Vec<NodeSnapshot>,
    pub lag: Buckets,
    /// Upper bounds of the buckets, in seconds.
    #[serde(skip)]
    pub bounds: std::sync::Arc<[f64]>,
    pub issued: u64,
    pub dropped_backlog: u64,
    /// Ops due before the run ended that were never sent (known once the run has ended).
    pub not_sent_run_ended: u64,
    pub in_flight: u64,
    /// The highest in-flight count seen by any interval so far (sum of per-lane peaks).
    pub peak_in_flight: u64,
    /// Completions per second over the last interval.
    pub achieved_rate: f64,
    /// Exact percentiles over about the last second, from the HDR histograms (the live page).
    pub recent: super::Recent,
}

impl Snapshot {
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(OpSnapshot::errors_total).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_phase_splits_running_by_pause_and_warmup() {
        let s = Duration::from_secs;
        let of = |p, paused, e| RunPhase::of(p, paused, s(e), s(10));
        assert_eq!(of(Phase::Connecting, false, 0), RunPhase::Starting);
        assert_eq!(of(Phase::Running, false, 3), RunPhase::Warmup);
        assert_eq!(of(Phase::Running, false, 10), RunPhase::Measuring);
        assert_eq!(of(Phase::Running, true, 3), RunPhase::Paused);
        assert_eq!(of(Phase::Running, true, 30), RunPhase::Paused);
        assert_eq!(of(Phase::Draining, true, 30), RunPhase::Draining);
        assert_eq!(of(Phase::Done, false, 30), RunPhase::Done);
        // No warm-up: measuring from the first op.
        assert_eq!(
            RunPhase::of(Phase::Running, false, s(0), Duration::ZERO),
            RunPhase::Measuring
        );
    }
}
