//! Verified reads on the real node, in the direction that matters: runs that really lose or
//! change data are caught, with counts that match what was lost. A `TRUNCATE` mid-run makes
//! every later verified read missing; rows written with a short TTL are missing once expired
//! while the same run's rows without one are all there; a second writer with another seed
//! overwriting part of the rows makes that share of reads mismatch. Reads that cannot be
//! verified are refused before any load, with the reason. (The other direction, no false
//! alarm through a rolling restart, is in `tests/cluster.rs`; every type family in
//! `tests/types.rs`.) Needs the node (`scripts/test`).

mod common;

use std::time::Duration;

use common::*;
use cqlpulse::daemon::{Loaded, check};

/// A table, an insert of seed-dependent values with sequence keys, and a read verifying it;
/// `weights` are the insert's and the read's; `extra` adds ops.
fn spec(ks: &str, insert: &str, weights: (f64, f64), extra: &str) -> String {
    format!(
        r#"
name = "verify"
seed = 1
[schema]
keyspace = "{ks}"
mode = "create_if_missing"
statements = ["CREATE TABLE IF NOT EXISTS kv (k bigint PRIMARY KEY, v text, n int)"]
[data.k]
kind = "sequence"
[data.v]
kind = "text"
size = 16
[data.n]
kind = "uniform"
min = 0
max = 1000000
[[ops]]
name = "insert"
cql = "{insert}"
args = ["k", "v", "n"]
weight = {}
[[ops]]
name = "read"
cql = "SELECT v, n FROM kv WHERE k = ?"
verify = "insert"
weight = {}
{extra}
[load]
model = "chains"
chains = 16
rate = 1000.0
duration = "10m"
"#,
        weights.0, weights.1
    )
}

const INSERT: &str = "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)";

/// The op named `name` of `/status`.
fn op(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["ops"]
        .as_array()
        .and_then(|ops| ops.iter().find(|o| o["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no op {name} in {status}"))
}

/// Verified reads of op `name` as (ok, missing, mismatch, skipped).
fn verdicts(status: &serde_json::Value, name: &str) -> (u64, u64, u64, u64) {
    let v = &op(status, name)["verified"];
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    (n("ok"), n("missing"), n("mismatch"), n("skipped"))
}

/// Pauses the daemon and waits until nothing is in flight: every count then stays.
///
/// `paused` shows in /status at once (its gauges are refreshed on a change), the counts only
/// with later snapshots (published every 500 ms from the lanes' reports): a snapshot of
/// before the pause can say `paused` with nothing in flight at that instant (a low rate) while
/// the lanes still send. So this waits for two snapshots published after the pause
/// (`elapsed_seconds` later than when it was asked), both with nothing in flight and the same
/// counts.
fn pause(d: &Daemon) -> serde_json::Value {
    let asked = d.status()["elapsed_seconds"].as_f64().unwrap_or(0.0);
    assert_eq!(http(&d.addr, "POST", "/control/pause", None, &[]).0, 200);
    let mut last = serde_json::Value::Null;
    let mut previous: Option<(f64, serde_json::Value)> = None;
    wait_for(
        Duration::from_secs(30),
        "paused, nothing in flight, counts settled",
        || {
            last = d.status();
            let at = last["elapsed_seconds"].as_f64().unwrap_or(0.0);
            let idle = last["paused"] == true && last["in_flight"] == 0;
            if at <= asked || !idle || previous.as_ref().is_some_and(|(t, _)| *t >= at) {
                return false;
            }
            let settled = previous
                .as_ref()
                .is_some_and(|(_, ok)| *ok == last["ok"] && ok.is_u64());
            previous = Some((at, last["ok"].clone()));
            settled
        },
    );
    last
}

fn resume(d: &Daemon) {
    assert_eq!(http(&d.addr, "POST", "/control/resume", None, &[]).0, 200);
}

/// Rewrites the spec with new weights and reloads it (weights are hot).
fn reweigh(d: &Daemon, path: &std::path::Path, text: String, applied: u64) {
    std::fs::write(path, text).unwrap();
    let (code, body) = http(&d.addr, "POST", "/control/reload", None, &[]);
    assert_eq!(code, 200, "{body}");
    wait_for(Duration::from_secs(5), "weights reloaded", || {
        d.status()["reloads"]["applied"] == applied
    });
}

async fn cql(statement: &str) {
    let mut q = scylla::statement::Statement::new(statement);
    q.set_request_timeout(Some(Duration::from_secs(60)));
    q.set_consistency(scylla::statement::Consistency::All);
    session().await.query_unpaged(q, ()).await.unwrap();
}

/// Writes, then reads back: all there. TRUNCATE: every verified read after it is missing,
/// none ok, none mismatched (every acknowledged row was lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_mid_run_makes_every_later_verified_read_missing() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vtruncate");
    let path = spec_file("vtruncate", &spec(&ks, INSERT, (1.0, 0.0), ""));
    let addr = free_addr();
    let d = Daemon::start(&path, &addr, &[], &[]);
    d.wait_ready();
    wait_for(Duration::from_secs(60), "2,000 rows written", || {
        op(&d.status(), "insert")["ok"].as_u64() >= Some(2000)
    });
    reweigh(&d, &path, spec(&ks, INSERT, (0.0, 1.0), ""), 1);
    wait_for(Duration::from_secs(60), "500 rows read back", || {
        verdicts(&d.status(), "read").0 >= 500
    });
    let before = pause(&d);
    let written = op(&before, "insert")["ok"].as_u64().unwrap();
    let (ok0, missing0, mismatch0, _) = verdicts(&before, "read");
    assert_eq!((missing0, mismatch0), (0, 0), "nothing lost yet: {before}");
    cql(&format!("TRUNCATE {ks}.kv")).await;
    resume(&d);
    wait_for(
        Duration::from_secs(60),
        "1,000 reads after the truncate",
        || verdicts(&d.status(), "read").1 >= 1000,
    );
    let after = pause(&d);
    let (ok, missing, mismatch, _) = verdicts(&after, "read");
    eprintln!(
        "{written} rows written; before TRUNCATE ok {ok0}; after: ok {ok}, missing {missing}, mismatch {mismatch}"
    );
    assert_eq!(
        op(&after, "insert")["ok"].as_u64().unwrap(),
        written,
        "no write after"
    );
    assert_eq!(ok, ok0, "no read after the truncate found its row");
    assert_eq!(mismatch, 0);
    assert!(missing >= 1000);
    assert_eq!(after["verified"]["missing"], missing, "/status total");
    let (code, scrape) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        scraped(
            &scrape,
            "cqlpulse_verified_reads_total{op=\"read\",result=\"missing\"}"
        ),
        Some(missing as f64)
    );
    assert!(
        d.log().contains("verified read: missing row"),
        "the first bad keys are logged: {}",
        d.log()
    );
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

/// Rows written with a 3 s TTL beside rows without one: once the TTL has passed (the table
/// holds only the rows without), every verified read of the TTL rows is missing and every one
/// of the others ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_their_ttl_are_missing_and_the_others_are_not() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vttl");
    let ttl = |w: (f64, f64)| {
        format!(
            "[[ops]]\nname = \"insert_ttl\"\ncql = \"INSERT INTO kv (k, v, n) VALUES (?, ?, ?) USING TTL 3\"\nargs = [\"k\", \"v\", \"n\"]\nweight = {}\n[[ops]]\nname = \"read_ttl\"\ncql = \"SELECT v, n FROM kv WHERE k = ?\"\nverify = \"insert_ttl\"\nweight = {}",
            w.0, w.1
        )
    };
    let path = spec_file("vttl", &spec(&ks, INSERT, (1.0, 0.0), &ttl((1.0, 0.0))));
    let addr = free_addr();
    let d = Daemon::start(&path, &addr, &[], &[]);
    d.wait_ready();
    wait_for(
        Duration::from_secs(60),
        "1,000 rows of each written",
        || {
            let s = d.status();
            op(&s, "insert")["ok"].as_u64() >= Some(1000)
                && op(&s, "insert_ttl")["ok"].as_u64() >= Some(1000)
        },
    );
    let before = pause(&d);
    let (kept, expiring) = (
        op(&before, "insert")["ok"].as_i64().unwrap(),
        op(&before, "insert_ttl")["ok"].as_i64().unwrap(),
    );
    reweigh(
        &d,
        &path,
        spec(&ks, INSERT, (0.0, 1.0), &ttl((0.0, 1.0))),
        1,
    );
    let session = session().await;
    wait_for(Duration::from_secs(30), "the TTL rows expired", || {
        let n = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(count(&session, &format!("{ks}.kv")))
        });
        assert!(n >= kept, "{n} rows, {kept} written without a TTL");
        n == kept
    });
    resume(&d);
    wait_for(Duration::from_secs(60), "500 reads of each", || {
        let s = d.status();
        verdicts(&s, "read").0 >= 500 && verdicts(&s, "read_ttl").1 >= 500
    });
    let after = pause(&d);
    let (ok, missing, mismatch, _) = verdicts(&after, "read");
    let (ttl_ok, ttl_missing, ttl_mismatch, _) = verdicts(&after, "read_ttl");
    eprintln!(
        "{kept} rows kept, {expiring} expired; read: ok {ok}, missing {missing}, mismatch {mismatch}; read_ttl: ok {ttl_ok}, missing {ttl_missing}, mismatch {ttl_mismatch}"
    );
    assert_eq!(
        (missing, mismatch),
        (0, 0),
        "the rows without a TTL are all there"
    );
    assert_eq!((ttl_ok, ttl_mismatch), (0, 0), "no expired row is found");
    assert!(ok >= 500 && ttl_missing >= 500);
    drop(d);
    drop_keyspace(&session, &ks).await;
}

/// A second writer with another seed overwrites the first half of the rows: that share of
/// the verified reads mismatch (within sampling error), none is missing, the rest are ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_with_another_seed_makes_its_share_of_reads_mismatch() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vseed");
    let path = spec_file("vseed", &spec(&ks, INSERT, (1.0, 0.0), ""));
    let addr = free_addr();
    let d = Daemon::start(&path, &addr, &[], &[]);
    d.wait_ready();
    wait_for(Duration::from_secs(60), "3,000 rows written", || {
        op(&d.status(), "insert")["ok"].as_u64() >= Some(3000)
    });
    let before = pause(&d);
    let written = op(&before, "insert")["ok"].as_u64().unwrap();
    assert_eq!(before["errors"], 0, "every write acknowledged: {before}");
    // The second writer: seed 2, op indices 0 .. written/2, the same keys.
    let overwritten = written / 2;
    let other = spec_file(
        "vseed-other",
        &spec(&ks, INSERT, (1.0, 0.0), "").replace("duration = \"10m\"", ""),
    );
    let summary = run(
        &other,
        vec![set("seed", "2"), set("load.ops", &overwritten.to_string())],
    )
    .await;
    assert_eq!(summary.ok, overwritten, "{}", summary.table());
    reweigh(&d, &path, spec(&ks, INSERT, (0.0, 1.0), ""), 1);
    resume(&d);
    wait_for(Duration::from_secs(60), "2,000 verified reads", || {
        let (ok, missing, mismatch, _) = verdicts(&d.status(), "read");
        ok + missing + mismatch >= 2000
    });
    let after = pause(&d);
    let (ok, missing, mismatch, _) = verdicts(&after, "read");
    let checked = ok + missing + mismatch;
    let share = overwritten as f64 / written as f64;
    let seen = mismatch as f64 / checked as f64;
    eprintln!(
        "{written} rows, {overwritten} overwritten ({share:.3}); {checked} reads: ok {ok}, mismatch {mismatch} ({seen:.3}), missing {missing}"
    );
    assert_eq!(missing, 0);
    // Binomial: 2,000 reads at p = 0.5 have a standard deviation of 0.011.
    assert!(
        (seen - share).abs() < 0.06,
        "mismatched share {seen:.3}, overwritten share {share:.3}"
    );
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

/// Reads that cannot be verified are refused by `check --connect` (and so before any load),
/// naming the op, the write and the reason; `check` prints `ok` only when all passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_cannot_be_verified_are_refused_with_the_reason() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vrefuse");
    let base = spec(&ks, INSERT, (1.0, 1.0), "");
    let cases = [
        (
            base.replace("SELECT v, n FROM kv", "SELECT v, n, w FROM kv")
                .replace("v text, n int)", "v text, n int, w int)"),
            "ops[1] (read).verify = \"insert\": it returns column `w`, which insert does not bind from a generator",
        ),
        (
            base.replace("WHERE k = ?\"", "WHERE k = ? AND w = ? ALLOW FILTERING\"")
                .replace("v text, n int)", "v text, n int, w int)"),
            "ops[1] (read).verify = \"insert\": the read's bind marker `w` is not a column insert binds",
        ),
        (
            base.replace(
                "args = [\"k\", \"v\", \"n\"]",
                "args = [\"n\", \"v\", \"n\"]",
            ),
            "ops[1] (read).verify = \"insert\": the key columns it binds (k: integer) are not unique per op index",
        ),
        (base.clone(), ""),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = spec_file(&format!("vrefuse{i}"), text);
        let plan = Loaded::load(path.clone(), vec![]).unwrap().plan;
        match check::connect(&plan).await {
            Ok(()) => assert!(want.is_empty(), "case {i} accepted, expected {want}"),
            Err(e) => {
                let e = e.to_string();
                assert!(!want.is_empty() && e.contains(want), "case {i}: {e}");
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
            .args(["check", "--connect"])
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), want.is_empty(), "case {i}: {stdout}");
        assert_eq!(
            stdout.contains(": ok: "),
            want.is_empty(),
            "case {i}: {stdout}"
        );
    }
    drop_keyspace(&session().await, &ks).await;
}
