//! The Prometheus surface against a real node and a real Prometheus (started by
//! `scripts/test` on 127.0.0.1:19090, scraping 127.0.0.1:19464-19466 every second).

mod common;

use std::time::Duration;

use common::*;
use cqlpulse::daemon::Loaded;

const ADDR: &str = "127.0.0.1:19464";

/// The index of the bucket holding `x` (first upper bound >= x).
fn bucket_of(bounds: &[f64], x: f64) -> usize {
    bounds
        .iter()
        .position(|&b| x <= b + 1e-12)
        .unwrap_or(bounds.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_what_the_summary_reports() {
    require_cassandra();
    let prom = prometheus_addr();
    let _serial = serial().await;
    let ks = keyspace("prom");
    let spec = spec_file(
        "prom",
        &testtable_spec(
            &ks,
            "model = \"chains\"\nchains = 32\nrate = 2000.0\nduration = \"20s\"",
        ),
    );
    let summary_path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prom-summary.json");
    let mut d = Daemon::start(
        &spec,
        ADDR,
        &[
            "--summary-json",
            summary_path.to_str().unwrap(),
            "--linger",
            "4s",
        ],
        &[],
    );
    d.wait_ready();
    let t0 = unix_now();

    // promtool check metrics on a live scrape, mid-run.
    wait_for(Duration::from_secs(20), "mid-run", || {
        let (_, status) = get(ADDR, "/status");
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status["elapsed_seconds"].as_f64().unwrap() >= 8.0
    });
    let (code, scrape) = get(ADDR, "/metrics");
    assert_eq!(code, 200);
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by scripts/test");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let started = std::time::Instant::now();
    let (_, _) = get(ADDR, "/metrics");
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "a scrape answers in under 50 ms"
    );

    assert_eq!(d.wait(Duration::from_secs(60)), Some(0), "{}", d.log());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let achieved = summary["total"]["ops_per_second"].as_f64().unwrap();
    let inst = format!("instance=\"{ADDR}\"");

    // What Prometheus last saw of the request counter (scraped during the linger, after the
    // final snapshot) is the summary's count. The last sample, not the largest: the test before
    // this one ran a daemon on the same address, and its counters are the same series. A rate over part of the run is no test of this:
    // an open-loop run on a fresh node falls behind in its first second and catches up after,
    // correctly, so a window that misses the start reads up to 12% high.
    let total = summary["ok"].as_u64().unwrap() + summary["failed"].as_u64().unwrap();
    assert!(total > 0 && achieved > 0.0, "{summary}");
    let seen = promql_value(
        &prom,
        &format!("sum(last_over_time(cqlpulse_requests_total{{{inst}}}[60s]))"),
        unix_now(),
    )
    .expect("the request counter has data");
    assert!(
        (seen - total as f64).abs() <= total as f64 * 0.005,
        "Prometheus saw {seen} requests, the summary counts {total}"
    );

    // In flight never above the limit, over every scrape of the run.
    let max_in_flight = promql_value(
        &prom,
        &format!("max_over_time(cqlpulse_in_flight_requests{{{inst}}}[19s])"),
        t0 + 20.0,
    )
    .unwrap();
    let min_limit = promql_value(
        &prom,
        &format!("min_over_time(cqlpulse_in_flight_limit{{{inst}}}[19s])"),
        t0 + 20.0,
    )
    .unwrap();
    assert_eq!(min_limit, 32.0);
    assert!(
        max_in_flight <= min_limit,
        "in flight {max_in_flight} above limit {min_limit}"
    );
    assert!(max_in_flight >= 1.0);

    // p99 from the buckets within two buckets (the default layout's are 15% wide) of the
    // summary's HDR p99: Prometheus sees the run from its first scrape, about a second in, so
    // it misses the cold first second that the summary includes. The exact comparison, after
    // a warm-up and over the measured window, is tests/histograms.rs.
    let end = t0 + 22.0;
    let q = format!(
        "histogram_quantile(0.99, sum by (le) (increase(cqlpulse_request_duration_seconds_bucket{{outcome=\"ok\", {inst}}}[21s])))"
    );
    let prom_p99 = promql_value(&prom, &q, end).expect("p99 has data");
    let summary_p99 = summary["total"]["service_time"]["p99_ms"].as_f64().unwrap() / 1e3;
    let loaded = Loaded::load(spec.clone(), vec![]).unwrap();
    let bounds = &loaded.plan.metrics.buckets;
    let (a, b) = (bucket_of(bounds, prom_p99), bucket_of(bounds, summary_p99));
    assert!(
        a.abs_diff(b) <= 2,
        "Prometheus p99 {prom_p99} s (bucket {a}) vs summary {summary_p99} s (bucket {b})"
    );
    drop_keyspace(&session().await, &ks).await;
}

// The number of series per instance is counted on a real run with errors of several kinds,
// three ops and three nodes: tests/cluster.rs, `series_per_op_node_and_error_kind_stay_bounded`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_rejections_are_counted_under_their_kind() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("kinds");
    let spec = spec_file(
        "kinds",
        &format!(
            r#"
name = "kinds"
[schema]
keyspace = "{ks}"
mode = "recreate"
statements = ["CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY, v int)"]
{FAILING_OPS}
[load]
model = "chains"
chains = 4
ops = 200
"#
        ),
    );
    let mut d = Daemon::start(&spec, "127.0.0.1:19465", &["--linger", "10s"], &[]);
    // The run ends by itself; its final numbers stay on /metrics while it lingers.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let (_, m) = get(&d.addr, "/metrics");
        let done = m
            .lines()
            .any(|l| l.starts_with("cqlpulse_ops_issued_total 200"));
        let status = d.status();
        if done && status["phase"] == "done" {
            break get(&d.addr, "/metrics").1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not finish: {}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no {line}"))
            .trim()
            .parse()
            .unwrap()
    };
    let slow = value("cqlpulse_request_errors_total{op=\"slow\",kind=\"client_timeout\"}");
    let slow_ok = value("cqlpulse_requests_total{op=\"slow\",outcome=\"ok\"}");
    let rejected = value("cqlpulse_request_errors_total{op=\"rejected\",kind=\"invalid\"}");
    let rejected_ok = value("cqlpulse_requests_total{op=\"rejected\",outcome=\"ok\"}");
    assert!(
        slow > 0.0 && slow >= 4.0 * slow_ok,
        "client timeouts: {slow} (ok {slow_ok})"
    );
    assert!(
        rejected > 0.0 && rejected_ok == 0.0,
        "rejected as invalid: {rejected} (ok {rejected_ok})"
    );
    assert_eq!(slow + slow_ok + rejected + rejected_ok, 200.0);
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(20)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}
