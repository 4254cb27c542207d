//! The five concurrency models and the open-loop rate, against the real node.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_writes_exactly_n_distinct_rows_within_its_cap() {
    require_cassandra();
    let _serial = serial().await;
    let session = session().await;
    let n = 3_000;
    for (model, knob, cap) in [
        ("sync", "workers = 4", 4),
        ("batches", "batch_size = 50", 50),
        ("pipeline", "window = 40", 40),
        ("unbounded", "max_in_flight = 80", 80),
        ("chains", "chains = 30", 30),
    ] {
        let ks = keyspace(&format!("model_{model}"));
        let spec = testtable_spec(&ks, &format!("model = \"{model}\"\n{knob}\nops = {n}"));
        let summary = run(&spec_file(model, &spec), vec![]).await;
        assert_eq!(
            (summary.sent, summary.ok, summary.failed),
            (n, n, 0),
            "{model}: {}",
            summary.table()
        );
        assert_eq!(summary.in_flight_limit, cap, "{model}");
        assert!(
            summary.peak_in_flight <= cap,
            "{model}: peak {} above cap {cap}",
            summary.peak_in_flight
        );
        assert!(summary.peak_in_flight >= 1);
        assert_eq!(
            count(&session, &format!("{ks}.testtable")).await,
            n as i64,
            "{model}: rows read back"
        );
        drop_keyspace(&session, &ks).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_rate_is_achieved_within_five_percent() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("rate");
    let spec = testtable_spec(
        &ks,
        "model = \"chains\"\nchains = 32\nrate = 2000.0\nduration = \"10s\"",
    );
    let summary = run(&spec_file("rate", &spec), vec![]).await;
    let achieved = summary.total.ops_per_second;
    assert!(
        (achieved - 2000.0).abs() / 2000.0 < 0.05,
        "achieved {achieved:.1} ops/s\n{}",
        summary.table()
    );
    assert!(summary.schedule_lag.is_some() && summary.total.response_time.is_some());
    // With queueing nothing is dropped; the 20,000 ops due in 10 s were sent, or counted as
    // still queued when the run ended.
    assert_eq!(summary.dropped, 0, "{}", summary.table());
    assert_eq!(
        summary.scheduled,
        summary.sent + summary.not_sent_run_ended,
        "{}",
        summary.table()
    );
    assert_eq!(summary.scheduled, 20_000, "{}", summary.table());
    // Each term is counted where it happens (scheduled from the schedule, abandoned by the
    // lanes at the drain deadline): the sums are checks.
    assert_eq!(
        (
            summary.ok + summary.failed + summary.abandoned,
            summary.abandoned
        ),
        (summary.sent, 0),
        "{}",
        summary.table()
    );
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_rate_shows_as_lag_or_drops_never_as_a_quietly_lower_rate() {
    require_cassandra();
    let _serial = serial().await;
    let session = session().await;
    // One request at a time cannot do 50,000 ops/s against any node.
    let ks = keyspace("queue");
    let spec = testtable_spec(
        &ks,
        "model = \"sync\"\nworkers = 1\nrate = 50000.0\nduration = \"4s\"",
    );
    let q = run(&spec_file("queue", &spec), vec![]).await;
    let lag = q.schedule_lag.clone().expect("lag measured");
    assert!(
        lag.max_ms > 2000.0,
        "queued ops wait longer and longer: {lag:?}"
    );
    let response = q.total.response_time.clone().unwrap();
    let service = q.total.service_time.clone().unwrap();
    assert!(
        response.p50_ms > 10.0 * service.p50_ms,
        "response time carries the queueing: {response:?} vs {service:?}"
    );
    // Queued, never dropped: the 200,000 due ops were sent or are counted as not sent.
    assert_eq!(q.dropped, 0, "{}", q.table());
    assert_eq!(q.scheduled, q.sent + q.not_sent_run_ended);
    assert_eq!(q.scheduled, 200_000, "{}", q.table());
    assert!(q.not_sent_run_ended > 100_000, "{}", q.table());
    assert_eq!(q.ok + q.failed + q.abandoned, q.sent, "{}", q.table());
    drop_keyspace(&session, &ks).await;

    let ks = keyspace("drop");
    let spec = testtable_spec(
        &ks,
        "model = \"sync\"\nworkers = 1\nrate = 50000.0\non_backlog = \"drop\"\nduration = \"4s\"",
    );
    let d = run(&spec_file("drop", &spec), vec![]).await;
    assert!(
        d.dropped > 100_000,
        "most of 200,000 scheduled ops are dropped and counted: {}",
        d.table()
    );
    // The schedule's own count, exact: a lane that sees the end late no longer counts ops
    // due after it as dropped.
    assert_eq!(d.scheduled, 200_000, "{}", d.table());
    assert_eq!(
        d.scheduled,
        d.sent + d.dropped + d.not_sent_run_ended,
        "{}",
        d.table()
    );
    assert_eq!(d.ok + d.failed + d.abandoned, d.sent, "{}", d.table());
    assert_eq!(
        count(&session, &format!("{ks}.testtable")).await,
        d.ok as i64
    );
    drop_keyspace(&session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_honours_its_weights() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("mixed");
    let spec = format!(
        r#"
name = "mixed"
[schema]
keyspace = "{ks}"
mode = "recreate"
statements = ["CREATE TABLE IF NOT EXISTS kv (k bigint PRIMARY KEY, v blob)"]
[data.seq]
kind = "sequence"
[data.any]
kind = "uniform"
min = 0
max = 999
[data.v]
kind = "blob"
size = 32
[[ops]]
name = "write"
cql = "INSERT INTO kv (k, v) VALUES (?, ?)"
args = ["any", "v"]
weight = 1.0
[[ops]]
name = "read"
cql = "SELECT k, v FROM kv WHERE k = ?"
args = ["any"]
weight = 3.0
[load]
model = "chains"
chains = 32
ops = 8000
"#
    );
    let s = run(&spec_file("mixed", &spec), vec![]).await;
    let reads = s.ops.iter().find(|o| o.name == "read").unwrap();
    let writes = s.ops.iter().find(|o| o.name == "write").unwrap();
    assert_eq!(reads.count + writes.count, 8000);
    let share = reads.count as f64 / 8000.0;
    // Binomial(8000, 0.75): sigma is about 0.005; allow 4 sigma.
    assert!((share - 0.75).abs() < 0.02, "read share {share}");
    assert!(
        reads.rows > 0 && reads.rows <= reads.count,
        "reads return rows: {}",
        reads.rows
    );
    assert!(
        writes.payload_bytes == writes.count * 40,
        "8-byte key + 32-byte blob per write"
    );
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_runs_each_model_on_a_fresh_keyspace_and_prints_the_table() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("compare");
    let spec = spec_file(
        "compare",
        &testtable_spec(&ks, "model = \"chains\"\nops = 100"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
        .arg("compare")
        .arg(&spec)
        .args([
            "--models",
            "sync,pipeline,chains",
            "--ops",
            "1500",
            "--concurrency",
            "20",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let models: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["sync", "pipeline", "chains"]);
    for r in &rows {
        assert_eq!(r["ops"], 1500, "{r}");
        assert_eq!(r["errors"], 0);
        assert!(
            r["ops_per_second"].as_f64().unwrap() > 0.0
                && r["client_cpu_us_per_op"].as_f64().unwrap() > 0.0
        );
    }
    assert_eq!(rows[1]["knob"], "window=20");
    // Recreated before each model: the table holds the last model's rows only.
    assert_eq!(
        count(&session().await, &format!("{ks}.testtable")).await,
        1500
    );
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_json_and_the_hdr_interval_log_account_for_every_op() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("hdrlog");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (log, json) = (dir.join("run.hlog"), dir.join("run.json"));
    let spec = spec_file(
        "hdrlog",
        &testtable_spec(
            &ks,
            "model = \"pipeline\"\nwindow = 16\nrate = 2000.0\nops = 6000",
        ),
    );
    let loaded = cqlpulse::daemon::Loaded::load(spec, vec![]).unwrap();
    let opts = cqlpulse::daemon::RunOptions {
        hdr_log: Some(log.clone()),
        summary_json: Some(json.clone()),
        ..Default::default()
    };
    cqlpulse::daemon::run(
        loaded,
        opts,
        tokio_util::sync::CancellationToken::new(),
        |_, _| async {},
    )
    .await
    .unwrap();

    let text = std::fs::read(&log).unwrap();
    let mut deserializer = Deserializer::new();
    let mut recorded = 0;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&text) {
        if let LogEntry::Interval(h) = entry.expect("a well-formed interval log") {
            assert_eq!(h.tag().map(|t| t.as_str()), Some("insert"));
            let bytes = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> =
                deserializer.deserialize(&mut bytes.as_slice()).unwrap();
            recorded += hist.len();
            intervals += 1;
        }
    }
    assert_eq!(recorded, 6000, "every op is in exactly one interval");
    assert!(intervals >= 4, "about two per second over 3 s: {intervals}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(s["total"]["count"], 6000);
    assert_eq!(s["ops"][0]["name"], "insert");
    for key in ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"] {
        assert!(
            s["total"]["service_time"][key].as_f64().unwrap() > 0.0,
            "{key}"
        );
        assert!(
            s["total"]["response_time"][key].as_f64().unwrap()
                >= s["total"]["service_time"][key].as_f64().unwrap() * 0.99,
            "{key}"
        );
    }
    drop_keyspace(&session().await, &ks).await;
}

/// Standard base64 (the interval log's encoding), without a crate for one test.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    } as u32;
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, &c| (acc << 6) | value(c)) << (6 * (4 - chunk.len()));
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..chunk.len()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sync_workers_keep_statistics_per_lane_not_per_worker() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("workers");
    // A lane (and its HDR histograms) per worker took 12.8 GiB at 1,000 workers and 5,000
    // ops/s; the workers now share their thread's lane.
    let spec = testtable_spec(
        &ks,
        "model = \"sync\"\nworkers = 1000\nrate = 2000.0\nduration = \"5s\"",
    );
    let s = run(&spec_file("workers", &spec), vec![]).await;
    let mib = s.peak_rss_bytes as f64 / (1024.0 * 1024.0);
    assert!(mib < 256.0, "peak RSS {mib:.0} MiB\n{}", s.table());
    assert_eq!(s.in_flight_limit, 1000);
    assert!(s.peak_in_flight <= 1000, "{}", s.table());
    assert_eq!(s.scheduled, 10_000, "{}", s.table());
    assert_eq!(
        s.sent + s.dropped + s.not_sent_run_ended,
        10_000,
        "{}",
        s.table()
    );
    assert_eq!(s.ok + s.failed + s.abandoned, s.sent, "{}", s.table());
    drop_keyspace(&session().await, &ks).await;
}
