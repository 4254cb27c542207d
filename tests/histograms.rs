//! The dashboard's percentiles against the run's own: a steady run against the real node,
//! scraped by two real Prometheus servers at once, one with classic buckets (the test
//! Prometheus on 19090, OpenMetrics text) and one with native histograms and exemplar storage
//! (19091, protobuf; both started by `scripts/test`). p50, p99 and p99.9 of service and
//! response time, by the dashboard's own query text, must be within 5% (classic) and 2%
//! (native) of the `--summary-json` HDR percentiles; and Prometheus must return the exemplars.
//!
//! Both sides must count the same requests: the run has no warm-up (the summary then counts
//! every request), opens with three seconds at 1 op/s (so that a scrape before the steady rate
//! starts finds the histograms at or near zero) and the query's window reaches back past the
//! daemon's start. A window of only the run's length would start a scrape or two late and drop
//! the first seconds' requests from Prometheus's side: enough, with a slow first second, to move
//! p99 by 9%.
//!
//! And enough requests for the tail: p99.9 of the run is read at its slowest 0.1%, 120 requests
//! at 2,000 ops/s for 60 s. The classic reading is interpolated inside a 15% wide bucket, and a
//! clumped tail moves it: at 500 ops/s (30 requests) it was 8% off in one CI run of seven, at
//! 1,000 ops/s (60) 5.01% off in one clean-clone run of about ten (BENCHMARKS.md).

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;

const ADDR: &str = "127.0.0.1:19464";

/// The native-histogram Prometheus (`--enable-feature=native-histograms,exemplar-storage`).
fn native_prometheus_addr() -> String {
    let url = std::env::var("CQLPULSE_TEST_PROMETHEUS_NATIVE")
        .unwrap_or_else(|_| "http://127.0.0.1:19091".into());
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if TcpStream::connect(&addr).is_err() {
        panic!(
            "no native-histogram Prometheus on {addr}: run `scripts/test`, or start one with \
             `PROMETHEUS_PORT=19091 PROMETHEUS_HOME=.prometheus-native \
             PROMETHEUS_FEATURES=native-histograms,exemplar-storage scripts/prometheus start`"
        );
    }
    addr
}

/// The dashboard's query for quantile `q` of `metric` (the whole-run panel: no `by (op`),
/// or the dual-mode form of the contract when the dashboard has none.
fn query(exprs: &[String], metric: &str, q: &str) -> (String, bool) {
    let head = format!("histogram_quantile({q},");
    let found = exprs.iter().find(|e| {
        e.replace(' ', "").starts_with(&head.replace(' ', ""))
            && e.contains(metric)
            && !e.contains("by (op")
    });
    match found {
        Some(e) => (e.clone(), true),
        None => (
            format!(
                "histogram_quantile({q}, sum(rate({metric}{{outcome=\"ok\", instance=~\"$instance\"}}[$__rate_interval]))) \
                 or histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{outcome=\"ok\", instance=~\"$instance\"}}[$__rate_interval])))"
            ),
            false,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_percentiles_match_the_summary_in_classic_and_native_mode() {
    require_cassandra();
    let classic = prometheus_addr();
    let native = native_prometheus_addr();
    let _serial = serial().await;
    let ks = keyspace("hist");
    let spec = spec_file(
        "hist",
        &testtable_spec(
            &ks,
            "model = \"chains\"\nchains = 32\nwarmup = \"0s\"\nduration = \"63s\"\n\
             stages = [{ duration = \"3s\", rate = 1.0 }, { duration = \"60s\", rate = 2000.0 }]",
        ),
    );
    let summary_path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hist-summary.json");
    // Scrapes from here on are this daemon's: earlier ones on ADDR ended before it started.
    let spawned_at = unix_now();
    let mut d = Daemon::start(
        &spec,
        ADDR,
        &[
            "--summary-json",
            summary_path.to_str().unwrap(),
            "--linger",
            "5s",
        ],
        &[],
    );
    d.wait_ready();
    let mut done_at = None;
    wait_for(Duration::from_secs(120), "the run to finish", || {
        let phase = d.status()["phase"].as_str().map(str::to_string);
        if phase.as_deref() == Some("done") {
            done_at = Some(unix_now());
            return true;
        }
        false
    });
    let done_at = done_at.unwrap();
    // Both servers scrape every second: wait for a scrape after the end, on each.
    for prom in [&classic, &native] {
        let q = format!("timestamp(cqlpulse_up{{instance=\"{ADDR}\"}})");
        wait_for(Duration::from_secs(10), "a scrape after the end", || {
            promql_value(prom, &q, unix_now()).is_some_and(|t| t > done_at + 0.5)
        });
    }
    // While the daemon lingers, so that `cqlpulse_run_info` (joined by the queries) is live.
    let at = unix_now();
    assert_eq!(d.wait(Duration::from_secs(30)), Some(0), "{}", d.log());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert!(
        summary["failed"].as_u64() == Some(0),
        "a steady run: {summary}"
    );
    // From before the daemon started to after its last observation: rate() then takes the
    // increase from its first scrape (zero, or the odd op of the 1 op/s opening) to its last.
    let window = format!("{}s", (at - spawned_at).ceil() as u64 + 1);

    let exprs: Vec<String> = dashboard_exprs().into_iter().map(|(_, e)| e).collect();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (metric, key) in [
        ("cqlpulse_request_duration_seconds", "service_time"),
        ("cqlpulse_response_time_seconds", "response_time"),
    ] {
        for (q, field) in [("0.5", "p50_ms"), ("0.99", "p99_ms"), ("0.999", "p999_ms")] {
            let exact = summary["total"][key][field].as_f64().unwrap() / 1e3;
            let (expr, from_dashboard) = query(&exprs, metric, q);
            let promql = substitute(&expr, &window, ADDR);
            for (mode, prom, limit) in [("classic", &classic, 0.05), ("native", &native, 0.02)] {
                let got = promql_value(prom, &promql, at);
                let err = got.map(|g| (g - exact).abs() / exact);
                table.push(format!(
                    "| {key} | p{} | {mode} | {:.3} ms | {} | {} | {} |",
                    field.trim_start_matches('p').trim_end_matches("_ms"),
                    exact * 1e3,
                    got.map_or("no data".into(), |g| format!("{:.3} ms", g * 1e3)),
                    err.map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
                    if from_dashboard {
                        "dashboard"
                    } else {
                        "contract form"
                    },
                ));
                if err.is_none_or(|e| e > limit) {
                    failures.push(format!("{key} p{q} {mode}: {got:?} vs {exact} ({promql})"));
                }
            }
        }
    }
    eprintln!(
        "| time | quantile | mode | summary (HDR) | Prometheus | error | query |\n|---|---|---|---|---|---|---|\n{}",
        table.join("\n")
    );
    assert!(
        failures.is_empty(),
        "off by more than allowed:\n{}",
        failures.join("\n")
    );

    // The exemplars the native Prometheus stored: op, index and a key that is the op's first
    // bound value at that index. From this run's start only: the tests before this one ran
    // daemons on the same address, with other keys.
    let (status, body) = get(
        &native,
        &format!(
            "/api/v1/query_exemplars?query={}&start={:.3}&end={:.3}",
            encode(&format!(
                "cqlpulse_request_duration_seconds{{instance=\"{ADDR}\"}}"
            )),
            spawned_at,
            done_at + 5.0
        ),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exemplars: Vec<&serde_json::Value> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["exemplars"].as_array().into_iter().flatten())
        .collect();
    assert!(!exemplars.is_empty(), "no exemplars stored: {body}");
    let plan = plan_of(&spec);
    for e in &exemplars {
        let labels = &e["labels"];
        assert_eq!(labels["op"], "insert", "{e}");
        let index: u64 = labels["op_index"].as_str().unwrap().parse().unwrap();
        let key = cqlpulse::metrics::key_text(&plan, 0, index).unwrap();
        assert_eq!(labels["key"].as_str(), Some(key.as_str()), "{e}");
        let value: f64 = e["value"].as_str().unwrap().parse().unwrap();
        // A success: below the 12 s request timeout.
        assert!(value > 0.0 && value < 12.0, "{e}");
    }
    drop_keyspace(&session().await, &ks).await;
}
