//! Recall of an ANN op, as the recall checker reports it (`crate::recall`): per checked query
//! the true neighbours it found out of those it should have, and the queries not checked.

use serde::{Deserialize, Serialize};

/// Upper bounds of the per-query recall histogram (`cqlpulse_recall_bucket`).
pub const RECALL_BOUNDS: [f64; 8] = [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0];

/// How long the recent recall (`cqlpulse_recall_recent`, the live page) looks back.
pub const RECENT_QUERIES: usize = 100;

/// What the checker tells the aggregator: one checked query of op `op`, or queries it skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallReport {
    pub op: usize,
    /// True neighbours returned, out of `expected` (the query's k, or fewer rows written).
    pub hits: u32,
    pub expected: u32,
    /// Whether a query was checked (`hits` of `expected`); false for a report of skips alone.
    pub checked: bool,
    /// Sampled queries not checked: over the CPU budget, or the checker's queue was full.
    pub skipped_budget: u64,
    pub skipped_queue: u64,
    /// CPU seconds the check took (regenerating vectors and the brute force).
    pub cpu_seconds: f64,
}

/// An ANN op's recall so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallStats {
    pub checked: u64,
    pub hits: u64,
    pub expected: u64,
    pub skipped_budget: u64,
    pub skipped_queue: u64,
    pub cpu_seconds: f64,
    /// Checked queries by their recall, cumulative over [`RECALL_BOUNDS`]; the sum of the
    /// queries' recalls.
    pub buckets: [u64; RECALL_BOUNDS.len()],
    pub sum: f64,
    /// (hits, expected) of the last [`RECENT_QUERIES`] checked queries.
    #[serde(skip)]
    recent: std::collections::VecDeque<(u32, u32)>,
    /// Recall over the last checked queries; `None` before the first.
    pub recent_recall: Option<f64>,
    /// The spec's `alert_below`.
    pub threshold: Option<f64>,
}

impl RecallStats {
    pub fn new(threshold: Option<f64>) -> RecallStats {
        RecallStats {
            checked: 0,
            hits: 0,
            expected: 0,
            skipped_budget: 0,
            skipped_queue: 0,
            cpu_seconds: 0.0,
            buckets: [0; RECALL_BOUNDS.len()],
            sum: 0.0,
            recent: Default::default(),
            recent_recall: None,
            threshold,
        }
    }

    pub fn absorb(&mut self, r: &RecallReport) {
        self.skipped_budget += r.skipped_budget;
        self.skipped_queue += r.skipped_queue;
        self.cpu_seconds += r.cpu_seconds;
        if !r.checked {
            return;
        }
        self.checked += 1;
        self.hits += u64::from(r.hits);
        self.expected += u64::from(r.expected);
        let recall = query_recall(r.hits, r.expected);
        self.sum += recall;
        for (b, &le) in self.buckets.iter_mut().zip(&RECALL_BOUNDS) {
            *b += u64::from(recall <= le);
        }
        self.recent.push_back((r.hits, r.expected));
        if self.recent.len() > RECENT_QUERIES {
            self.recent.pop_front();
        }
        let (h, e) = self.recent.iter().fold((0u64, 0u64), |(h, e), &(a, b)| {
            (h + u64::from(a), e + u64::from(b))
        });
        self.recent_recall = Some(ratio(h, e));
    }

    /// Recall over every checked query: true neighbours found over those expected.
    pub fn recall(&self) -> Option<f64> {
        (self.checked > 0).then(|| ratio(self.hits, self.expected))
    }
}

/// A query's recall: 1 when nothing was there to find.
pub fn query_recall(hits: u32, expected: u32) -> f64 {
    ratio(u64::from(hits), u64::from(expected))
}

fn ratio(hits: u64, expected: u64) -> f64 {
    if expected == 0 {
        1.0
    } else {
        hits as f64 / expected as f64
    }
}

/// An ANN op's recall in the summary (and its JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallSummary {
    /// True neighbours found over those expected, every checked query together.
    pub recall: Option<f64>,
    pub checked: u64,
    pub hits: u64,
    pub expected: u64,
    pub skipped_budget: u64,
    pub skipped_queue: u64,
    /// CPU seconds of the checker per checked query.
    pub cpu_seconds_per_check: Option<f64>,
}

impl From<&RecallStats> for RecallSummary {
    fn from(s: &RecallStats) -> RecallSummary {
        RecallSummary {
            recall: s.recall(),
            checked: s.checked,
            hits: s.hits,
            expected: s.expected,
            skipped_budget: s.skipped_budget,
            skipped_queue: s.skipped_queue,
            cpu_seconds_per_check: (s.checked > 0).then(|| s.cpu_seconds / s.checked as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(hits: u32, expected: u32) -> RecallReport {
        RecallReport {
            op: 0,
            hits,
            expected,
            checked: true,
            skipped_budget: 0,
            skipped_queue: 0,
            cpu_seconds: 0.001,
        }
    }

    #[test]
    fn recall_adds_up_over_queries_and_buckets_are_cumulative() {
        let mut s = RecallStats::new(Some(0.9));
        s.absorb(&checked(10, 10));
        s.absorb(&checked(7, 10));
        s.absorb(&RecallReport {
            checked: false,
            skipped_budget: 3,
            skipped_queue: 1,
            ..checked(0, 0)
        });
        assert_eq!((s.checked, s.hits, s.expected), (2, 17, 20));
        assert_eq!(s.recall(), Some(0.85));
        assert_eq!((s.skipped_budget, s.skipped_queue), (3, 1));
        // 0.7 falls in every bucket from 0.7 up, 1.0 only in the last.
        assert_eq!(s.buckets, [0, 1, 1, 1, 1, 1, 1, 2]);
        assert!((s.sum - 1.7).abs() < 1e-12);
        assert_eq!(s.recent_recall, Some(0.85));
        let summary = RecallSummary::from(&s);
        assert_eq!(summary.recall, Some(0.85));
        assert_eq!(summary.checked, 2);
    }

    #[test]
    fn recent_recall_forgets_old_queries() {
        let mut s = RecallStats::new(None);
        s.absorb(&checked(0, 10));
        for _ in 0..RECENT_QUERIES {
            s.absorb(&checked(10, 10));
        }
        assert_eq!(s.recent_recall, Some(1.0));
        assert!(s.recall().is_some_and(|r| r < 1.0));
    }
}
