//! Exemplars: each op's slowest recent success, attached to the service-time bucket that
//! holds it, so a spike on a latency panel leads to the exact request. The lanes keep only
//! the raw op index; the key is derived here, at scrape time, from the seed and the index.
//!
//! They ride on the protobuf exposition, whose `io.prometheus.client` messages
//! `prometheus-client` hands back as plain prost structs. Its OpenMetrics text encoder could
//! write them too, but the crate (0.26) offers no public way to build an `Exemplar` for a
//! custom collector, so the text formats carry none.

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
    Exemplar, LabelPair, MetricFamily,
};

use crate::data::{Value, ValueKind};
use crate::plan::Plan;
use crate::stats::Snapshot;

/// OpenMetrics caps an exemplar's label names and values at 128 characters together.
const MAX_LABEL_CHARS: usize = 128;

/// The partition key of op `op` at `index` as text: the op's first bound value, which is
/// the partition key in every bundled workload. `None` for an op without arguments.
pub fn key_text(plan: &Plan, op: usize, index: u64) -> Option<String> {
    let &g = plan.ops.get(op)?.args.first()?;
    let generator = plan.generators.get(g)?;
    Some(match generator.value(plan.seed, g as u64, index) {
        Value::Int(x) | Value::Timestamp(x) => x.to_string(),
        Value::Bytes(b) if generator.kind() == ValueKind::Text => {
            String::from_utf8_lossy(b).into_owned()
        }
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Uuid(u) => uuid::Uuid::from_bytes(u).hyphenated().to_string(),
        Value::Float(x) => x.to_string(),
        Value::Null | Value::Unset | Value::Composite => return None,
    })
}

/// The exemplar labels: op, op index and key, the key cut to keep within the limit.
fn labels(op: &str, index: u64, key: Option<String>) -> Vec<LabelPair> {
    let index = index.to_string();
    let used = "op".len() + op.chars().count() + "op_index".len() + index.len() + "key".len();
    let mut pairs = vec![
        LabelPair {
            name: "op".into(),
            value: op.into(),
        },
        LabelPair {
            name: "op_index".into(),
            value: index,
        },
    ];
    if let Some(key) = key {
        let room = MAX_LABEL_CHARS.saturating_sub(used);
        pairs.push(LabelPair {
            name: "key".into(),
            value: key.chars().take(room).collect(),
        });
    }
    pairs
}

/// Attaches each op's exemplar to the bucket of `cqlpulse_request_duration_seconds{outcome="ok"}`
/// that holds its value. `key` gives the key text of (op, index).
pub fn attach(
    families: &mut [MetricFamily],
    snapshot: &Snapshot,
    key: &dyn Fn(usize, u64) -> Option<String>,
) {
    let Some(family) = families
        .iter_mut()
        .find(|f| f.name == "cqlpulse_request_duration_seconds")
    else {
        return;
    };
    for metric in &mut family.metric {
        let label = |name: &str| {
            metric
                .label
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.clone())
        };
        if label("outcome").as_deref() != Some("ok") {
            continue;
        }
        let Some(op_name) = label("op") else { continue };
        let Some((i, op)) = snapshot
            .ops
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == op_name)
        else {
            continue;
        };
        let (Some(e), Some(h)) = (op.exemplar, metric.histogram.as_mut()) else {
            continue;
        };
        // Slower than the last bound: the implicit +Inf bucket carries no exemplar.
        let Some(bucket) = h.bucket.iter_mut().find(|b| e.seconds <= b.upper_bound) else {
            continue;
        };
        let whole = e.unix_time.floor();
        bucket.exemplar = Some(Exemplar {
            label: labels(&op.name, e.index, key(i, e.index)),
            value: e.seconds,
            timestamp: Some(prost_types::Timestamp {
                seconds: whole as i64,
                nanos: ((e.unix_time - whole) * 1e9) as i32,
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemplar_labels_stay_within_the_openmetrics_limit() {
        let long = "x".repeat(500);
        let pairs = labels("insert", 123_456, Some(long));
        let total: usize = pairs
            .iter()
            .map(|p| p.name.chars().count() + p.value.chars().count())
            .sum();
        assert_eq!(total, MAX_LABEL_CHARS);
        assert_eq!(pairs[1].value, "123456");
        let short = labels("insert", 7, Some("k-7".into()));
        assert_eq!(short[2].value, "k-7");
        assert_eq!(labels("read", 1, None).len(), 2);
    }
}
