//! Snapshots: what exporters read. Plain data, replaced twice a second; readers hold an
//! `Arc` to the latest and never block the aggregator or the lanes.

use std::time::Duration;

use serde::Serialize;

use crate::cql::ErrorKind;

/// The schema of the native (exponential) histograms: bucket `i` holds values in
/// `(2^((i-1)/2^s), 2^(i/2^s)]` seconds, so each bucket is 2^(1/64) = 1.1% wide at schema 6.
/// A quantile read by linear interpolation inside one bucket is off by at most that width,
/// plus the HDR bins' own 0.1% (3 significant digits): within 1.2% of the exact value.
pub const NATIVE_SCHEMA: i32 = 6;

/// The native bucket index of `seconds` (> 0) at [`NATIVE_SCHEMA`].
pub fn native_index(seconds: f64) -> i32 {
    (seconds.log2() * f64::from(1 << NATIVE_SCHEMA)).ceil() as i32
}

/// The upper bound, in seconds, of native bucket `index`.
pub fn native_upper_bound(index: i32) -> f64 {
    (f64::from(index) / f64::from(1 << NATIVE_SCHEMA)).exp2()
}

/// Native histogram buckets: dense counts from bucket `offset` on, grown to cover the values
/// seen (a few hundred buckets for latencies spanning a few decades).
#[derive(Debug, Clone, Default)]
pub struct NativeBuckets {
    pub offset: i32,
    pub counts: Vec<u64>,
}

impl NativeBuckets {
    fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    /// Spans of populated buckets and the delta-encoded counts, as the Prometheus protobuf
    /// format wants them: `(offset from the end of the previous span, length)`.
    pub fn spans_and_deltas(&self) -> (Vec<(i32, u32)>, Vec<i64>) {
        let mut spans: Vec<(i32, u32)> = Vec::new();
        let mut deltas = Vec::new();
        let (mut previous, mut next_index) = (0i64, None::<i32>);
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let index = self.offset + i as i32;
            match (next_index, spans.last_mut()) {
                (Some(n), Some(last)) if n == index => last.1 += 1,
                (Some(n), _) => spans.push((index - n, 1)),
                (None, _) => spans.push((index, 1)),
            }
            next_index = Some(index + 1);
            deltas.push(c as i64 - previous);
            previous = c as i64;
        }
        (spans, deltas)
    }
}

/// A Prometheus-style histogram: counts per classic bucket (not cumulative; the last is
/// +Inf), the native buckets, and the sum and count of observations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Buckets {
    pub counts: Vec<u64>,
    #[serde(skip)]
    pub native: NativeBuckets,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Buckets {
    pub fn new(bounds: usize) -> Buckets {
        Buckets {
            counts: vec![0; bounds + 1],
            native: NativeBuckets::default(),
            sum_seconds: 0.0,
            count: 0,
        }
    }

    /// Adds an HDR histogram (in nanoseconds) to the buckets whose upper bounds are
    /// `bounds_ns`, and to the native buckets. Each HDR bin goes by its highest equivalent
    /// value (as the summary's percentiles do): a value is never counted below its bucket.
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
            self.native.add(native_index(value.max(1) as f64 / 1e9), n);
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

/// A recent slow successful request, for an exemplar: the exporter derives its key from the
/// op index (keys are pure functions of the seed and the index).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Exemplar {
    pub index: u64,
    pub seconds: f64,
    /// When it completed, seconds since the Unix epoch.
    pub unix_time: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpSnapshot {
    pub name: String,
    pub ok: u64,
    pub errors: [u64; ErrorKind::COUNT],
    pub rows: u64,
    pub bytes: u64,
    pub retries: u64,
    /// Pages fetched by successful reads, and those reads' service time in seconds.
    pub pages: u64,
    pub paged_seconds: f64,
    /// Verified reads by verdict.
    pub verified: super::Verified,
    /// Successful requests: service time and response time.
    pub service: Buckets,
    pub response: Buckets,
    /// Failed requests, every kind together.
    pub failed_service: Buckets,
    pub failed_response: Buckets,
    /// Failed requests' service time per error kind, indexed by [`ErrorKind::index`].
    pub failed_by_kind: Vec<Buckets>,
    /// The slowest success of the latest interval that had one.
    pub exemplar: Option<Exemplar>,
    /// An ANN op's recall, when it is checked (`[ops.recall]`).
    pub recall: Option<super::RecallStats>,
}

impl OpSnapshot {
    /// An op with nothing recorded, for `bounds` classic bounds.
    pub fn empty(name: &str, bounds: usize) -> OpSnapshot {
        OpSnapshot {
            name: name.to_string(),
            ok: 0,
            errors: [0; ErrorKind::COUNT],
            rows: 0,
            bytes: 0,
            retries: 0,
            pages: 0,
            paged_seconds: 0.0,
            verified: super::Verified::default(),
            service: Buckets::new(bounds),
            response: Buckets::new(bounds),
            failed_service: Buckets::new(bounds),
            failed_response: Buckets::new(bounds),
            failed_by_kind: vec![Buckets::new(bounds); ErrorKind::COUNT],
            exemplar: None,
            recall: None,
        }
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// What the engine says about itself when a snapshot is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Gauges {
    pub phase: Phase,
    /// Connected and issuing (what `/readyz` answers).
    pub ready: bool,
    pub paused: bool,
    pub target_rate: f64,
    /// The stage of `load.stages` in force (held while paused): its index and itself.
    #[serde(skip)]
    pub stage: Option<(usize, crate::plan::Stage)>,
    /// The model's knob and the cap in force, and the in-flight limit they make.
    pub concurrency: u32,
    pub max_in_flight: u32,
    pub in_flight_limit: u64,
    pub reloads_applied: u64,
    pub reloads_rejected: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
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
    /// This process's CPU, memory, descriptors and I/O when the snapshot was taken.
    #[serde(skip)]
    pub process: Option<crate::process::Process>,
}

impl Snapshot {
    /// Successful requests of every op.
    pub fn ok(&self) -> u64 {
        self.ops.iter().map(|o| o.ok).sum()
    }

    /// Failed requests of every op.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(OpSnapshot::errors_total).sum()
    }

    /// Failed requests of every op, of one kind.
    pub fn errors_of(&self, kind: crate::cql::ErrorKind) -> u64 {
        self.ops.iter().map(|o| o.errors[kind.index()]).sum()
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

    #[test]
    fn native_buckets_follow_the_schema_and_encode_as_spans() {
        // Bucket i holds (2^((i-1)/64), 2^(i/64)]: 1 s is the top of bucket 0.
        assert_eq!(native_index(1.0), 0);
        assert_eq!(native_index(1.0001), 1);
        assert_eq!(native_index(0.5), -64);
        let x = 0.00123;
        let i = native_index(x);
        assert!(native_upper_bound(i - 1) < x && x <= native_upper_bound(i));

        let mut n = NativeBuckets::default();
        n.add(5, 2);
        n.add(3, 1);
        n.add(9, 4);
        n.add(6, 1);
        assert_eq!((n.offset, n.counts.len()), (3, 7));
        let (spans, deltas) = n.spans_and_deltas();
        // Buckets 3, 5-6, 9: offsets count from the end of the previous span.
        assert_eq!(spans, vec![(3, 1), (1, 2), (2, 1)]);
        assert_eq!(deltas, vec![1, 1, -1, 3]);
    }

    #[test]
    fn hdr_bins_land_in_classic_and_native_buckets() {
        let mut h =
            hdrhistogram::Histogram::<u64>::new_with_bounds(100, 3_600_000_000_000, 3).unwrap();
        for _ in 0..10 {
            h.record(1_000_000).unwrap(); // 1 ms
        }
        h.record(20_000_000).unwrap(); // 20 ms
        let mut b = Buckets::new(2);
        b.add_hdr(&h, &[2_000_000, 10_000_000]);
        assert_eq!(b.counts, vec![10, 0, 1]);
        assert_eq!(b.count, 11);
        let total: u64 = b.native.counts.iter().sum();
        assert_eq!(total, 11);
        let one_ms = native_index(0.001) - b.native.offset;
        assert_eq!(b.native.counts[one_ms as usize], 10);
    }
}
