//! Live retuning over HTTP and SIGHUP, and graceful shutdown, on real processes against the
//! real node.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "test-token-0123";

/// 32 chains: room for the rates these tests set even while a fresh node answers slowly (they
/// test control, not the machine's capacity).
fn spec_text(ks: &str, rate: f64, keyspace_for_schema: &str) -> String {
    testtable_spec(ks, &format!("model = \"chains\"\nchains = 32\nmax_in_flight = 64\nrate = {rate:?}\ndrain_timeout = \"10s\""))
        .replace(&format!("keyspace = \"{ks}\""), &format!("keyspace = \"{keyspace_for_schema}\""))
}

/// Polls `/status` until `check` holds, for up to `limit`; returns how long it took.
fn until(
    d: &Daemon,
    limit: Duration,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let s = d.status();
        if check(&s) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; last status {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Method, path, body, headers, expected status, words of the expected JSON error.
type BadRequest<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    u16,
    &'a str,
);

/// The token, and the JSON content type every control body must declare.
fn auth() -> [(&'static str, &'static str); 2] {
    [
        ("Authorization", "Bearer test-token-0123"),
        ("Content-Type", "application/json"),
    ]
}

fn near(x: f64, target: f64, tolerance: f64) -> bool {
    (x - target).abs() <= target * tolerance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_concurrency_and_pause_change_a_running_load_and_bad_requests_change_nothing() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("control");
    let spec = spec_file("control", &spec_text(&ks, 500.0, &ks));
    let addr = "127.0.0.1:19466";
    let mut d = Daemon::start(&spec, addr, &[], &[("CQLPULSE_CONTROL_TOKEN", TOKEN)]);
    d.wait_ready();
    // Steady means past the first seconds too: a fresh node answers slowly at first, and the
    // open-loop schedule then catches up, which would read as a wrong rate below.
    until(&d, Duration::from_secs(15), "steady at 500/s", |s| {
        s["elapsed_seconds"].as_f64().unwrap() >= 5.0
            && near(s["achieved_rate"].as_f64().unwrap(), 500.0, 0.1)
    });

    // The rate: target at once, achieved within 2 s.
    let (code, body) = http(
        addr,
        "PUT",
        "/control/rate",
        Some(r#"{"rate": 1000}"#),
        &auth(),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.status()["target_rate"], 1000.0);
    let (_, m) = get(addr, "/metrics");
    assert!(
        scraped(&m, "cqlpulse_target_rate") == Some(1000.0),
        "the gauge follows at once"
    );
    let took = until(
        &d,
        Duration::from_secs(2),
        "achieved follows the new rate",
        |s| near(s["achieved_rate"].as_f64().unwrap(), 1000.0, 0.1),
    );
    eprintln!("achieved rate followed in {took:?}");

    // Concurrency.
    let (code, _) = http(
        addr,
        "PUT",
        "/control/concurrency",
        Some(r#"{"concurrency": 16}"#),
        &auth(),
    );
    assert_eq!(code, 200);
    assert_eq!(d.status()["in_flight_limit"], 16);
    let (_, m) = get(addr, "/metrics");
    assert_eq!(scraped(&m, "cqlpulse_in_flight_limit"), Some(16.0));

    // Pause and resume.
    assert_eq!(http(addr, "POST", "/control/pause", None, &auth()).0, 200);
    until(&d, Duration::from_secs(2), "paused load stops", |s| {
        s["paused"] == true && s["achieved_rate"].as_f64().unwrap() < 1.0
    });
    assert_eq!(d.status()["target_rate"], 0.0);
    assert_eq!(http(addr, "POST", "/control/resume", None, &auth()).0, 200);
    until(&d, Duration::from_secs(3), "resumed load returns", |s| {
        near(s["achieved_rate"].as_f64().unwrap(), 1000.0, 0.1)
    });

    // Bad requests: each refused with its status and a JSON error, none changes anything.
    let before = d.status();
    let bad: &[BadRequest] = &[
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": 10}"#),
            &[],
            401,
            "missing `Authorization",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": 10}"#),
            &[("Authorization", "Bearer wrong-token")],
            401,
            "wrong bearer token",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": 10}"#),
            &[("Authorization", "test-token-0123")],
            401,
            "missing",
        ),
        ("POST", "/control/pause", None, &[], 401, "missing"),
        (
            "POST",
            "/control/reload",
            None,
            &[("Authorization", "Bearer ")],
            401,
            "missing",
        ),
        (
            "POST",
            "/control/resume",
            None,
            &[("Authorization", "Basic dGVzdDp0ZXN0")],
            401,
            "missing",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": -5}"#),
            &auth(),
            400,
            "rate: must be 0 (unthrottled) or between 0.01 and 1e8",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": "fast"}"#),
            &auth(),
            400,
            "invalid type: string",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": 10, "burst": 3}"#),
            &auth(),
            400,
            "unknown field `burst`",
        ),
        (
            "PUT",
            "/control/rate",
            Some(r#"{"rate": 10"#),
            &auth(),
            400,
            "EOF while parsing",
        ),
        (
            "PUT",
            "/control/rate",
            Some("rate=10"),
            &auth(),
            400,
            "invalid JSON body",
        ),
        (
            "PUT",
            "/control/rate",
            None,
            &auth(),
            400,
            "a JSON body is required",
        ),
        (
            "PUT",
            "/control/rate",
            Some("{}"),
            &auth(),
            400,
            "missing field `rate`",
        ),
        (
            "PUT",
            "/control/rate",
            Some("[10]"),
            &auth(),
            400,
            "expected an object",
        ),
        (
            "PUT",
            "/control/concurrency",
            Some(r#"{"concurrency": 0}"#),
            &auth(),
            400,
            "must be at least 1",
        ),
        (
            "PUT",
            "/control/concurrency",
            Some(r#"{"concurrency": 65}"#),
            &auth(),
            400,
            "above max_in_flight (64)",
        ),
        (
            "PUT",
            "/control/concurrency",
            Some(r#"{"concurrency": -1}"#),
            &auth(),
            400,
            "invalid value",
        ),
        (
            "PUT",
            "/control/concurrency",
            Some(r#"{"concurrency": 1.5}"#),
            &auth(),
            400,
            "invalid type",
        ),
        (
            "PUT",
            "/control/concurrency",
            Some(r#"{"workers": 4}"#),
            &auth(),
            400,
            "unknown field `workers`",
        ),
        ("GET", "/control/rate", None, &auth(), 405, ""),
        (
            "POST",
            "/control/rate",
            Some(r#"{"rate": 10}"#),
            &auth(),
            405,
            "",
        ),
        ("POST", "/control/explode", None, &auth(), 404, ""),
    ];
    assert!(bad.len() >= 15);
    for (method, path, body, headers, status, words) in bad {
        let (code, text) = http(addr, method, path, *body, headers);
        assert_eq!(code, *status, "{method} {path} {body:?}: {text}");
        if !words.is_empty() {
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
            let e = v["error"].as_str().unwrap();
            assert!(
                e.contains(words),
                "{method} {path} {body:?}: `{e}` lacks `{words}`"
            );
        }
    }
    let after = d.status();
    for key in [
        "target_rate",
        "in_flight_limit",
        "concurrency",
        "paused",
        "max_in_flight",
    ] {
        assert_eq!(
            before[key], after[key],
            "{key} changed by a refused request"
        );
    }

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0), "{}", d.log());
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_control_is_refused_off_loopback() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("notoken");
    let spec = spec_file("notoken", &spec_text(&ks, 100.0, &ks));
    // Listening on every address makes the listener non-loopback; the test still connects
    // through 127.0.0.1.
    let d = Daemon::start(&spec, "0.0.0.0:19467", &[], &[]);
    let (code, text) = http("127.0.0.1:19467", "POST", "/control/pause", None, &[]);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("control is disabled"));
    assert_eq!(get("127.0.0.1:19467", "/healthz").0, 200);
    drop(d);
    let d = Daemon::start(&spec, "127.0.0.1:19467", &[], &[]);
    assert_eq!(
        http("127.0.0.1:19467", "POST", "/control/pause", None, &[]).0,
        200,
        "loopback without a token"
    );
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_hot_changes_and_refuses_bad_or_structural_ones() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("reload");
    let spec = spec_file("reload", &spec_text(&ks, 200.0, &ks));
    let addr = "127.0.0.1:19466";
    let mut d = Daemon::start(&spec, addr, &[], &[]);
    d.wait_ready();

    std::fs::write(&spec, spec_text(&ks, 800.0, &ks)).unwrap();
    d.signal("HUP");
    until(&d, Duration::from_secs(2), "valid reload applied", |s| {
        s["target_rate"] == 800.0 && s["reloads"]["applied"] == 1
    });
    until(
        &d,
        Duration::from_secs(3),
        "achieved follows the reloaded rate",
        |s| near(s["achieved_rate"].as_f64().unwrap(), 800.0, 0.1),
    );

    std::fs::write(
        &spec,
        spec_text(&ks, 800.0, &ks).replace("rate = 800.0", "rate = \"fast\""),
    )
    .unwrap();
    d.signal("HUP");
    until(&d, Duration::from_secs(2), "invalid reload rejected", |s| {
        s["reloads"]["rejected"] == 1
    });
    assert_eq!(d.status()["target_rate"], 800.0, "the running spec stays");

    std::fs::write(&spec, spec_text(&ks, 300.0, "some_other_keyspace")).unwrap();
    let (code, text) = http(addr, "POST", "/control/reload", None, &[]);
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("schema.keyspace"),
        "the structural field is named: {text}"
    );
    let s = d.status();
    assert_eq!(
        (s["target_rate"].as_f64(), s["reloads"]["rejected"].as_u64()),
        (Some(800.0), Some(2))
    );
    let (_, m) = get(addr, "/metrics");
    assert_eq!(
        scraped(&m, "cqlpulse_config_reloads_total{result=\"rejected\"}"),
        Some(2.0),
        "counted in metrics"
    );
    assert!(
        d.log().contains("load.rate: invalid type"),
        "the bad reload is logged with its field"
    );

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_accounts_for_every_op() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("term");
    let spec = spec_file("term", &spec_text(&ks, 3000.0, &ks));
    let summary_path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("term-summary.json");
    let mut d = Daemon::start(
        &spec,
        "127.0.0.1:19466",
        &["--summary-json", summary_path.to_str().unwrap()],
        &[],
    );
    d.wait_ready();
    until(&d, Duration::from_secs(20), "a few seconds of load", |s| {
        s["ok"].as_u64().unwrap() >= 10_000
    });
    let (_, ready) = get(&d.addr, "/readyz");
    assert!(ready.contains("\"ready\":true"));
    let t = Instant::now();
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(12)), Some(0), "{}", d.log());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "exit within the drain timeout"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap();
    assert!(n("sent") > 5000, "{s}");
    assert_eq!(n("ok") + n("failed") + n("abandoned"), n("sent"));
    assert_eq!(
        n("sent") + n("dropped") + n("not_sent_run_ended"),
        n("scheduled")
    );
    assert_eq!(
        n("abandoned"),
        0,
        "in-flight requests finished while draining"
    );
    assert_eq!(
        count(&session().await, &format!("{ks}.testtable")).await,
        n("ok") as i64,
        "every ok write is in the table"
    );
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_policy_stops_a_failing_run_with_status_3() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("abort");
    // Every insert is rejected: the key is longer than Cassandra's 64 KiB limit.
    let spec = testtable_spec(
        &ks,
        "model = \"chains\"\nchains = 4\nrate = 200.0\nabort = { consecutive_errors = 50 }",
    )
    .replace("size = 8", "size = 70000");
    let mut d = Daemon::start(&spec_file("abort", &spec), "127.0.0.1:19466", &[], &[]);
    assert_eq!(d.wait(Duration::from_secs(30)), Some(3), "{}", d.log());
    assert!(d.log().contains("consecutive errors"), "{}", d.log());
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reloads_by_signal_and_http_apply_each_change_once() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("reloadrace");
    let spec = spec_file("reloadrace", &spec_text(&ks, 200.0, &ks));
    let addr = "127.0.0.1:19466";
    let mut d = Daemon::start(&spec, addr, &[], &[]);
    d.wait_ready();
    // Each round changes the rate once and asks for it to be reloaded nine times at once:
    // eight HTTP reloads and a SIGHUP. One of them applies it; the others, serialised behind
    // it, find the spec they would load already in force.
    let (rounds, http_reloads) = (8u64, 8u64);
    for round in 1..=rounds {
        let rate = 200.0 + 10.0 * round as f64;
        std::fs::write(&spec, spec_text(&ks, rate, &ks)).unwrap();
        std::thread::scope(|s| {
            let answers: Vec<_> = (0..http_reloads)
                .map(|_| s.spawn(|| http(addr, "POST", "/control/reload", None, &[])))
                .collect();
            d.signal("HUP");
            let mut applied = 0;
            for a in answers {
                let (code, body) = a.join().unwrap();
                assert_eq!(code, 200, "{body}");
                let result = serde_json::from_str::<serde_json::Value>(&body).unwrap()["result"]
                    .as_str()
                    .map(str::to_string);
                match result.as_deref() {
                    Some("applied") => applied += 1,
                    Some("unchanged") => {}
                    other => panic!("reload result {other:?}: {body}"),
                }
            }
            assert!(
                applied <= 1,
                "one change is applied once, not {applied} times"
            );
        });
        wait_for(Duration::from_secs(5), "the round's reloads", || {
            d.status()["reloads"]["applied"] == round * (http_reloads + 1)
        });
        assert_eq!(d.status()["target_rate"], rate);
    }
    let log = d.log();
    assert_eq!(
        log.matches("reload applied: hot fields applied").count() as u64,
        rounds,
        "each change applied exactly once: {log}"
    );
    assert_eq!(
        log.matches("reload unchanged: no change").count() as u64,
        rounds * http_reloads
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cut_off_by_the_drain_deadline_are_counted_as_abandoned() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("abandon");
    // 256 requests in flight, and no time to drain them: SIGTERM gives up what is out.
    let spec = testtable_spec(
        &ks,
        "model = \"chains\"\nchains = 256\nmax_in_flight = 256\ndrain_timeout = \"0s\"",
    );
    let summary_path =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abandon-summary.json");
    let mut d = Daemon::start(
        &spec_file("abandon", &spec),
        "127.0.0.1:19466",
        &["--summary-json", summary_path.to_str().unwrap()],
        &[],
    );
    d.wait_ready();
    until(&d, Duration::from_secs(20), "a few seconds of load", |s| {
        s["ok"].as_u64().unwrap() >= 5_000
    });
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(12)), Some(0), "{}", d.log());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap();
    // Counted by the lanes when they gave up, not derived as sent - ok - failed.
    assert!(n("abandoned") > 0, "{s}");
    assert_eq!(n("ok") + n("failed") + n("abandoned"), n("sent"), "{s}");
    // Unthrottled: the ops handed out, each sent.
    assert_eq!(n("scheduled"), n("sent"), "{s}");
    // An abandoned write may or may not have landed; every ok one did.
    let rows = count(&session().await, &format!("{ks}.testtable")).await as u64;
    assert!(
        rows >= n("ok") && rows <= n("ok") + n("abandoned"),
        "{rows} rows: {s}"
    );
    drop_keyspace(&session().await, &ks).await;
}
