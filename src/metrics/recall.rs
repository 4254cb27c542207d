//! The recall families of ANN ops with `[ops.recall]` (docs/metrics.md): checked queries by
//! their recall (a histogram), true neighbours found and expected, the recall of the latest
//! checks, the spec's threshold, and the samples skipped.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::collector::SnapshotCollector;
use crate::stats::{RECALL_BOUNDS, RecallStats};

impl SnapshotCollector {
    pub(super) fn recall(&self, d: &mut DescriptorEncoder) -> fmt::Result {
        let ops: Vec<(&str, &RecallStats)> = self
            .snapshot
            .ops
            .iter()
            .filter_map(|o| o.recall.as_ref().map(|r| (o.name.as_str(), r)))
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        let mut m = d.encode_descriptor(
            "cqlpulse_recall",
            "Checked ANN queries by their recall@k (true neighbours returned over those expected).",
            None,
            MetricType::Histogram,
        )?;
        for (op, r) in &ops {
            // The encoder takes each bucket's own count and adds them up itself.
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = RECALL_BOUNDS
                .iter()
                .copied()
                .zip(r.buckets)
                .chain(std::iter::once((f64::INFINITY, r.checked)))
                .map(|(le, cumulative)| {
                    (le, cumulative - std::mem::replace(&mut below, cumulative))
                })
                .collect();
            m.encode_family(&[("op", *op)])?
                .encode_histogram::<NoLabelSet>(r.sum, r.checked, &buckets, None)?;
        }
        let each = |f: fn(&RecallStats) -> u64| -> Vec<([(&str, &str); 1], u64)> {
            ops.iter().map(|(op, r)| ([("op", *op)], f(r))).collect()
        };
        let hits = each(|r| r.hits);
        self.counter(
            d,
            "cqlpulse_recall_hits_total",
            "True nearest neighbours returned by checked ANN queries.",
            &labelled(&hits),
        )?;
        let expected = each(|r| r.expected);
        self.counter(
            d,
            "cqlpulse_recall_expected_total",
            "Nearest neighbours checked ANN queries should have returned (k, or fewer rows written).",
            &labelled(&expected),
        )?;
        self.recall_gauges(d, &ops)?;
        self.recall_skips(d, &ops)
    }

    fn recall_gauges(
        &self,
        d: &mut DescriptorEncoder,
        ops: &[(&str, &RecallStats)],
    ) -> fmt::Result {
        let recent: Vec<([(&str, &str); 1], f64)> = ops
            .iter()
            .filter_map(|(op, r)| Some(([("op", *op)], r.recent_recall?)))
            .collect();
        self.gauge(
            d,
            "cqlpulse_recall_recent",
            "Recall@k of the latest checked ANN queries (up to 100).",
            &labelled(&recent),
        )?;
        let thresholds: Vec<([(&str, &str); 1], f64)> = ops
            .iter()
            .filter_map(|(op, r)| Some(([("op", *op)], r.threshold?)))
            .collect();
        self.gauge(
            d,
            "cqlpulse_recall_threshold",
            "The spec's recall.alert_below: CqlpulseRecallLow fires below it.",
            &labelled(&thresholds),
        )?;
        let cpu: Vec<([(&str, &str); 1], f64)> = ops
            .iter()
            .map(|(op, r)| ([("op", *op)], r.cpu_seconds))
            .collect();
        self.counter(
            d,
            "cqlpulse_recall_checker_cpu_seconds_total",
            "Time the recall checker spent checking ANN queries.",
            &labelled(&cpu),
        )
    }

    fn recall_skips(&self, d: &mut DescriptorEncoder, ops: &[(&str, &RecallStats)]) -> fmt::Result {
        let skips: Vec<([(&str, &str); 2], u64)> = ops
            .iter()
            .flat_map(|(op, r)| {
                [
                    ([("op", *op), ("reason", "budget")], r.skipped_budget),
                    ([("op", *op), ("reason", "queue")], r.skipped_queue),
                ]
            })
            .collect();
        let samples: Vec<(&[(&str, &str)], u64)> =
            skips.iter().map(|(l, v)| (&l[..], *v)).collect();
        self.counter(
            d,
            "cqlpulse_recall_skipped_total",
            "Sampled ANN queries not checked: over the checker's CPU budget, or its queue full.",
            &samples,
        )
    }
}

fn labelled<'a, V: Copy, const N: usize>(
    samples: &'a [([(&'a str, &'a str); N], V)],
) -> Vec<(&'a [(&'a str, &'a str)], V)> {
    samples.iter().map(|(l, v)| (&l[..], *v)).collect()
}
