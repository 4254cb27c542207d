//! Per-node totals, kept by the aggregator: the lanes' per-node counters and buckets summed
//! since the start, the requests each lane has in flight per node, and a short history of the
//! buckets for a recent p99. Indices are the node table's (`cql::nodes`): when the table
//! gives an index to another address (a node forgotten, its slot reused), the totals of the
//! index start over, and a free index is not listed.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::lane::LaneReport;
use super::snapshot::{Buckets, ClusterGauges, NodeSnapshot};
use super::summary::quantile;
use crate::cql::nodes::{FREE, OTHER, SLOTS, name_of};

/// The window of `recent_p99`: long enough for a few hundred requests at modest rates,
/// short enough to show a node turning slow.
pub const RECENT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct NodeTotal {
    /// The address these totals are for, once the index has had a label value. A slot goes
    /// to another node only in the call that builds the snapshot (`cluster()`), after the
    /// grace period in which the old node received nothing: nothing of the new node has been
    /// absorbed when the totals start over.
    node: Option<String>,
    ok: u64,
    errors: u64,
    service: Buckets,
    /// (when, cumulative counts then) over the last [`RECENT`], oldest first.
    history: VecDeque<(Instant, Vec<u64>)>,
}

impl NodeTotal {
    /// Makes these the totals of `name`: the first name an index has is adopted with what it
    /// has counted; another node in the slot (or none) starts over.
    fn claim(&mut self, name: &str, buckets: usize) {
        match &self.node {
            None => self.node = Some(name.to_string()),
            Some(old) if old != name => {
                *self = NodeTotal {
                    node: Some(name.to_string()),
                    service: Buckets::new(buckets),
                    ..NodeTotal::default()
                };
            }
            Some(_) => {}
        }
    }
}

pub struct NodeTotals {
    buckets: usize,
    nodes: Vec<NodeTotal>,
    /// Per lane, its requests in flight per node at its last report.
    in_flight: Vec<[u32; SLOTS]>,
}

impl NodeTotals {
    /// Totals for buckets with `buckets` upper bounds (plus +Inf).
    pub fn new(buckets: usize) -> NodeTotals {
        NodeTotals {
            buckets,
            nodes: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    fn node(&mut self, i: usize) -> &mut NodeTotal {
        if i >= self.nodes.len() {
            let buckets = self.buckets;
            self.nodes.resize_with(i + 1, || NodeTotal {
                service: Buckets::new(buckets),
                ..NodeTotal::default()
            });
        }
        &mut self.nodes[i]
    }

    pub fn absorb(&mut self, r: &LaneReport) {
        for (i, n) in r.stats.nodes.iter().enumerate() {
            let Some(n) = n else { continue };
            let total = self.node(i);
            total.ok += n.ok;
            total.errors += n.errors;
            for (t, c) in total.service.counts.iter_mut().zip(n.service.iter()) {
                *t += c;
            }
            total.service.count += n.ok;
            total.service.sum_seconds += n.service_sum_ns as f64 / 1e9;
        }
        if r.lane >= self.in_flight.len() {
            self.in_flight.resize(r.lane + 1, [0; SLOTS]);
        }
        self.in_flight[r.lane] = if r.last {
            [0; SLOTS]
        } else {
            *r.node_in_flight
        };
    }

    /// Every node known to the driver or seen in a report, in index order, at `now`.
    pub fn snapshot(
        &mut self,
        cluster: &ClusterGauges,
        bounds: &[f64],
        now: Instant,
    ) -> Vec<NodeSnapshot> {
        let names: Vec<String> = cluster.nodes.iter().map(|n| n.node.clone()).collect();
        let count = names.len().max(self.nodes.len());
        if count == 0 {
            return Vec::new();
        }
        // Nodes the driver knows but that have not coordinated anything yet still show, up or
        // down, with zero requests.
        self.node(count - 1);
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            // Indices past the registered names are unused, but for `other`'s.
            if i >= names.len() && i != OTHER as usize {
                continue;
            }
            let name = name_of(&names, i);
            let buckets = self.buckets;
            let total = &mut self.nodes[i];
            total.claim(name, buckets);
            if name == FREE {
                continue;
            }
            let in_flight: u64 = self.in_flight.iter().map(|l| l[i] as u64).sum();
            // Since the oldest point of the window, or since the start.
            let counts: Vec<u64> = match total.history.front() {
                Some((_, old)) => total
                    .service
                    .counts
                    .iter()
                    .zip(old)
                    .map(|(c, o)| c - o)
                    .collect(),
                None => total.service.counts.clone(),
            };
            let recent = Buckets {
                count: counts.iter().sum(),
                counts,
                sum_seconds: 0.0,
                native: Default::default(),
            };
            total.history.push_back((now, total.service.counts.clone()));
            while total
                .history
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RECENT)
            {
                total.history.pop_front();
            }
            let p99 = quantile(&recent, bounds, 0.99);
            out.push(NodeSnapshot {
                node: name.to_string(),
                up: cluster.nodes.get(i).is_some_and(|n| n.up),
                in_flight,
                ok: total.ok,
                errors: total.errors,
                service: total.service.clone(),
                // Beyond the last bound: say the last bound (JSON has no infinity).
                recent_p99: if p99.is_finite() {
                    p99
                } else {
                    bounds.last().copied().unwrap_or(0.0)
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::lane::{LaneStats, Sample, bounds_ns};
    use crate::stats::snapshot::NodeState;

    fn report(lane: usize, stats: LaneStats, in_flight: [u32; SLOTS], last: bool) -> LaneReport {
        LaneReport {
            lane,
            at: Instant::now(),
            stats,
            in_flight: in_flight.iter().sum(),
            warmup: false,
            last,
            node_in_flight: Box::new(in_flight),
        }
    }

    fn sample(node: u8, ms: u64, ok: bool) -> Sample {
        let sent = Instant::now();
        Sample {
            op: 0,
            intended: None,
            sent,
            done: sent + Duration::from_millis(ms),
            result: if ok {
                Ok(0)
            } else {
                Err(crate::cql::ErrorKind::ClientTimeout)
            },
            bytes: 0,
            index: 0,
            retries: 0,
            node: Some(node),
            pages: 0,
            verdict: crate::stats::Verdict::None,
        }
    }

    #[test]
    fn sums_lanes_per_node_and_lists_known_nodes() {
        let bounds = [0.001, 0.01];
        let mut totals = NodeTotals::new(bounds.len());
        let mut a = LaneStats::new(1, 3, bounds_ns(&bounds));
        let mut b = a.clone();
        for _ in 0..99 {
            a.record(&sample(0, 2, true));
        }
        a.record(&sample(0, 20, true));
        b.record(&sample(1, 2, false));
        let mut in_flight = [0; SLOTS];
        in_flight[1] = 4;
        totals.absorb(&report(0, a, in_flight, false));
        totals.absorb(&report(1, b, in_flight, false));
        let cluster = ClusterGauges {
            nodes: ["127.0.0.1:9042", "127.0.0.2:9042", "127.0.0.3:9042"]
                .iter()
                .enumerate()
                .map(|(i, n)| NodeState {
                    node: n.to_string(),
                    up: i != 1,
                })
                .collect(),
            ..ClusterGauges::default()
        };
        let snap = totals.snapshot(&cluster, &bounds, Instant::now());
        assert_eq!(snap.len(), 3, "the third node shows with no requests");
        assert_eq!((snap[0].ok, snap[0].errors, snap[0].in_flight), (100, 0, 0));
        assert_eq!(&snap[0].service.counts, &[0, 99, 1]);
        assert_eq!(snap[0].recent_p99, 0.01);
        assert_eq!((snap[1].ok, snap[1].errors, snap[1].in_flight), (0, 1, 8));
        assert!(snap[0].up && !snap[1].up && snap[2].up);
        assert_eq!(snap[2].node, "127.0.0.3:9042");
        assert_eq!(snap[2].ok + snap[2].errors, 0);

        // A lane's last report leaves nothing in flight.
        let stats = LaneStats::new(1, 3, bounds_ns(&bounds));
        totals.absorb(&report(1, stats, in_flight, true));
        let snap = totals.snapshot(&cluster, &bounds, Instant::now());
        assert_eq!(snap[1].in_flight, 4);
    }

    #[test]
    fn a_forgotten_node_is_not_listed_and_its_slot_starts_over() {
        let bounds = [0.001, 0.01];
        let mut totals = NodeTotals::new(bounds.len());
        let cluster = |names: &[&str]| ClusterGauges {
            nodes: names
                .iter()
                .map(|n| NodeState {
                    node: n.to_string(),
                    up: true,
                })
                .collect(),
            ..ClusterGauges::default()
        };
        let mut a = LaneStats::new(1, 3, bounds_ns(&bounds));
        a.record(&sample(0, 2, true));
        a.record(&sample(1, 2, true));
        totals.absorb(&report(0, a, [0; SLOTS], false));
        let snap = totals.snapshot(&cluster(&["n0", "n1"]), &bounds, Instant::now());
        assert_eq!((snap[1].node.as_str(), snap[1].ok), ("n1", 1));
        // n1 forgotten: not listed.
        let snap = totals.snapshot(&cluster(&["n0", FREE]), &bounds, Instant::now());
        assert_eq!(snap.len(), 1);
        assert_eq!((snap[0].node.as_str(), snap[0].ok), ("n0", 1));
        // n2 in the freed slot: its own totals from zero, then its own requests.
        let snap = totals.snapshot(&cluster(&["n0", "n2"]), &bounds, Instant::now());
        assert_eq!((snap[1].node.as_str(), snap[1].ok), ("n2", 0));
        let mut b = LaneStats::new(1, 3, bounds_ns(&bounds));
        b.record(&sample(1, 2, true));
        totals.absorb(&report(0, b, [0; SLOTS], false));
        let snap = totals.snapshot(&cluster(&["n0", "n2"]), &bounds, Instant::now());
        assert_eq!((snap[1].ok, snap[1].service.count), (1, 1));
        // Straight from one node to another in one snapshot: starts over too.
        let snap = totals.snapshot(&cluster(&["n0", "n3"]), &bounds, Instant::now());
        assert_eq!((snap[1].node.as_str(), snap[1].ok), ("n3", 0));
    }
}
