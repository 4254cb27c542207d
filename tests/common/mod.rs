//! What every integration test shares: the real Cassandra node (started by `scripts/test`,
//! or by hand with `scripts/cassandra start`), specs written to temporary files, in-process
//! runs of the daemon, and reading rows back.
#![allow(dead_code)] // each test binary uses its own part of this

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use cqlpulse::daemon::{self, Loaded, RunOptions};
use cqlpulse::spec::Override;
use cqlpulse::stats::Summary;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio_util::sync::CancellationToken;

pub const NODE: &str = "127.0.0.1:9042";

/// Fails the test (never skips it) when the node is not there.
pub fn require_cassandra() {
    let addr: SocketAddr = NODE.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        panic!(
            "no Cassandra on {NODE}. These tests need a real node: run `scripts/test` (which starts \
             and stops one), or start one with `scripts/cassandra start`."
        );
    }
}

/// Load tests share two cores with the node: run them one at a time. (An async mutex: each
/// test has a runtime of its own, and the guard is held across awaits.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A keyspace name no other test uses.
pub fn keyspace(test: &str) -> String {
    format!("t_{}_{}", test, std::process::id())
}

/// Writes `text` to a spec file of its own and returns its path.
pub fn spec_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("specs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn set(key: &str, value: &str) -> Override {
    Override::new(format!("test {key}"), key, value)
}

/// Runs a spec in-process (no HTTP) to its end and returns the summary.
pub async fn run(path: &std::path::Path, overrides: Vec<Override>) -> Summary {
    let loaded = Loaded::load(path.to_path_buf(), overrides).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        print_summary: true,
        ..RunOptions::default()
    };
    daemon::run(loaded, opts, CancellationToken::new(), |_, _| async {})
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

pub async fn session() -> Session {
    SessionBuilder::new()
        .known_node(NODE)
        .build()
        .await
        .expect("connect to the test node")
}

pub async fn count(session: &Session, table: &str) -> i64 {
    let mut q = scylla::statement::Statement::new(format!("SELECT count(*) FROM {table}"));
    q.set_request_timeout(Some(Duration::from_secs(60)));
    let rows = session
        .query_unpaged(q, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (n,): (i64,) = rows.single_row().unwrap();
    n
}

pub async fn drop_keyspace(session: &Session, ks: &str) {
    let mut q = scylla::statement::Statement::new(format!("DROP KEYSPACE IF EXISTS {ks}"));
    q.set_request_timeout(Some(Duration::from_secs(60)));
    session.query_unpaged(q, ()).await.unwrap();
}

/// The python-driver benchmark table and insert, with the model section left to the caller.
pub fn testtable_spec(ks: &str, load: &str) -> String {
    format!(
        r#"
name = "bench"
[schema]
keyspace = "{ks}"
mode = "recreate"
statements = ["CREATE TABLE IF NOT EXISTS testtable (thekey text, col1 text, col2 text, PRIMARY KEY (thekey, col1))"]
[data.key]
kind = "sequence"
[data.col]
kind = "text"
size = 8
[[ops]]
name = "insert"
cql = "INSERT INTO testtable (thekey, col1, col2) VALUES (?, ?, ?)"
args = ["key", "col", "col"]
[load]
{load}
"#
    )
}
