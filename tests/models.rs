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
    // At most one op per lane can be due and not yet sent when the duration ends (it is
    // counted as dropped while draining); with queueing, nothing else is dropped.
    assert!(summary.dropped <= 2, "{}", summary.table());
    assert_eq!(summary.scheduled, summary.sent + summary.dropped);
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
    assert_eq!(d.scheduled, d.sent + d.dropped);
    assert!(
        (d.scheduled as f64 - 200_000.0).abs() < 10_000.0,
        "the schedule ran at the target: {}",
        d.scheduled
    );
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
