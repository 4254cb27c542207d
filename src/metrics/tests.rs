use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
    MetricFamily, MetricType,
};

use super::*;
use crate::cql::ErrorKind;
use crate::stats::{
    Buckets, ClusterGauges, Exemplar, Gauges, NodeSnapshot, OpSnapshot, Phase, RunPhase, Snapshot,
};

/// An HDR histogram of the given latencies (in seconds), as the aggregator adds them.
fn buckets(bounds: &[f64], values: &[f64]) -> Buckets {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(100, 3_600_000_000_000, 3).unwrap();
    for v in values {
        h.record((v * 1e9) as u64).unwrap();
    }
    let bounds_ns: Vec<u64> = bounds.iter().map(|b| (b * 1e9) as u64).collect();
    let mut b = Buckets::new(bounds.len());
    b.add_hdr(&h, &bounds_ns);
    b
}

fn snapshot() -> Snapshot {
    let bounds = [0.001, 0.01, 0.1];
    let mut errors = [0; ErrorKind::COUNT];
    errors[ErrorKind::WriteTimeout.index()] = 2;
    let mut insert = OpSnapshot::empty("insert", 3);
    insert.ok = 8;
    insert.errors = errors;
    insert.bytes = 80;
    insert.retries = 1;
    insert.service = buckets(
        &bounds,
        &[0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.002, 0.002, 0.05],
    );
    insert.failed_by_kind[ErrorKind::WriteTimeout.index()] = buckets(&bounds, &[2.0, 2.0]);
    insert.failed_service = buckets(&bounds, &[2.0, 2.0]);
    insert.exemplar = Some(Exemplar {
        index: 42,
        seconds: 0.05,
        unix_time: 1.7e9 + 0.25,
    });
    let mut read = OpSnapshot::empty("read", 3);
    read.ok = 5;
    read.rows = 12;
    read.pages = 6;
    read.paged_seconds = 0.03;
    read.verified = crate::stats::Verified {
        skipped: 1,
        ok: 2,
        missing: 1,
        mismatch: 1,
    };
    let mut recall = crate::stats::RecallStats::new(Some(0.9));
    for (hits, expected) in [(10, 10), (8, 10)] {
        recall.absorb(&crate::stats::RecallReport {
            op: 1,
            hits,
            expected,
            checked: true,
            skipped_budget: 1,
            skipped_queue: 0,
            cpu_seconds: 0.25,
        });
    }
    read.recall = Some(recall);
    Snapshot {
        elapsed: Duration::from_secs(3),
        gauges: Gauges {
            phase: Phase::Running,
            paused: false,
            target_rate: 100.0,
            in_flight_limit: 8,
            reloads_applied: 1,
            reloads_rejected: 0,
            ..Gauges::default()
        },
        cluster: ClusterGauges {
            known_hosts: 1,
            connected_hosts: 1,
            connections: 2,
            ..ClusterGauges::default()
        },
        nodes: vec![NodeSnapshot {
            node: "127.0.0.1:9042".into(),
            up: true,
            in_flight: 2,
            ok: 8,
            errors: 2,
            service: buckets(&bounds, &[0.0005, 0.002]),
            recent_p99: 0.0,
        }],
        ops: vec![insert, read],
        lag: Buckets::new(3),
        bounds: bounds.to_vec().into(),
        issued: 10,
        dropped_backlog: 0,
        not_sent_run_ended: 0,
        in_flight: 0,
        peak_in_flight: 8,
        achieved_rate: 3.3,
        recent: Default::default(),
        process: crate::process::read(),
    }
}

fn info() -> RunInfo {
    RunInfo {
        workload: "w".into(),
        model: "chains".into(),
        shard: 0,
        shard_count: 1,
        version: "0.1.0",
        start_time: 1.5e9,
    }
}

fn identity() -> RunIdentity {
    RunIdentity {
        run_id: "00c0ffee00c0ffee".into(),
        spec_digest: "0123456789abcdef".into(),
        phase: RunPhase::Warmup,
        shard_count: 3,
    }
}

fn key(op: usize, index: u64) -> Option<String> {
    Some(format!("key-{op}-{index}"))
}

fn rendered(format: Format) -> Vec<u8> {
    let s = Arc::new(snapshot());
    render(format, s.clone(), Arc::new(info()), identity(), &key).expect("renders")
}

fn text(format: Format) -> String {
    String::from_utf8(rendered(format)).unwrap()
}

/// A text scrape of the test snapshot, for the catalogue check.
pub(super) fn scrape_of_test_snapshot() -> String {
    text(Format::Text)
}

#[test]
fn run_identity_has_the_run_id_digest_one_phase_and_the_shard_count() {
    let out = text(Format::Text);
    for line in [
        "cqlpulse_run_info{workload=\"w\",model=\"chains\",shard=\"0\",shard_count=\"3\",run_id=\"00c0ffee00c0ffee\",spec_digest=\"0123456789abcdef\"} 1",
        "cqlpulse_run_phase{phase=\"warmup\"} 1",
        "cqlpulse_shards 3",
        "# TYPE cqlpulse_run_phase gauge",
    ] {
        assert!(out.lines().any(|l| l == line), "missing `{line}` in\n{out}");
    }
    let phases: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("cqlpulse_run_phase{"))
        .collect();
    assert_eq!(phases.len(), RunPhase::ALL.len(), "{phases:?}");
    let on: Vec<&&str> = phases.iter().filter(|l| l.ends_with(" 1")).collect();
    assert_eq!(on.len(), 1, "exactly one phase is 1: {phases:?}");
}

#[test]
fn per_node_series_carry_the_node_label() {
    let out = text(Format::Text);
    for line in [
        "cqlpulse_node_requests_total{node=\"127.0.0.1:9042\",outcome=\"ok\"} 8",
        "cqlpulse_node_requests_total{node=\"127.0.0.1:9042\",outcome=\"error\"} 2",
        "cqlpulse_node_request_duration_seconds_count{node=\"127.0.0.1:9042\"} 2",
        "cqlpulse_node_in_flight_requests{node=\"127.0.0.1:9042\"} 2",
        "cqlpulse_node_up{node=\"127.0.0.1:9042\"} 1",
        "cqlpulse_speculative_executions_total 0",
    ] {
        assert!(out.lines().any(|l| l == line), "missing `{line}` in\n{out}");
    }
}

#[test]
fn the_text_catalogue_has_help_type_and_the_outcome_split() {
    let out = text(Format::Text);
    for line in [
        "cqlpulse_requests_total{op=\"insert\",outcome=\"ok\"} 8",
        "cqlpulse_requests_total{op=\"insert\",outcome=\"error\"} 2",
        "cqlpulse_request_errors_total{op=\"insert\",kind=\"write_timeout\"} 2",
        "cqlpulse_request_errors_total{op=\"insert\",kind=\"client_timeout\"} 0",
        // Successes alone in the outcome="ok" histogram.
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",outcome=\"ok\",le=\"0.001\"} 5",
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",outcome=\"ok\",le=\"0.01\"} 7",
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",outcome=\"ok\",le=\"+Inf\"} 8",
        "cqlpulse_request_duration_seconds_count{op=\"insert\",outcome=\"ok\"} 8",
        // The two 2 s timeouts, in the error histogram and under their kind.
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",outcome=\"error\",le=\"0.1\"} 0",
        "cqlpulse_request_duration_seconds_count{op=\"insert\",outcome=\"error\"} 2",
        "cqlpulse_failed_request_duration_seconds_count{op=\"insert\",kind=\"write_timeout\"} 2",
        "cqlpulse_response_time_seconds_count{op=\"read\",outcome=\"ok\"} 0",
        "cqlpulse_schedule_lag_seconds_count 0",
        "cqlpulse_in_flight_limit 8",
        "cqlpulse_target_rate 100.0",
        "cqlpulse_ops_issued_total 10",
        "cqlpulse_ops_dropped_total{reason=\"backlog\"} 0",
        "cqlpulse_retries_total{op=\"insert\"} 1",
        "cqlpulse_payload_bytes_total{op=\"insert\"} 80",
        "cqlpulse_connections 2",
        "cqlpulse_config_reloads_total{result=\"applied\"} 1",
        "cqlpulse_build_info{version=\"0.1.0\"} 1",
        "# TYPE cqlpulse_request_duration_seconds histogram",
        "# TYPE cqlpulse_requests_total counter",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(out.lines().any(|l| l == line), "missing `{line}` in\n{out}");
    }
    // An op that never failed has no error series; a kind that never happened has none.
    assert!(
        !out.contains("duration_seconds_count{op=\"read\",outcome=\"error\"}"),
        "{out}"
    );
    assert!(!out.contains("kind=\"read_timeout\",le="), "{out}");
    // Every sample's family has a HELP and a TYPE line.
    let families: std::collections::HashSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for l in out.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| families.contains(f))
            .unwrap_or(name);
        assert!(families.contains(family), "no TYPE for {name}");
    }
}

#[test]
fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
    let out = text(Format::OpenMetrics);
    assert!(out.ends_with("# EOF\n"), "{out}");
    assert!(out.lines().any(|l| l == "# TYPE cqlpulse_requests counter"));
    assert!(
        out.lines()
            .any(|l| l == "cqlpulse_requests_total{op=\"insert\",outcome=\"ok\"} 8")
    );
}

#[test]
fn protobuf_carries_native_buckets_classic_buckets_and_the_exemplar() {
    let bytes = rendered(Format::Protobuf);
    let mut buf = &bytes[..];
    let mut families = Vec::new();
    while !buf.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut buf).expect("delimited"));
    }
    let family = families
        .iter()
        .find(|f| f.name == "cqlpulse_request_duration_seconds")
        .expect("latency family");
    assert_eq!(family.r#type, MetricType::Histogram as i32);
    let ok = family
        .metric
        .iter()
        .find(|m| {
            m.label
                .iter()
                .any(|l| l.name == "op" && l.value == "insert")
                && m.label
                    .iter()
                    .any(|l| l.name == "outcome" && l.value == "ok")
        })
        .expect("insert ok");
    let h = ok.histogram.as_ref().unwrap();
    assert_eq!(h.sample_count, 8);
    // Classic buckets without the implicit +Inf, cumulative.
    let classic: Vec<(f64, u64)> = h
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count))
        .collect();
    assert_eq!(classic, vec![(0.001, 5), (0.01, 7), (0.1, 8)]);
    // Native: schema 6, deltas summing back to the counts, and the counts to the total.
    assert_eq!(h.schema, crate::stats::NATIVE_SCHEMA);
    assert!(
        h.zero_threshold > 0.0,
        "a positive zero threshold marks it native"
    );
    let mut count = 0i64;
    let mut total = 0i64;
    for d in &h.positive_delta {
        count += d;
        assert!(count > 0, "every listed bucket is populated");
        total += count;
    }
    assert_eq!(total, 8);
    let spans: u32 = h.positive_span.iter().map(|s| s.length).sum();
    assert_eq!(spans as usize, h.positive_delta.len());
    assert_eq!(h.positive_span.len(), 3, "0.5 ms, 2 ms and 50 ms are apart");
    // The exemplar sits on the bucket holding 50 ms, with its op, index and key.
    let with_exemplar: Vec<_> = h.bucket.iter().filter(|b| b.exemplar.is_some()).collect();
    assert_eq!(with_exemplar.len(), 1);
    assert_eq!(with_exemplar[0].upper_bound, 0.1);
    let e = with_exemplar[0].exemplar.as_ref().unwrap();
    assert_eq!(e.value, 0.05);
    let labels: Vec<(&str, &str)> = e
        .label
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![("op", "insert"), ("op_index", "42"), ("key", "key-0-42")]
    );
    let ts = e.timestamp.unwrap();
    assert_eq!((ts.seconds, ts.nanos / 1_000_000), (1_700_000_000, 250));
    // Counters keep their `_total` name in protobuf.
    assert!(families.iter().any(|f| f.name == "cqlpulse_requests_total"));
}

#[test]
fn recall_series_add_up_the_checked_queries() {
    let out = text(Format::Text);
    let recall: Vec<&str> = out.lines().filter(|l| l.contains("recall")).collect();
    for line in [
        // Two queries, of recall 1.0 and 0.8: 0.8 is in every bucket from 0.8 up.
        "cqlpulse_recall_bucket{op=\"read\",le=\"0.7\"} 0",
        "cqlpulse_recall_bucket{op=\"read\",le=\"0.8\"} 1",
        "cqlpulse_recall_bucket{op=\"read\",le=\"1\"} 2",
        "cqlpulse_recall_bucket{op=\"read\",le=\"+Inf\"} 2",
        "cqlpulse_recall_count{op=\"read\"} 2",
        "cqlpulse_recall_sum{op=\"read\"} 1.8",
        "cqlpulse_recall_hits_total{op=\"read\"} 18",
        "cqlpulse_recall_expected_total{op=\"read\"} 20",
        "cqlpulse_recall_recent{op=\"read\"} 0.9",
        "cqlpulse_recall_threshold{op=\"read\"} 0.9",
        "cqlpulse_recall_skipped_total{op=\"read\",reason=\"budget\"} 2",
        "cqlpulse_recall_checker_cpu_seconds_total{op=\"read\"} 0.5",
    ] {
        assert!(
            recall.contains(&line),
            "missing `{line}` in:\n{}",
            recall.join("\n")
        );
    }
    assert!(
        !recall.iter().any(|l| l.contains("op=\"insert\"")),
        "an op without [ops.recall] has no recall series"
    );
}
