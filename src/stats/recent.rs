//! Exact latency percentiles over the last second, per op: what the live page draws as lines.
//! The cumulative buckets of a snapshot can only say "below 2 ms"; these come from the lanes'
//! own HDR histograms, merged by the aggregator (never on the request path).
//!
//! The window is the last two publish intervals (about a second at two snapshots a second):
//! each interval's histograms are kept until the next one ends, so a reader sampling every
//! second sees every request once, and one sampling twice a second sees a smoothed line.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::lane::{OpStats, histogram};
use super::summary::Percentiles;

/// Percentiles of one op over the window; `None` when nothing completed in it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RecentLatency {
    /// Requests recorded in the window (successes and failures, as the service histogram).
    pub count: u64,
    pub service: Option<Percentiles>,
    pub response: Option<Percentiles>,
}

/// The window's percentiles, published with every snapshot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Recent {
    /// Seconds the window covers.
    pub window_seconds: f64,
    /// One per op, in the plan's order.
    pub ops: Vec<RecentLatency>,
    pub schedule_lag: Option<Percentiles>,
}

/// Two halves (the interval in progress and the previous one) of one latency.
struct Halves {
    current: Histogram<u64>,
    previous: Histogram<u64>,
}

impl Halves {
    fn new(sigfig: u8) -> Halves {
        Halves {
            current: histogram(sigfig),
            previous: histogram(sigfig),
        }
    }

    fn add(&mut self, h: &Histogram<u64>) {
        // Same bounds and precision everywhere: adding cannot fail.
        let _ = self.current.add(h);
    }

    /// Percentiles of both halves, merged in `scratch`; then the current half becomes the
    /// previous one. No allocation: the histograms keep their (fixed) sizes.
    fn roll(&mut self, scratch: &mut Histogram<u64>) -> Option<Percentiles> {
        scratch.reset();
        let _ = scratch.add(&self.previous);
        let _ = scratch.add(&self.current);
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.reset();
        Percentiles::of(scratch)
    }
}

/// The aggregator's side: fed with every lane report, rolled with every snapshot.
pub struct RecentWindow {
    ops: Vec<(Halves, Halves)>,
    lag: Halves,
    scratch: Histogram<u64>,
    /// Length of the interval in progress and of the previous one.
    intervals: (std::time::Duration, std::time::Duration),
}

impl RecentWindow {
    pub fn new(ops: usize, sigfig: u8) -> RecentWindow {
        RecentWindow {
            ops: (0..ops)
                .map(|_| (Halves::new(sigfig), Halves::new(sigfig)))
                .collect(),
            lag: Halves::new(sigfig),
            scratch: histogram(sigfig),
            intervals: Default::default(),
        }
    }

    pub fn add_op(&mut self, op: usize, stats: &OpStats) {
        if let Some((service, response)) = self.ops.get_mut(op) {
            service.add(&stats.service);
            response.add(&stats.response);
        }
    }

    pub fn add_lag(&mut self, lag: &Histogram<u64>) {
        self.lag.add(lag);
    }

    /// Closes the interval in progress, `length` long, and returns the window's percentiles.
    pub fn roll(&mut self, length: std::time::Duration) -> Recent {
        self.intervals = (length, self.intervals.0);
        let scratch = &mut self.scratch;
        let ops = self
            .ops
            .iter_mut()
            .map(|(service, response)| {
                let count = service.current.len() + service.previous.len();
                RecentLatency {
                    count,
                    service: service.roll(scratch),
                    response: response.roll(scratch),
                }
            })
            .collect();
        Recent {
            window_seconds: (self.intervals.0 + self.intervals.1).as_secs_f64(),
            ops,
            schedule_lag: self.lag.roll(scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stats(values_us: &[u64]) -> OpStats {
        let mut s = OpStats::new(3);
        for v in values_us {
            s.service.record(v * 1_000).unwrap();
            s.response.record(v * 2_000).unwrap();
        }
        s
    }

    #[test]
    fn window_covers_two_intervals_then_forgets() {
        let mut w = RecentWindow::new(2, 3);
        // Interval 1: op 0 gets 1..=100 µs.
        w.add_op(0, &stats(&(1..=100).collect::<Vec<_>>()));
        let r = w.roll(Duration::from_millis(500));
        let s = r.ops[0].service.clone().unwrap();
        assert_eq!(r.ops[0].count, 100);
        assert!((s.p50_ms - 0.050).abs() < 0.0001, "{s:?}");
        assert!((s.max_ms - 0.100).abs() < 0.0001, "{s:?}");
        let resp = r.ops[0].response.clone().unwrap();
        assert!((resp.max_ms - 0.200).abs() < 0.0002, "{resp:?}");
        assert_eq!(r.ops[1], RecentLatency::default(), "op 1 saw nothing");

        // Interval 2: one slow request; the window still holds interval 1.
        w.add_op(0, &stats(&[5_000]));
        let r = w.roll(Duration::from_millis(500));
        assert_eq!(r.ops[0].count, 101);
        assert!((r.window_seconds - 1.0).abs() < 1e-9);
        let s = r.ops[0].service.clone().unwrap();
        assert!((s.max_ms - 5.0).abs() < 0.01, "{s:?}");

        // Interval 3: nothing new; interval 1 has left the window, interval 2 has not.
        let r = w.roll(Duration::from_millis(500));
        assert_eq!(r.ops[0].count, 1);
        // Interval 4: empty window.
        let r = w.roll(Duration::from_millis(500));
        assert_eq!(r.ops[0].service, None);
        assert_eq!(r.schedule_lag, None);
    }

    #[test]
    fn unknown_op_index_is_ignored() {
        let mut w = RecentWindow::new(1, 3);
        w.add_op(5, &stats(&[10]));
        assert_eq!(w.roll(Duration::from_secs(1)).ops.len(), 1);
    }
}
