//! Statistics owned by one lane: written by that lane alone (no lock, no atomic), handed to
//! the aggregator as an interval report five times a second, then started afresh.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;

use crate::cql::ErrorKind;
use crate::cql::nodes::SLOTS;

use super::verdict::{Verdict, Verified};

/// Latencies are recorded in nanoseconds, from 100 ns to an hour; slower is clamped.
pub const HIST_LOW_NS: u64 = 100;
pub const HIST_HIGH_NS: u64 = 3_600 * 1_000_000_000;

/// A new empty latency histogram.
pub fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_NS, HIST_HIGH_NS, sigfig)
        .expect("bounds are constant and valid")
}

/// The outcome of one request (after any retries), as the lane saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub op: usize,
    /// The op index: with the seed, it determines every value the request bound.
    pub index: u64,
    /// When the schedule wanted the request sent; `None` without a rate.
    pub intended: Option<Instant>,
    pub sent: Instant,
    pub done: Instant,
    pub result: Result<u64, ErrorKind>,
    /// Rows returned (reads only) are in `result`; bytes of bound values here.
    pub bytes: u64,
    pub retries: u32,
    /// The node of the last attempt (an index of the node table), when one was sent.
    pub node: Option<u8>,
    /// Pages a read fetched (0 for a write).
    pub pages: u32,
    /// What a verified read found.
    pub verdict: Verdict,
}

/// One node's share of a lane's interval: its requests by outcome and the service time of its
/// successes, straight into the exposition's buckets (no HDR histogram per node).
#[derive(Debug, Clone)]
pub struct NodeStats {
    pub ok: u64,
    pub errors: u64,
    /// Counts per bucket (not cumulative; the last is +Inf).
    pub service: Box<[u64]>,
    pub service_sum_ns: u64,
}

impl NodeStats {
    fn new(buckets: usize) -> NodeStats {
        NodeStats {
            ok: 0,
            errors: 0,
            service: vec![0; buckets + 1].into_boxed_slice(),
            service_sum_ns: 0,
        }
    }
}

/// The slowest successful request of an interval, kept raw: the exporter formats its key
/// from the op index only when it renders the exemplar, so the lane never formats text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowest {
    pub index: u64,
    pub service_ns: u64,
    pub done: Instant,
}

/// Latencies of failed requests, created at an op's first failure in an interval.
#[derive(Debug, Clone)]
pub struct Failed {
    /// Sent -> error, per error kind (indexed by [`ErrorKind::index`]), each created at the
    /// first failure of its kind.
    pub service: [Option<Box<Histogram<u64>>>; ErrorKind::COUNT],
    /// Intended start -> error. Empty without a rate.
    pub response: Histogram<u64>,
}

impl Failed {
    fn new(sigfig: u8) -> Failed {
        Failed {
            service: Default::default(),
            response: histogram(sigfig),
        }
    }

    fn add(&mut self, other: &Failed, sigfig: u8) {
        for (mine, theirs) in self.service.iter_mut().zip(&other.service) {
            if let Some(theirs) = theirs {
                let mine = mine.get_or_insert_with(|| Box::new(histogram(sigfig)));
                let _ = mine.add(theirs.as_ref());
            }
        }
        let _ = self.response.add(&other.response);
    }

    /// Service time of every failure, whatever its kind.
    pub fn service_all(&self, sigfig: u8) -> Histogram<u64> {
        let mut all = histogram(sigfig);
        for h in self.service.iter().flatten() {
            let _ = all.add(h.as_ref());
        }
        all
    }
}

#[derive(Debug, Clone)]
pub struct OpStats {
    /// Successful requests, sent -> response.
    pub service: Histogram<u64>,
    /// Successful requests, intended start -> response: free of coordinated omission. Empty
    /// without a rate.
    pub response: Histogram<u64>,
    /// Failed requests: kept apart, so fast rejections and timeouts do not bend the latency
    /// of successes.
    pub failed: Option<Box<Failed>>,
    pub slowest: Option<Slowest>,
    pub ok: u64,
    pub errors: [u64; ErrorKind::COUNT],
    pub rows: u64,
    pub bytes: u64,
    pub retries: u64,
    /// Pages fetched by successful reads, and their service time (a read's whole time, over
    /// all its pages): divided, the time per page beside the service time.
    pub pages: u64,
    pub paged_ns: u64,
    pub verified: Verified,
}

impl OpStats {
    pub fn new(sigfig: u8) -> OpStats {
        OpStats {
            service: histogram(sigfig),
            response: histogram(sigfig),
            failed: None,
            slowest: None,
            ok: 0,
            errors: [0; ErrorKind::COUNT],
            rows: 0,
            bytes: 0,
            retries: 0,
            pages: 0,
            paged_ns: 0,
            verified: Verified::default(),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Adds `other` into `self` (histograms of equal bounds: adding cannot fail).
    pub fn add(&mut self, other: &OpStats) {
        let _ = self.service.add(&other.service);
        let _ = self.response.add(&other.response);
        if let Some(theirs) = &other.failed {
            let sigfig = self.service.sigfig();
            self.failed
                .get_or_insert_with(|| Box::new(Failed::new(sigfig)))
                .add(theirs, sigfig);
        }
        if let Some(theirs) = other.slowest
            && self
                .slowest
                .is_none_or(|s| theirs.service_ns > s.service_ns)
        {
            self.slowest = Some(theirs);
        }
        self.ok += other.ok;
        for (total, n) in self.errors.iter_mut().zip(other.errors) {
            *total += n;
        }
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.retries += other.retries;
        self.pages += other.pages;
        self.paged_ns = self.paged_ns.saturating_add(other.paged_ns);
        self.verified.add(&other.verified);
    }
}

/// One lane's statistics for one interval.
#[derive(Debug, Clone)]
pub struct LaneStats {
    sigfig: u8,
    /// Per op, created when the op first completes on this lane.
    pub ops: Vec<Option<Box<OpStats>>>,
    /// Intended start -> sent. Empty without a rate.
    pub lag: Histogram<u64>,
    pub issued: u64,
    pub dropped_backlog: u64,
    /// Requests given up when draining ran out of time (counted by the lane that gave up).
    pub abandoned: u64,
    pub peak_in_flight: u32,
    /// Per node, indexed by the node table; grown when a node first completes a request here.
    pub nodes: Vec<Option<NodeStats>>,
    /// Upper bounds of the buckets, in nanoseconds.
    node_bounds: Arc<[u64]>,
}

impl LaneStats {
    /// Statistics for `op_count` ops, HDR histograms of `sigfig` digits, per-node service time
    /// in buckets bounded by `node_bounds` (nanoseconds).
    pub fn new(op_count: usize, sigfig: u8, node_bounds: Arc<[u64]>) -> LaneStats {
        LaneStats {
            sigfig,
            nodes: Vec::new(),
            node_bounds,
            ops: vec![None; op_count],
            lag: histogram(sigfig),
            issued: 0,
            dropped_backlog: 0,
            abandoned: 0,
            peak_in_flight: 0,
        }
    }

    /// Requests that completed in this interval, ok or failed.
    pub fn completed(&self) -> u64 {
        self.ops
            .iter()
            .flatten()
            .map(|o| o.ok + o.error_count())
            .sum()
    }

    /// Hands over this interval's statistics and starts a fresh one.
    pub fn take(&mut self) -> LaneStats {
        let next = LaneStats::new(self.ops.len(), self.sigfig, self.node_bounds.clone());
        std::mem::replace(self, next)
    }

    #[inline]
    pub fn record_sent(&mut self, intended: Option<Instant>, sent: Instant, in_flight: u32) {
        self.issued += 1;
        if in_flight > self.peak_in_flight {
            self.peak_in_flight = in_flight;
        }
        if let Some(t) = intended {
            self.lag
                .saturating_record(nanos(sent.saturating_duration_since(t)));
        }
    }

    #[inline]
    pub fn record(&mut self, s: &Sample) {
        let sigfig = self.sigfig;
        let op = self.ops[s.op].get_or_insert_with(|| Box::new(OpStats::new(sigfig)));
        let service = nanos(s.done.saturating_duration_since(s.sent));
        let response = s
            .intended
            .map(|t| nanos(s.done.saturating_duration_since(t)));
        op.bytes += s.bytes;
        op.retries += u64::from(s.retries);
        match s.result {
            Ok(rows) => {
                op.ok += 1;
                op.rows += rows;
                if s.pages > 0 {
                    op.pages += u64::from(s.pages);
                    op.paged_ns = op.paged_ns.saturating_add(service);
                }
                op.verified.count(s.verdict);
                op.service.saturating_record(service);
                if let Some(r) = response {
                    op.response.saturating_record(r);
                }
                if op.slowest.is_none_or(|w| service > w.service_ns) {
                    op.slowest = Some(Slowest {
                        index: s.index,
                        service_ns: service,
                        done: s.done,
                    });
                }
            }
            Err(kind) => {
                op.errors[kind.index()] += 1;
                // Allocates at an op's first failure (of a kind) in the interval only.
                let failed = op
                    .failed
                    .get_or_insert_with(|| Box::new(Failed::new(sigfig)));
                failed.service[kind.index()]
                    .get_or_insert_with(|| Box::new(histogram(sigfig)))
                    .saturating_record(service);
                if let Some(r) = response {
                    failed.response.saturating_record(r);
                }
            }
        }
        if let Some(n) = s.node {
            self.record_node(n as usize, s.result.is_ok(), service);
        }
    }

    #[inline]
    fn record_node(&mut self, n: usize, ok: bool, service_ns: u64) {
        if n >= SLOTS {
            return;
        }
        if n >= self.nodes.len() {
            self.nodes.resize(n + 1, None);
        }
        let buckets = self.node_bounds.len();
        let node = self.nodes[n].get_or_insert_with(|| NodeStats::new(buckets));
        if ok {
            node.ok += 1;
            let i = self.node_bounds.partition_point(|&b| b < service_ns);
            node.service[i] += 1;
            node.service_sum_ns = node.service_sum_ns.saturating_add(service_ns);
        } else {
            node.errors += 1;
        }
    }
}

#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// What a lane hands over: an interval of statistics and its state at the end of it.
#[derive(Debug)]
pub struct LaneReport {
    pub lane: usize,
    /// When the interval ended.
    pub at: Instant,
    pub stats: LaneStats,
    pub in_flight: u32,
    /// The interval ended before the warm-up did: exclude it from the summary.
    pub warmup: bool,
    /// The lane has finished and sends nothing more.
    pub last: bool,
    /// Requests in flight per node (indexed by the node table) when the report was made.
    pub node_in_flight: Box<[u32; SLOTS]>,
}

/// Bucket upper bounds in nanoseconds, from seconds.
pub fn bounds_ns(bounds: &[f64]) -> Arc<[u64]> {
    bounds.iter().map(|s| (s * 1e9).round() as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_three_clocks_and_outcomes() {
        let mut s = LaneStats::new(2, 3, bounds_ns(&[0.001, 0.004]));
        let t0 = Instant::now();
        let sent = t0 + Duration::from_millis(2);
        let done = t0 + Duration::from_millis(5);
        s.record_sent(Some(t0), sent, 3);
        s.record(&Sample {
            op: 1,
            index: 7,
            intended: Some(t0),
            sent,
            done,
            result: Ok(4),
            bytes: 10,
            retries: 1,
            node: Some(2),
            pages: 2,
            verdict: Verdict::Mismatch,
        });
        s.record(&Sample {
            op: 1,
            index: 8,
            intended: None,
            sent,
            done,
            result: Err(ErrorKind::Overloaded),
            bytes: 10,
            retries: 0,
            node: Some(2),
            pages: 0,
            verdict: Verdict::None,
        });
        assert!(s.ops[0].is_none(), "op 0 never ran: no histogram allocated");
        let op = s.ops[1].as_ref().unwrap();
        assert_eq!((op.ok, op.rows, op.bytes, op.retries), (1, 4, 20, 1));
        // Pages and the verdict of the success only; its service time (3 ms) over its pages.
        assert_eq!((op.pages, op.paged_ns), (2, 3_000_000));
        assert_eq!(op.verified.mismatch, 1);
        assert_eq!(op.verified.checked(), 1);
        assert_eq!(op.errors[ErrorKind::Overloaded.index()], 1);
        // The failure is kept apart from the success, under its kind.
        assert_eq!(op.service.len(), 1);
        assert_eq!(op.response.len(), 1);
        let failed = op
            .failed
            .as_ref()
            .expect("a failure allocates its histograms");
        let overloaded = failed.service[ErrorKind::Overloaded.index()]
            .as_ref()
            .unwrap();
        assert_eq!(overloaded.len(), 1);
        assert!(failed.service[ErrorKind::ReadTimeout.index()].is_none());
        assert_eq!(
            failed.response.len(),
            0,
            "no intended start: no response time"
        );
        assert_eq!(op.slowest.map(|w| w.index), Some(7), "the slowest success");
        let service_ms = op.service.value_at_quantile(1.0) as f64 / 1e6;
        let response_ms = op.response.value_at_quantile(1.0) as f64 / 1e6;
        assert!((service_ms - 3.0).abs() < 0.01 && (response_ms - 5.0).abs() < 0.01);
        assert!((s.lag.value_at_quantile(1.0) as f64 / 1e6 - 2.0).abs() < 0.01);
        assert_eq!(s.peak_in_flight, 3);
        assert_eq!(s.nodes.len(), 3, "grown to the node's index");
        let node = s.nodes[2].as_ref().unwrap();
        assert_eq!((node.ok, node.errors), (1, 1));
        // 3 ms of service: above 1 ms, within 4 ms; failures stay out of the buckets.
        assert_eq!(&node.service[..], &[0, 1, 0]);
        assert_eq!(node.service_sum_ns, 3_000_000);
        let old = s.take();
        assert_eq!(old.issued, 1);
        assert_eq!(s.issued, 0);
    }
}
