//! Exact latency percentiles over the last second, per op: what the live page draws as lines.
//! The cumulative buckets of a snapshot can only say "below 2 ms"; these come from the lanes'
//! own HDR histograms, merged by the aggregator (never on the request path).
//!
//! Windows do not overlap: lane reports are added to the window in progress, and when a
//! snapshot is published at least [`WINDOW`] after the window began, its percentiles are
//! computed once and the window starts again. Snapshots in between carry the last complete
//! window, so a reader sampling once a second sees every request once.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::lane::{OpStats, histogram};
use super::summary::Percentiles;

/// The shortest window; a window ends with the first snapshot after it.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Percentiles of one op over the window; `None` when nothing completed in it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RecentLatency {
    /// Requests recorded in the window (successes and failures, as the service histogram).
    pub count: u64,
    pub service: Option<Percentiles>,
    pub response: Option<Percentiles>,
}

/// The last complete window's percentiles, published with every snapshot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Recent {
    /// Seconds the window covered.
    pub window_seconds: f64,
    /// One per op, in the plan's order.
    pub ops: Vec<RecentLatency>,
    pub schedule_lag: Option<Percentiles>,
}

/// The aggregator's side: fed with every lane report, closed with the first snapshot a
/// [`WINDOW`] after it began. Its histograms have the lanes' fixed bounds: no allocation.
pub struct RecentWindow {
    ops: Vec<(Histogram<u64>, Histogram<u64>)>,
    lag: Histogram<u64>,
    /// Time since the window in progress began.
    open_for: Duration,
    last: Recent,
}

impl RecentWindow {
    pub fn new(ops: usize, sigfig: u8) -> RecentWindow {
        RecentWindow {
            ops: (0..ops)
                .map(|_| (histogram(sigfig), histogram(sigfig)))
                .collect(),
            lag: histogram(sigfig),
            open_for: Duration::ZERO,
            last: Recent::default(),
        }
    }

    pub fn add_op(&mut self, op: usize, stats: &OpStats) {
        if let Some((service, response)) = self.ops.get_mut(op) {
            // Same bounds and precision everywhere: adding cannot fail.
            let _ = service.add(&stats.service);
            let _ = response.add(&stats.response);
        }
    }

    pub fn add_lag(&mut self, lag: &Histogram<u64>) {
        let _ = self.lag.add(lag);
    }

    /// Called with every snapshot, `elapsed` after the previous one: closes the window when it
    /// is a [`WINDOW`] old, and returns the last complete window's percentiles.
    pub fn publish(&mut self, elapsed: Duration) -> Recent {
        self.open_for += elapsed;
        if self.open_for >= WINDOW {
            self.last = Recent {
                window_seconds: self.open_for.as_secs_f64(),
                ops: self
                    .ops
                    .iter_mut()
                    .map(|(service, response)| {
                        let r = RecentLatency {
                            count: service.len(),
                            service: Percentiles::of(service),
                            response: Percentiles::of(response),
                        };
                        service.reset();
                        response.reset();
                        r
                    })
                    .collect(),
                schedule_lag: Percentiles::of(&self.lag),
            };
            self.lag.reset();
            self.open_for = Duration::ZERO;
        }
        self.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values_us: &[u64]) -> OpStats {
        let mut s = OpStats::new(3);
        for v in values_us {
            s.service.record(v * 1_000).unwrap();
            s.response.record(v * 2_000).unwrap();
        }
        s
    }

    const HALF: Duration = Duration::from_millis(500);

    #[test]
    fn a_window_closes_after_a_second_and_windows_do_not_overlap() {
        let mut w = RecentWindow::new(2, 3);
        // First half second: op 0 gets 1..=100 µs; the window is still open.
        w.add_op(0, &stats(&(1..=100).collect::<Vec<_>>()));
        assert_eq!(w.publish(HALF), Recent::default());
        // Second half: one slow request; the window closes with both halves.
        w.add_op(0, &stats(&[5_000]));
        let r = w.publish(HALF);
        assert!((r.window_seconds - 1.0).abs() < 1e-9);
        assert_eq!(r.ops[0].count, 101);
        let s = r.ops[0].service.clone().unwrap();
        assert!((s.p50_ms - 0.051).abs() < 0.0002, "{s:?}");
        assert!((s.max_ms - 5.0).abs() < 0.01, "{s:?}");
        let resp = r.ops[0].response.clone().unwrap();
        assert!((resp.max_ms - 10.0).abs() < 0.02, "{resp:?}");
        assert_eq!(r.ops[1], RecentLatency::default(), "op 1 saw nothing");

        // The next window starts empty; until it closes, the last one is repeated.
        w.add_op(0, &stats(&[7]));
        assert_eq!(w.publish(HALF), r);
        let next = w.publish(HALF);
        assert_eq!(next.ops[0].count, 1);
        assert!((next.ops[0].service.clone().unwrap().max_ms - 0.007).abs() < 0.0001);
        // A window with nothing in it has no percentiles.
        let empty = w.publish(Duration::from_secs(1));
        assert_eq!(empty.ops[0].service, None);
        assert_eq!(empty.schedule_lag, None);
    }

    #[test]
    fn unknown_op_index_is_ignored() {
        let mut w = RecentWindow::new(1, 3);
        w.add_op(5, &stats(&[10]));
        assert_eq!(w.publish(Duration::from_secs(1)).ops.len(), 1);
    }
}
