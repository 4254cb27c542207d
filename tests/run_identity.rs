//! Run identity on real processes against the real node: a run id per process start, a spec
//! digest that follows reloads, the phase as a metric and in `/status`, and a pod whose
//! ordinal is beyond the shard count waiting instead of exiting.

mod common;

use std::time::Duration;

use common::*;

/// The value of the one sample of `/metrics` whose series starts with `prefix`, and the series.
fn sample(addr: &str, prefix: &str) -> (String, f64) {
    let (code, text) = get(addr, "/metrics");
    assert_eq!(code, 200);
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in /metrics:\n{text}"));
    let (series, value) = line.rsplit_once(' ').unwrap();
    (series.to_string(), value.parse().unwrap())
}

/// The phases that are 1 in `/metrics`.
fn phases_on(addr: &str) -> Vec<String> {
    let (_, text) = get(addr, "/metrics");
    text.lines()
        .filter(|l| l.starts_with("cqlpulse_run_phase{") && l.ends_with(" 1"))
        .map(|l| l.split('"').nth(1).unwrap_or("").to_string())
        .collect()
}

fn label<'a>(series: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = series.find(&key).map(|i| i + key.len()).unwrap_or(0);
    series[start..].split('"').next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_id_digest_and_phase_follow_restarts_reloads_and_the_run() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("identity");
    let spec_with = |rate: f64, ops: u64| {
        testtable_spec(
            &ks,
            &format!(
                "model = \"chains\"\nchains = 4\nrate = {rate:?}\nops = {ops}\nwarmup = \"1h\""
            ),
        )
    };
    let spec = spec_file("identity", &spec_with(200.0, 1_000_000));
    let addr = "127.0.0.1:19464";
    let mut d = Daemon::start(&spec, addr, &[], &[]);
    d.wait_ready();

    let (info, one) = sample(addr, "cqlpulse_run_info{");
    assert_eq!(one, 1.0);
    let run_id = label(&info, "run_id").to_string();
    let digest = label(&info, "spec_digest").to_string();
    assert_eq!(run_id.len(), 16, "{info}");
    let status = d.status();
    assert_eq!(status["run_id"], run_id.as_str());
    assert_eq!(status["spec_digest"], digest.as_str());
    assert_eq!(sample(addr, "cqlpulse_shards").1, 1.0);
    // Within the hour of warm-up.
    wait_for(Duration::from_secs(10), "phase warmup", || {
        phases_on(addr) == ["warmup"] && d.status()["run_phase"] == "warmup"
    });

    let (code, body) = http(addr, "POST", "/control/pause", None, &[]);
    assert_eq!(code, 200, "{body}");
    wait_for(Duration::from_secs(5), "phase paused", || {
        phases_on(addr) == ["paused"]
    });
    let (code, body) = http(addr, "POST", "/control/resume", None, &[]);
    assert_eq!(code, 200, "{body}");

    // A reload that changes a hot field: a new digest, the same run.
    std::fs::write(&spec, spec_with(300.0, 1_000_000)).unwrap();
    let (code, body) = http(addr, "POST", "/control/reload", None, &[]);
    assert_eq!(code, 200, "{body}");
    let (info, _) = sample(addr, "cqlpulse_run_info{");
    assert_ne!(label(&info, "spec_digest"), digest, "{info}");
    assert_eq!(label(&info, "run_id"), run_id, "{info}");

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));

    // A new process: a new run id. A short run lingers in phase done for its last scrape.
    std::fs::write(&spec, spec_with(400.0, 100)).unwrap();
    let mut d = Daemon::start(&spec, addr, &["--linger", "60s"], &[]);
    wait_for(Duration::from_secs(60), "phase done", || {
        get(addr, "/status").0 == 200 && d.status()["run_phase"] == "done"
    });
    assert_eq!(phases_on(addr), ["done"]);
    let (info, _) = sample(addr, "cqlpulse_run_info{");
    assert_ne!(
        label(&info, "run_id"),
        run_id,
        "a restart is a new run: {info}"
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_beyond_the_shard_count_waits_and_an_empty_pod_index_uses_the_host_name() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("surplus");
    let spec = spec_file(
        "surplus",
        &(testtable_spec(&ks, "model = \"chains\"\nchains = 2\nrate = 50.0")
            + "[shard]\nindex = \"auto\"\ncount = 3\n"),
    );

    // Ordinal 3 of 3 (a StatefulSet scaled up behind the spec's back).
    let addr = "127.0.0.1:19465";
    let mut d = Daemon::start(&spec, addr, &[], &[("CQLPULSE_POD_INDEX", "3")]);
    assert_eq!(get(addr, "/healthz").0, 200);
    let status = d.status();
    assert!(
        status["waiting"]
            .as_str()
            .is_some_and(|w| w.contains("pod ordinal 3 is not below shard.count (3)")),
        "{status}"
    );
    assert_eq!(status["run_phase"], "starting");
    assert_eq!(get(addr, "/readyz").0, 503);
    assert_eq!(phases_on(addr), ["starting"]);
    assert_eq!(sample(addr, "cqlpulse_shards").1, 3.0);
    wait_for(Duration::from_secs(5), "the reason in the log", || {
        d.log()
            .contains("pod ordinal 3 is not below shard.count (3)")
    });
    // Still waiting, not exited, after the readiness checks above.
    assert!(d.child.try_wait().unwrap().is_none(), "{}", d.log());
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));

    // Kubernetes < 1.28: the pod-index label is missing and the variable is empty.
    let mut d = Daemon::start(
        &spec,
        addr,
        &[],
        &[("CQLPULSE_POD_INDEX", ""), ("HOSTNAME", "cqlpulse-1")],
    );
    d.wait_ready();
    let status = d.status();
    assert_eq!(
        (status["shard"].as_u64(), status["waiting"].is_null()),
        (Some(1), true),
        "{status}"
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0));
    drop_keyspace(&session().await, &ks).await;
}
