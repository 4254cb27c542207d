//! Several instances split one workload without coordinating: disjoint keys, exact totals,
//! and rates that add up in Prometheus.

mod common;

use std::time::{Duration, SystemTime};

use common::*;

const PORTS: [&str; 3] = ["127.0.0.1:19464", "127.0.0.1:19465", "127.0.0.1:19466"];

/// A start barrier a few seconds ahead, so the three processes begin together.
fn start_at(secs: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(secs)).to_string()
}

async fn create_table(ks: &str) {
    let s = session().await;
    drop_keyspace(&s, ks).await;
    s.query_unpaged(format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"), ()).await.unwrap();
    s.query_unpaged(format!("CREATE TABLE {ks}.testtable (thekey text, col1 text, col2 text, PRIMARY KEY (thekey, col1))"), ()).await.unwrap();
}

/// The shared spec: the schema exists already, so no instance touches it.
fn sharded_spec(ks: &str, load: &str) -> std::path::PathBuf {
    let text = testtable_spec(ks, load).replace("mode = \"recreate\"", "mode = \"skip\"");
    spec_file(&format!("shard-{ks}"), &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_populate_exactly_the_keys_once() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("shards_populate");
    create_table(&ks).await;
    let n: u64 = 30_001; // not divisible by 3: the remainder must land somewhere, exactly once
    let spec = sharded_spec(&ks, &format!("model = \"chains\"\nchains = 32\nops = {n}"));
    let at = start_at(4);
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| {
            let idx = i.to_string();
            let json = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("shard-{i}.json"));
            Daemon::start(
                &spec,
                PORTS[i],
                &[
                    "--shard-index",
                    &idx,
                    "--shard-count",
                    "3",
                    "--set",
                    &format!("shard.start_at=\"{at}\""),
                    "--summary-json",
                    json.to_str().unwrap(),
                ],
                &[],
            )
        })
        .collect();
    let mut sent = 0;
    for (i, d) in daemons.iter_mut().enumerate() {
        assert_eq!(
            d.wait(Duration::from_secs(120)),
            Some(0),
            "shard {i}: {}",
            d.log()
        );
        let json =
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("shard-{i}.json"));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        assert_eq!(s["failed"], 0);
        sent += s["ok"].as_u64().unwrap();
    }
    assert_eq!(sent, n, "the shares add up to the op count");
    let session = session().await;
    assert_eq!(
        count(&session, &format!("{ks}.testtable")).await,
        n as i64,
        "every key written once: no overlap, no gap"
    );
    // Shard i owns a contiguous range: its first and last keys are there, one past is not.
    let exists = |key: u64| {
        let session = &session;
        let ks = &ks;
        async move {
            let r = session
                .query_unpaged(
                    format!("SELECT thekey FROM {ks}.testtable WHERE thekey = '{key}'"),
                    (),
                )
                .await
                .unwrap()
                .into_rows_result()
                .unwrap();
            r.rows_num() > 0
        }
    };
    for k in [0, 10_000, 10_001, 20_000, 20_001, 30_000] {
        assert!(exists(k).await, "key {k}");
    }
    assert!(!exists(n).await, "no key past the range");
    drop_keyspace(&session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_add_up_to_the_total_rate_in_prometheus() {
    require_cassandra();
    let prom = prometheus_addr();
    let _serial = serial().await;
    let ks = keyspace("shards_rate");
    create_table(&ks).await;
    // A rate three debug-build daemons and the node sustain on two cores: a shard that falls
    // behind catches up later (open loop), which a 10 s window would read as a wrong sum.
    let total = 1200.0;
    let spec = sharded_spec(
        &ks,
        &format!("model = \"chains\"\nchains = 16\nrate = {total:?}\nduration = \"20s\""),
    );
    let at = start_at(4);
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| {
            Daemon::start(
                &spec,
                PORTS[i],
                &[
                    "--set",
                    &format!("shard.index={i}"),
                    "--set",
                    "shard.count=3",
                    "--set",
                    &format!("shard.start_at=\"{at}\""),
                    "--linger",
                    "3s",
                ],
                &[],
            )
        })
        .collect();
    let t0 = humantime::parse_rfc3339_weak(&at)
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (i, d) in daemons.iter_mut().enumerate() {
        assert_eq!(
            d.wait(Duration::from_secs(90)),
            Some(0),
            "shard {i}: {}",
            d.log()
        );
    }
    let job = "job=\"cqlpulse\"";
    let mid = t0 + 14.0;
    let achieved = promql_value(
        &prom,
        &format!("sum(rate(cqlpulse_requests_total{{{job}}}[10s]))"),
        mid,
    )
    .expect("rates scraped");
    assert!(
        (achieved - total).abs() / total < 0.05,
        "sum of shard rates {achieved:.1} vs {total}"
    );
    let target = promql_value(&prom, &format!("sum(cqlpulse_target_rate{{{job}}})"), mid).unwrap();
    assert!((target - total).abs() < 1e-6, "sum of targets {target}");
    let shards = promql_value(
        &prom,
        &format!("count(cqlpulse_run_info{{{job},shard_count=\"3\"}})"),
        mid,
    )
    .unwrap();
    assert_eq!(shards, 3.0);
    drop_keyspace(&session().await, &ks).await;
}
