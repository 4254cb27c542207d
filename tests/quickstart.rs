//! The first end-to-end path: the shipped quick-start spec against the real node.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_writes_exactly_n_rows() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("quickstart");
    let n = 20_000;
    let path = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/quickstart.toml"
    ));
    let summary = run(
        &path,
        vec![
            set("schema.keyspace", &format!("\"{ks}\"")),
            set("load.ops", &n.to_string()),
        ],
    )
    .await;
    assert_eq!(summary.sent, n as u64);
    assert_eq!(summary.ok, n as u64, "{}", summary.table());
    let session = session().await;
    assert_eq!(count(&session, &format!("{ks}.kv")).await, n);
    drop_keyspace(&session, &ks).await;
}
