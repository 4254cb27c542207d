//! What `/status` says before the engine starts is what runs after it: a rate or a reload
//! applied while the daemon waits for `shard.start_at` is kept by the start (real daemon,
//! real node, HTTP and SIGHUP).

mod common;

use std::time::{Duration, SystemTime};

use common::*;

const ADDR: &str = "127.0.0.1:19466";

/// The spec at `rate` ops/s, starting `secs` from now.
fn delayed_spec(ks: &str, rate: f64, secs: u64) -> String {
    let at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(secs)).to_string();
    let load =
        format!("model = \"chains\"\nchains = 32\nrate = {rate:?}\n\n[shard]\nstart_at = \"{at}\"");
    testtable_spec(ks, &load)
}

/// Waits until the engine has issued for `secs` seconds, then checks the target rate on
/// `/status` and `/metrics`, and what was issued.
fn runs_at(d: &Daemon, rate: f64, secs: f64) {
    wait_for(Duration::from_secs(30), "the run to start", || {
        d.status()["elapsed_seconds"].as_f64().unwrap() >= secs
    });
    let s = d.status();
    assert_eq!(s["target_rate"], rate, "{s}");
    let (_, m) = get(ADDR, "/metrics");
    assert_eq!(scraped(&m, "cqlpulse_target_rate"), Some(rate), "{m}");
    // The schedule issues no more than the rate allows (the node may answer slower, on a
    // machine shared with builds): not the spec's 2000/s.
    let issued = s["issued"].as_f64().unwrap();
    let elapsed = s["elapsed_seconds"].as_f64().unwrap();
    assert!(
        issued <= rate * elapsed * 1.05 + 32.0,
        "issued {issued}: {s}"
    );
}

/// A daemon on `text` (a spec written to a file named after `name`), connected and prepared,
/// still waiting for its start.
fn waiting_daemon(name: &str, text: &str) -> (Daemon, std::path::PathBuf) {
    let spec = spec_file(name, text);
    let d = Daemon::start(&spec, ADDR, &[], &[]);
    d.wait_ready();
    let s = d.status();
    assert_eq!(s["elapsed_seconds"], 0.0, "still waiting for start_at: {s}");
    (d, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_set_while_waiting_for_the_start_is_the_rate_that_runs() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("start_rate");
    let (d, _) = waiting_daemon("start-rate", &delayed_spec(&ks, 2000.0, 15));
    let json = [("Content-Type", "application/json")];
    let (code, body) = http(
        ADDR,
        "PUT",
        "/control/rate",
        Some(r#"{"rate": 500}"#),
        &json,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.status()["target_rate"], 500.0);
    runs_at(&d, 500.0, 3.0);
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_made_while_waiting_for_the_start_is_the_plan_that_runs() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("start_reload");
    let text = delayed_spec(&ks, 2000.0, 15);
    let (d, spec) = waiting_daemon("start-reload", &text);
    std::fs::write(&spec, text.replace("rate = 2000.0", "rate = 300.0")).unwrap();
    d.signal("HUP");
    wait_for(Duration::from_secs(5), "the reload", || {
        d.status()["reloads"]["applied"] == 1
    });
    assert_eq!(d.status()["target_rate"], 300.0);
    runs_at(&d, 300.0, 3.0);
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}
