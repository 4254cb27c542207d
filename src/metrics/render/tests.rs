use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::stats::{ClusterGauges, Gauges, OpSnapshot, Phase, RunPhase};

fn snapshot() -> Snapshot {
    let bounds: Arc<[f64]> = vec![0.001, 0.01, 0.1].into();
    let mut service = Buckets::new(3);
    service.counts = vec![5, 3, 1, 1];
    service.count = 10;
    service.sum_seconds = 0.5;
    let mut errors = [0; ErrorKind::COUNT];
    errors[ErrorKind::WriteTimeout.index()] = 2;
    Snapshot {
        elapsed: Duration::from_secs(3),
        gauges: Gauges {
            phase: Phase::Running,
            paused: false,
            target_rate: 100.0,
            in_flight_limit: 8,
            reloads_applied: 1,
            reloads_rejected: 0,
        },
        cluster: ClusterGauges {
            known_hosts: 1,
            connected_hosts: 1,
            connections: 2,
        },
        ops: vec![OpSnapshot {
            name: "insert".into(),
            ok: 8,
            errors,
            rows: 0,
            bytes: 80,
            retries: 1,
            service,
            response: Buckets::new(3),
        }],
        lag: Buckets::new(3),
        bounds,
        issued: 10,
        dropped_backlog: 0,
        dropped_draining: 0,
        in_flight: 0,
        peak_in_flight: 8,
        achieved_rate: 3.3,
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

/// Everything a scrape returns, as the HTTP route renders it.
fn scrape(s: &Snapshot) -> String {
    let mut out = String::new();
    render(s, &s.gauges, &info(), &mut out);
    render_run_identity(&info(), &identity(), &mut out);
    out
}

/// A scrape of the test snapshot, for the catalogue check.
pub(super) fn scrape_of_test_snapshot() -> String {
    scrape(&snapshot())
}

#[test]
fn run_identity_has_the_run_id_digest_one_phase_and_the_shard_count() {
    let out = scrape(&snapshot());
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
fn the_catalogue_is_rendered_with_help_type_and_labels() {
    let s = snapshot();
    let out = scrape(&s);
    for line in [
        "cqlpulse_requests_total{op=\"insert\",outcome=\"ok\"} 8",
        "cqlpulse_requests_total{op=\"insert\",outcome=\"error\"} 2",
        "cqlpulse_request_errors_total{op=\"insert\",kind=\"write_timeout\"} 2",
        "cqlpulse_request_errors_total{op=\"insert\",kind=\"client_timeout\"} 0",
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",le=\"0.001\"} 5",
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",le=\"0.01\"} 8",
        "cqlpulse_request_duration_seconds_bucket{op=\"insert\",le=\"+Inf\"} 10",
        "cqlpulse_request_duration_seconds_sum{op=\"insert\"} 0.5",
        "cqlpulse_request_duration_seconds_count{op=\"insert\"} 10",
        "cqlpulse_schedule_lag_seconds_count 0",
        "cqlpulse_in_flight_limit 8",
        "cqlpulse_target_rate 100",
        "cqlpulse_ops_dropped_total{reason=\"backlog\"} 0",
        "cqlpulse_retries_total{op=\"insert\"} 1",
        "cqlpulse_payload_bytes_total{op=\"insert\"} 80",
        "cqlpulse_connections 2",
        "cqlpulse_config_reloads_total{result=\"applied\"} 1",
        "cqlpulse_build_info{version=\"0.1.0\"} 1",
        "# TYPE cqlpulse_request_duration_seconds histogram",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(out.lines().any(|l| l == line), "missing `{line}` in\n{out}");
    }
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
