//! Vector search on the real node: recall measured by cqlpulse against an independent check.
//! Vectors are ingested by one run; a second run sends ANN queries, every one of them checked
//! (`sample = 1.0`). The test then reads the stored vectors back through the driver, computes
//! the true top k of each query itself (squared distance in f64, as the index's euclidean
//! similarity orders them), sends the same queries again, and counts the hits: cqlpulse's
//! totals must be the same numbers exactly. Needs the node (`scripts/test`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use cqlpulse::daemon::Loaded;
use cqlpulse::data::Datum;
use cqlpulse::stats::{RecallSummary, Summary};
use scylla::client::session::Session;
use scylla::statement::Statement;

const K: usize = 5;
const DIMENSION: usize = 16;

fn spec(ks: &str) -> String {
    format!(
        r#"
name = "vector"
seed = 7
[schema]
keyspace = "{ks}"
statements = [
  "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, v vector<float, {DIMENSION}>)",
  "CREATE CUSTOM INDEX IF NOT EXISTS items_v ON items (v) USING 'StorageAttachedIndex' WITH OPTIONS = {{'similarity_function': 'euclidean'}}",
]
[data.id]
kind = "sequence"
[data.v]
kind = "clustered"
dimension = {DIMENSION}
centres = 8
spread = 0.3
[data.q]
kind = "clustered"
dimension = {DIMENSION}
centres = 8
spread = 0.3
[[ops]]
name = "insert"
cql = "INSERT INTO items (id, v) VALUES (?, ?)"
args = ["id", "v"]
[[ops]]
name = "ann"
cql = "SELECT id FROM items ORDER BY v ANN OF ? LIMIT {K}"
args = ["q"]
[ops.recall]
of = "insert"
key = "id"
vector = "v"
similarity = "euclidean"
sample = 1.0
cpu = 8.0
[load]
model = "chains"
chains = 8
"#
    )
}

/// Writes op indices `0..rows` (the insert alone).
async fn ingest(path: &std::path::Path, rows: u64) {
    let s = run(
        path,
        vec![set("load.ops", &rows.to_string()), set("ops.1.weight", "0")],
    )
    .await;
    assert_eq!(s.ok, rows, "{}", s.table());
}

/// Sends `queries` ANN queries (op indices `0..queries`), every one checked, counting op indices
/// below `rows` as written; returns the summary and the ANN op's recall.
async fn query(path: &std::path::Path, rows: u64, queries: u64) -> (Summary, RecallSummary) {
    let s = run(
        path,
        vec![
            set("load.ops", &queries.to_string()),
            set("ops.0.weight", "0"),
            set("ops.1.recall.preloaded", &rows.to_string()),
        ],
    )
    .await;
    assert_eq!(s.ok, queries, "{}", s.table());
    let recall = s.ops[1].recall.clone().expect("the ANN op has a recall");
    assert_eq!(recall.checked, queries, "every query checked: {recall:?}");
    assert_eq!((recall.skipped_budget, recall.skipped_queue), (0, 0));
    (s, recall)
}

/// Every row of the table: id and vector, as the node stores them.
async fn stored(session: &Session, ks: &str) -> HashMap<i64, Vec<f32>> {
    let mut q = Statement::new(format!("SELECT id, v FROM {ks}.items"));
    q.set_request_timeout(Some(Duration::from_secs(60)));
    let rows = session.query_unpaged(q, ()).await.unwrap();
    let rows = rows.into_rows_result().unwrap();
    rows.rows::<(i64, Vec<f32>)>()
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// The vector generator `name`'s value at op index `i`, through the library's generators (a
/// query's vector, `q`, is the input both sides share; what is checked is the answer and the
/// truth).
fn vector_of(plan: &cqlpulse::plan::Plan, name: &str, i: u64) -> Vec<f32> {
    let g = plan.spec.data.keys().position(|n| n == name).unwrap();
    let Datum::List(items) = plan.generators[g].datum(plan.seed, g as u64, i) else {
        panic!("a vector is a list");
    };
    items
        .iter()
        .map(|d| match d {
            Datum::Float(x) => *x as f32,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The test's own count: for each query, the true k nearest among the rows with an id in
/// `written` (by squared distance, ties to the lower id), and how many of them the node returns
/// when asked again. (hits, expected) over all queries.
async fn independent(
    session: &Session,
    ks: &str,
    path: &std::path::Path,
    written: impl Fn(i64) -> bool,
    queries: u64,
) -> (u64, u64) {
    let rows = stored(session, ks).await;
    let ann = session
        .prepare(format!(
            "SELECT id FROM {ks}.items ORDER BY v ANN OF ? LIMIT {K}"
        ))
        .await
        .unwrap();
    let plan = plan_of(path);
    let (mut hits, mut expected) = (0, 0);
    for j in 0..queries {
        let q = vector_of(&plan, "q", j);
        let mut by_distance: Vec<(f64, i64)> = rows
            .iter()
            .filter(|(id, _)| written(**id))
            .map(|(id, v)| (squared_distance(v, &q), *id))
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let truth: Vec<i64> = by_distance.iter().take(K).map(|&(_, id)| id).collect();
        let answer = session.execute_unpaged(&ann, (q,)).await.unwrap();
        let answer: Vec<i64> = answer
            .into_rows_result()
            .unwrap()
            .rows::<(i64,)>()
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        hits += answer.iter().filter(|id| truth.contains(id)).count() as u64;
        expected += truth.len() as u64;
    }
    (hits, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_agrees_exactly_with_an_independent_brute_force() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vector_agree");
    let path = spec_file("vector-agree", &spec(&ks));
    let (rows, queries) = (1_500, 60);
    ingest(&path, rows).await;
    let (_, recall) = query(&path, rows, queries).await;
    let session = session().await;
    let (hits, expected) = independent(&session, &ks, &path, |id| id < rows as i64, queries).await;
    assert_eq!(expected, queries * K as u64);
    assert_eq!(
        (recall.hits, recall.expected),
        (hits, expected),
        "cqlpulse's recall against the test's own: {recall:?}"
    );
    drop_keyspace(&session, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_index_gives_recall_one() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vector_tiny");
    let path = spec_file("vector-tiny", &spec(&ks));
    // 12 rows, k = 5: the index finds the true five of so few (and fewer than k rows would
    // make fewer expected).
    ingest(&path, 12).await;
    let (_, recall) = query(&path, 12, 30).await;
    assert_eq!(
        (recall.hits, recall.expected),
        (30 * K as u64, 30 * K as u64)
    );
    assert_eq!(recall.recall, Some(1.0));
    drop_keyspace(&session().await, &ks).await;
}

/// Writes a row behind cqlpulse's back at the vector of each query `0..queries` (ids from
/// 1,000,000: keys the run never writes): the node returns it first, a miss for cqlpulse.
async fn plant(session: &Session, ks: &str, path: &std::path::Path, queries: u64) {
    let insert = session
        .prepare(format!("INSERT INTO {ks}.items (id, v) VALUES (?, ?)"))
        .await
        .unwrap();
    let plan = plan_of(path);
    for j in 0..queries {
        let id = 1_000_000 + j as i64;
        session
            .execute_unpaged(&insert, (id, vector_of(&plan, "q", j)))
            .await
            .unwrap();
    }
}

/// Rows written behind cqlpulse's back (not acknowledged to it) at each query's own vector:
/// the node returns them first, so each query finds at most k - 1 of the true neighbours
/// among the rows cqlpulse wrote. The measured recall is below 1, and still the test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_outside_the_acknowledged_set_lower_recall_exactly() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vector_outside");
    let path = spec_file("vector-outside", &spec(&ks));
    let (rows, queries) = (400, 40);
    ingest(&path, rows).await;
    let session = session().await;
    plant(&session, &ks, &path, queries).await;
    let (_, recall) = query(&path, rows, queries).await;
    let (hits, expected) = independent(&session, &ks, &path, |id| id < rows as i64, queries).await;
    assert_eq!(
        (recall.hits, recall.expected),
        (hits, expected),
        "{recall:?}"
    );
    assert!(
        recall.hits <= queries * (K as u64 - 1),
        "each query loses at least its planted row's place: {recall:?}"
    );
    assert!(recall.recall.is_some_and(|r| r < 1.0), "{recall:?}");
    drop_keyspace(&session, &ks).await;
}

/// Inserts and ANN queries mixed in one run, in every model and at a fixed rate: every query
/// checked against the writes acknowledged so far.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ann_queries_mix_with_inserts_in_every_model() {
    require_cassandra();
    let _serial = serial().await;
    let session = session().await;
    for (model, knob) in [
        ("sync", "workers = 4"),
        ("batches", "batch_size = 20"),
        ("pipeline", "window = 16"),
        ("unbounded", "max_in_flight = 16"),
        ("chains", "chains = 8"),
        ("chains", "chains = 8\nrate = 150.0"),
    ] {
        let ks = keyspace(&format!("vector_mix_{model}"));
        let text = spec(&ks).replace(
            "model = \"chains\"\nchains = 8",
            &format!("model = \"{model}\"\n{knob}"),
        );
        let path = spec_file(&format!("vector-mix-{model}"), &text);
        let s = run(
            &path,
            vec![set("load.ops", "300"), set("ops.0.weight", "3")],
        )
        .await;
        assert_eq!((s.ok, s.failed), (300, 0), "{model} {knob}: {}", s.table());
        let ann = &s.ops[1];
        let recall = ann.recall.clone().expect("recall");
        assert!(ann.ok > 30, "{model}: {} queries", ann.ok);
        assert_eq!(recall.checked, ann.ok, "{model}: every query checked");
        assert!(
            recall.recall.is_some_and(|r| r > 0.5 && r <= 1.0),
            "{model} {knob}: {recall:?}"
        );
        drop_keyspace(&session, &ks).await;
    }
}

/// One sync worker sends one op at a time, so every write below a query's op index is
/// acknowledged before the query is sent: the neighbours each query expects are min(k, the
/// inserts below it), counted here from the op choice alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_expects_the_writes_acknowledged_before_it() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vector_acked");
    let text = spec(&ks).replace(
        "model = \"chains\"\nchains = 8",
        "model = \"sync\"\nworkers = 1",
    );
    let path = spec_file("vector-acked", &text);
    let ops = 200u64;
    let s = run(
        &path,
        vec![set("load.ops", &ops.to_string()), set("ops.0.weight", "3")],
    )
    .await;
    assert_eq!(s.ok, ops, "{}", s.table());
    let recall = s.ops[1].recall.clone().expect("recall");
    let (mut inserts, mut queries, mut expected) = (0u64, 0u64, 0u64);
    for index in 0..ops {
        match cqlpulse::engine::choose(&[3.0, 4.0], 7, index) {
            0 => inserts += 1,
            _ => {
                queries += 1;
                expected += inserts.min(K as u64);
            }
        }
    }
    assert_eq!((s.ops[0].ok, s.ops[1].ok), (inserts, queries));
    assert_eq!(
        (recall.checked, recall.expected),
        (queries, expected),
        "{recall:?}"
    );
    drop_keyspace(&session().await, &ks).await;
}

/// Runs the spec to its end with `--recall-log` and returns the summary and the log's lines.
async fn run_logged(
    path: &std::path::Path,
    overrides: Vec<cqlpulse::spec::Override>,
) -> (Summary, Vec<serde_json::Value>) {
    let log = path.with_extension("recall.jsonl");
    let loaded = Loaded::load(path.to_path_buf(), overrides).unwrap_or_else(|e| panic!("{e}"));
    let opts = cqlpulse::daemon::RunOptions {
        recall_log: Some(log.clone()),
        ..Default::default()
    };
    let s = cqlpulse::daemon::run(
        loaded,
        opts,
        tokio_util::sync::CancellationToken::new(),
        |_, _| async {},
    )
    .await
    .unwrap_or_else(|e| panic!("run failed: {e}"));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (s, lines)
}

fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

fn u64s(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// ANN queries sent while inserts run (8 chains, 3 inserts to 1 query, every query checked):
/// the rows a query may count are those acknowledged when it was sent, which only cqlpulse
/// saw, so it logs them (`--recall-log`: the acknowledgements in order, and per query how
/// many of them it counted, and the keys returned). From that log alone the test redoes every
/// check by the README's rule with its own brute force over vectors it regenerates, and must
/// get cqlpulse's numbers exactly, query by query and in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_under_concurrent_writes_agrees_exactly_with_an_independent_check() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("vector_concurrent");
    let path = spec_file("vector-concurrent", &spec(&ks));
    let ops = 600u64;
    let (s, log) = run_logged(
        &path,
        vec![set("load.ops", &ops.to_string()), set("ops.0.weight", "3")],
    )
    .await;
    assert_eq!((s.ok, s.failed), (ops, 0), "{}", s.table());
    let recall = s.ops[1].recall.clone().expect("recall");
    let plan = plan_of(&path);
    let is_write = |i: u64| cqlpulse::engine::choose(&[3.0, 4.0], plan.seed, i) == 0;
    // The acknowledgements, in the order cqlpulse recorded them.
    let mut order: Vec<u64> = Vec::new();
    for line in log.iter().filter(|l| l.get("acknowledged").is_some()) {
        assert_eq!(line["writer"], "insert");
        assert_eq!(line["from"].as_u64(), Some(order.len() as u64), "{line}");
        order.extend(u64s(&line["acknowledged"]));
    }
    let mut distinct = order.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), order.len(), "each acknowledgement once");
    assert!(order.iter().all(|&i| i < ops && is_write(i)));
    assert!(order.len() as u64 <= s.ops[0].ok);
    // Every row cqlpulse counted as acknowledged is in the table.
    let session = session().await;
    let ids: Vec<i64> = stored(&session, &ks).await.into_keys().collect();
    assert!(order.iter().all(|&i| ids.contains(&(i as i64))));

    let checked: Vec<&serde_json::Value> =
        log.iter().filter(|l| l.get("index").is_some()).collect();
    assert_eq!(checked.len() as u64, recall.checked);
    assert_eq!(
        recall.checked, s.ops[1].ok,
        "every query checked: {recall:?}"
    );
    let (mut hits, mut expected, mut raced) = (0u64, 0u64, 0);
    for c in &checked {
        let (q, mark) = (c["index"].as_u64().unwrap(), c["mark"].as_u64().unwrap());
        let written = &order[..mark as usize];
        // A write below the query not acknowledged when it was sent: the case at stake.
        raced += usize::from((0..q).any(|i| is_write(i) && !written.contains(&i)));
        let query = vector_of(&plan, "q", q);
        let mut returned: Vec<u64> = Vec::new();
        for k in u64s(&c["returned"]) {
            if !returned.contains(&k) {
                returned.push(k);
            }
        }
        // In flight at send: a write of this run (op index below `ops`), not counted written.
        let uncertain = returned
            .iter()
            .filter(|&&i| !written.contains(&i) && i < ops && is_write(i))
            .count();
        let mut truth: Vec<(f64, u64)> = written
            .iter()
            .map(|&i| (squared_distance(&vector_of(&plan, "v", i), &query), i))
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        truth.truncate(K.saturating_sub(uncertain));
        let found = match truth.last() {
            None => 0,
            Some(&(kth, _)) => returned
                .iter()
                .filter(|i| written.contains(i))
                .filter(|&&i| squared_distance(&vector_of(&plan, "v", i), &query) <= kth)
                .count()
                .min(truth.len()),
        };
        let mine = (found as u64, truth.len() as u64, uncertain as u64);
        let theirs = (
            c["hits"].as_u64().unwrap(),
            c["expected"].as_u64().unwrap(),
            c["uncertain"].as_u64().unwrap(),
        );
        assert_eq!(theirs, mine, "query {q} (hits, expected, uncertain): {c}");
        hits += mine.0;
        expected += mine.1;
    }
    assert_eq!(
        (recall.hits, recall.expected),
        (hits, expected),
        "{recall:?}"
    );
    assert!(
        raced > 0,
        "no query was sent with a write below it still unacknowledged: the test ran no race"
    );
    assert!(expected > 0 && hits > expected / 2, "{recall:?}");
    drop_keyspace(&session, &ks).await;
}

/// The alerts Prometheus holds for `alertname` on `instance`: (labels, state) of each.
fn alerts(prom: &str, alertname: &str, instance: &str) -> Vec<(serde_json::Value, String)> {
    let (status, body) = get(prom, "/api/v1/alerts");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == alertname && a["labels"]["instance"] == instance)
        .map(|a| {
            (
                a["labels"].clone(),
                a["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The rule groups Prometheus loaded, by name, with each rule's health.
fn rule_groups(prom: &str) -> Vec<(String, Vec<String>)> {
    let (status, body) = get(prom, "/api/v1/rules");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            let health = g["rules"].as_array().into_iter().flatten();
            let health = health.map(|r| format!("{}: {}", r["name"], r["health"]));
            (
                g["name"].as_str().unwrap_or("").to_string(),
                health.collect(),
            )
        })
        .collect()
}

/// A recall threshold crossed, seen in the test Prometheus: the suite's Prometheus loads the
/// shipped rules as they are (`scripts/prometheus`), and beside them a copy of
/// CqlpulseRecallLow generated from the shipped rule with its `for` (5m) shortened to 5 s
/// (label `copy`). Rows planted at each query's vector behind cqlpulse's back make every
/// query miss at least one of its 5 neighbours (recall at most 0.8, as in the test above)
/// against `alert_below = 0.9`; a daemon serving on a scraped port sends the queries. The
/// copy must fire for that instance and op, and the shipped rule, on the same expression,
/// must be pending (it fires after its 5 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_below_its_threshold_fires_the_alert_in_prometheus() {
    require_cassandra();
    let _serial = serial().await;
    let prom = prometheus_addr();
    let groups = rule_groups(&prom);
    let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "cqlpulse.recording",
        "cqlpulse.run_state",
        "cqlpulse.alerts",
        "cqlpulse.alerts.recall-fast",
    ] {
        assert!(
            names.contains(&want),
            "Prometheus at {prom} has not loaded rule group {want} (scripts/prometheus loads \
             deploy/prometheus/cqlpulse-rules.yml); it has: {groups:?}"
        );
    }
    let unhealthy: Vec<&String> = groups
        .iter()
        .flat_map(|(_, rules)| rules)
        .filter(|r| r.ends_with("\"err\""))
        .collect();
    assert!(
        unhealthy.is_empty(),
        "rules failing to evaluate: {unhealthy:?}"
    );

    let ks = keyspace("vector_alert");
    let text = spec(&ks).replace("cpu = 8.0", "cpu = 8.0\nalert_below = 0.9");
    let path = spec_file("vector-alert", &text);
    let (rows, queries) = (400u64, 1200u64);
    ingest(&path, rows).await;
    let session = session().await;
    plant(&session, &ks, &path, queries).await;
    let addr = "127.0.0.1:19464";
    let (ops, preloaded) = (
        queries.to_string(),
        format!("ops.1.recall.preloaded={rows}"),
    );
    let args = [
        "--rate",
        "20",
        "--ops",
        &ops,
        "--set",
        "ops.0.weight=0",
        "--set",
        &preloaded,
    ];
    let mut daemon = Daemon::start(&path, addr, &args, &[]);
    // Schema agreement on a busy node can take a minute: the alert's wait starts once the
    // daemon is ready.
    wait_for(Duration::from_secs(180), "the daemon ready", || {
        get(addr, "/readyz").0 == 200
    });
    let limit = Duration::from_secs(90);
    let deadline = std::time::Instant::now() + limit;
    let state = |alerts: &[(serde_json::Value, String)], copy: bool| {
        alerts
            .iter()
            .find(|(l, _)| l["op"] == "ann" && l.get("copy").is_some() == copy)
            .map(|(_, s)| s.clone())
    };
    let found = loop {
        let now = alerts(&prom, "CqlpulseRecallLow", addr);
        if state(&now, true).as_deref() == Some("firing") {
            break now;
        }
        if std::time::Instant::now() > deadline {
            let recall = promql(
                &prom,
                &format!(
                    "increase(cqlpulse_recall_hits_total{{instance=\"{addr}\"}}[5m]) / \
                     increase(cqlpulse_recall_expected_total{{instance=\"{addr}\"}}[5m])"
                ),
                unix_now(),
            );
            panic!(
                "CqlpulseRecallLow not firing for {addr} within {limit:?}. Prometheus's alerts \
                 for it: {now:?}; its recall over 5m: {recall:?}; status: {}; log: {}",
                daemon.status(),
                daemon.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        state(&found, false).as_deref(),
        Some("pending"),
        "the shipped rule (for: 5m) on the same expression: {found:?}"
    );
    // What made it fire: the daemon's own recall, checked below its threshold.
    let status = daemon.status();
    let recall = &status["recall"][0];
    assert_eq!(recall["op"], "ann", "{status}");
    assert_eq!(recall["threshold"].as_f64(), Some(0.9), "{status}");
    let (hits, expected) = (recall["hits"].as_u64(), recall["expected"].as_u64());
    assert!(
        hits.zip(expected)
            .is_some_and(|(h, e)| e > 0 && (h as f64) < 0.9 * e as f64),
        "{status}"
    );
    daemon.signal("TERM");
    daemon.wait(Duration::from_secs(30));
    drop_keyspace(&session, &ks).await;
}
