//! A cluster that is not there, and one that dies and comes back: cqlpulse stays up, counts
//! what happens by kind, and recovers without a restart.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn metric(addr: &str, name: &str) -> f64 {
    let (_, m) = get(addr, "/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_keeps_the_daemon_up_and_not_ready() {
    // No node needed: the contact point is a closed port on loopback.
    let spec = spec_file(
        "unreachable",
        &testtable_spec("t_unreachable", "rate = 100.0"),
    );
    let mut d = Daemon::start(
        &spec,
        "127.0.0.1:19469",
        &["--contact-points", "127.0.0.1:1"],
        &[],
    );
    wait_for(
        Duration::from_secs(10),
        "two connection attempts logged",
        || d.log().matches("cannot connect to 127.0.0.1:1").count() >= 2,
    );
    assert_eq!(get(&d.addr, "/healthz").0, 200);
    let (code, body) = get(&d.addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("connecting"));
    assert_eq!(d.status()["phase"], "connecting");
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    d.signal("TERM");
    assert_eq!(
        d.wait(Duration::from_secs(5)),
        Some(0),
        "stops promptly while connecting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_killed_and_restarted_costs_errors_not_the_process() {
    require_cassandra();
    let _serial = serial().await;
    let pid_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cassandra/cassandra.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|_| {
        panic!(
            "this test kills the node started by scripts/cassandra; no {}",
            pid_file.display()
        )
    });
    let ks = keyspace("kill");
    let rate = 1000.0;
    let load = format!(
        "model = \"chains\"\nchains = 16\nmax_in_flight = 64\nrate = {rate:?}\ndrain_timeout = \"5s\""
    );
    let spec = spec_file(
        "kill",
        &testtable_spec(&ks, &load)
            .replace("[schema]", "[cluster]\nrequest_timeout = \"2s\"\n[schema]"),
    );
    let mut d = Daemon::start(&spec, "127.0.0.1:19468", &[], &[]);
    d.wait_ready();
    wait_for(
        Duration::from_secs(20),
        "steady load before the kill",
        || d.status()["ok"].as_u64().unwrap() >= 3000,
    );
    let rss_before = metric(&d.addr, "process_resident_memory_bytes");

    let kill = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for(
        Duration::from_secs(20),
        "errors counted with the node down",
        || d.status()["errors"].as_u64().unwrap() >= 1000,
    );
    assert_eq!(get(&d.addr, "/healthz").0, 200, "alive with the node gone");
    let s = d.status();
    let kinds = s["errors_by_kind"].as_object().unwrap().clone();
    assert!(s["errors"].as_u64().unwrap() > 0, "{s}");
    assert!(
        kinds.keys().all(
            |k| ["connection", "client_timeout", "unavailable", "overloaded"].contains(&k.as_str())
        ),
        "{kinds:?}"
    );
    assert!(s["in_flight"].as_u64().unwrap() <= 64, "the cap holds");

    let started =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cassandra"))
            .arg("start")
            .env("CASSANDRA_FAST", "1")
            .status()
            .unwrap();
    assert!(started.success(), "scripts/cassandra start after the kill");
    let ready = Instant::now();
    loop {
        let achieved = d.status()["achieved_rate"].as_f64().unwrap();
        if achieved >= 0.9 * rate {
            eprintln!(
                "back to {achieved:.0} ops/s {:?} after the node was ready",
                ready.elapsed()
            );
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "not back to 90% of {rate} within 20 s: {}",
            d.status()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let rss_after = metric(&d.addr, "process_resident_memory_bytes");
    assert!(
        rss_after < 100e6 && rss_after < rss_before * 2.0,
        "memory bounded: {rss_before} -> {rss_after} bytes"
    );
    let s = d.status();
    let dropped = s["dropped"].as_u64().unwrap();
    assert_eq!(
        dropped, 0,
        "on_backlog = queue: ops that could not be sent were queued, not lost"
    );

    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(15)), Some(0), "{}", d.log());
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_cannot_be_written_fail_the_run_at_its_end_with_their_paths() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("unwritten");
    let spec = spec_file(
        "unwritten",
        &testtable_spec(&ks, "model = \"chains\"\nchains = 8\nops = 300"),
    );
    let missing = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("no-such-dir")
        .join("summary.json");
    let run = |args: &[&str], stderr: std::process::Stdio| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
            .arg("run")
            .arg(&spec)
            .args(["--no-http", "--status-every", "0s", "--log-format", "text"])
            .args(args)
            .stderr(stderr)
            .output()
            .expect("run cqlpulse")
    };
    // /dev/full opens and refuses every write: a full disk.
    let out = run(
        &[
            "--hdr-log",
            "/dev/full",
            "--summary-json",
            missing.to_str().unwrap(),
        ],
        std::process::Stdio::piped(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("scheduled 300: sent 300 (ok 300"),
        "the run went on and its summary is on stdout: {stdout}"
    );
    assert!(
        stderr.contains("cannot write the HDR log /dev/full: No space left on device"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "cannot write the summary JSON {}",
            missing.display()
        )),
        "{stderr}"
    );

    // The log itself on a full disk: nothing to read, but the exit status says it.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = run(&[], full.into());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("scheduled 300: sent 300"),
        "the summary still reaches stdout"
    );
    drop_keyspace(&session().await, &ks).await;
}
