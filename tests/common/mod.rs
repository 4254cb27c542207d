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

/// The plan of the spec at `path`, as a run of it would have it (for its generators, seed and
/// buckets).
pub fn plan_of(path: &std::path::Path) -> cqlpulse::plan::Plan {
    Loaded::load(path.to_path_buf(), vec![])
        .unwrap_or_else(|e| panic!("{e}"))
        .plan
}

/// `scripts/cassandra ARGS` for the nodes whose state folder is `home` (`None`: the caller's
/// `CASSANDRA_HOME`, or the script's default): its output, or an error that quotes it.
pub fn try_cassandra(home: Option<&std::path::Path>, args: &[&str]) -> Result<String, String> {
    let mut command =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cassandra"));
    if let Some(home) = home {
        command.env("CASSANDRA_HOME", home);
    }
    let out = command
        .args(args)
        .output()
        .map_err(|e| format!("run scripts/cassandra: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("scripts/cassandra {args:?} failed:\n{text}"))
    }
}

/// Runs its closure when dropped during a panic. A test that takes a node down holds one, so
/// that it leaves every node up for the tests after it even when it fails (a restart that
/// failed once left a node down, and the three tests after it failed for that alone).
pub struct OnPanic<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnPanic<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// Starts node `node` of the nodes in `home` (as [`try_cassandra`]) again if it is down, and
/// waits until it is back; reports a failure instead of panicking (it runs while a test
/// unwinds, from an [`OnPanic`]).
pub fn bring_back(home: Option<&std::path::Path>, node: usize) {
    match try_cassandra(home, &["start-node", &node.to_string()]) {
        Ok(_) => eprintln!("node {node} brought back after the failure"),
        Err(e) => eprintln!("node {node} could not be brought back: {e}"),
    }
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

/// Two ops that fail under a kind of their own, over table `t (k text PRIMARY KEY, v int)`:
/// `slow` (a client timeout: 1 us to read the schema tables) and `rejected` (invalid: a 70,000
/// byte partition key, over the 65,535 limit). Data `huge` and `n` with them.
pub const FAILING_OPS: &str = r#"
[data.huge]
kind = "text"
size = 70000
[data.n]
kind = "uniform"
min = 0
max = 9
[[ops]]
name = "slow"
cql = "SELECT * FROM system_schema.columns"
timeout = "1us"
[[ops]]
name = "rejected"
cql = "INSERT INTO t (k, v) VALUES (?, ?)"
args = ["huge", "n"]
"#;

/// A loopback address nothing listens on: a port the system just handed out, released again
/// (for a daemon that no Prometheus scrapes, or a node that is not there).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A minimal HTTP/1.0 client for loopback tests: method, path, optional body and headers.
/// Returns the status code and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut all = vec![("Host", addr)];
    all.extend_from_slice(headers);
    let (status, _, body) = http_exact(addr, method, path, &all, body.unwrap_or(""));
    (status, body)
}

/// One HTTP/1.0 request with exactly `headers` (no implied `Host`) and a `Content-Length`:
/// the status code, the response head and the body.
pub fn http_exact(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_string(), body.to_string())
}

pub fn get(addr: &str, path: &str) -> (u16, String) {
    http(addr, "GET", path, None, &[])
}

/// The value of the sample `series` (name and labels exactly as exposed) in a text scrape;
/// compared as a number, since `1500` and `1500.0` are the same sample.
pub fn scraped(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The test Prometheus (started by `scripts/test`, scraping 127.0.0.1:19464-19466 every second).
pub fn prometheus_addr() -> String {
    let url = std::env::var("CQLPULSE_TEST_PROMETHEUS")
        .unwrap_or_else(|_| "http://127.0.0.1:19090".into());
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if TcpStream::connect(&addr).is_err() {
        panic!(
            "no Prometheus on {addr}: run `scripts/test`, or start one with `scripts/prometheus start`"
        );
    }
    addr
}

/// An instant PromQL query at `time` (Unix seconds); returns the result vector.
pub fn promql(addr: &str, query: &str, time: f64) -> Vec<serde_json::Value> {
    let (status, body) = get(
        addr,
        &format!("/api/v1/query?query={}&time={time:.3}", encode(query)),
    );
    assert_eq!(status, 200, "{query}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The single value of an instant query, or `None` when it returned no series.
pub fn promql_value(addr: &str, query: &str, time: f64) -> Option<f64> {
    let r = promql(addr, query, time);
    r.first()
        .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
}

/// Runs `scripts/check-dashboard-data` against the Prometheus at `prom` over `window`: every
/// query of the shipped dashboards must return data (or be allow-listed). Fails the test
/// otherwise, with the script's report.
pub fn check_dashboard_data(prom: &str, window: &str) {
    let out = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/check-dashboard-data"
    ))
    .arg(format!("http://{prom}"))
    .args(["--window", window])
    .output()
    .expect("scripts/check-dashboard-data runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "dashboard queries without data (see above)"
    );
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("dashboard-data:"))
        .expect("the script's last line");
    assert!(
        last.ends_with(" 0 failed") && !last.contains(": 0 passed"),
        "{last}"
    );
}

/// Every PromQL expression of the shipped dashboard's panels and annotations, with the title
/// of the panel (or annotation) it belongs to; `CQLPULSE_TEST_DASHBOARD` overrides the path.
/// Read by `deploy/checks/dashboards.py`, the one reader of dashboards.
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let out = dashboards_py(&["queries"], "");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("dashboards.py queries: {e}: {out}"))
}

/// `exprs` with Grafana's variables substituted as `deploy/checks/dashboards.py` does for
/// every dashboard check: interval variables become `window`, `$instance` the run's
/// `instance`, every other variable `.*`.
pub fn substitute_all(exprs: &[String], window: &str, instance: &str) -> Vec<String> {
    let input = serde_json::to_string(exprs).unwrap();
    let value = format!("instance={instance}");
    let out = dashboards_py(&["substitute", window, &value], &input);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("dashboards.py substitute: {e}: {out}"))
}

/// One expression, as [`substitute_all`].
pub fn substitute(expr: &str, window: &str, instance: &str) -> String {
    substitute_all(&[expr.to_string()], window, instance).remove(0)
}

fn dashboards_py(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/checks/dashboards.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {script}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 {script} {args:?}: {}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A `cqlpulse run` child process; killed if the test panics first.
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: String,
    pub stderr: PathBuf,
}

impl Daemon {
    /// Starts `cqlpulse run SPEC --listen ADDR ARGS...` and waits until `/healthz` answers.
    pub fn start(
        spec: &std::path::Path,
        addr: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let stderr = dir.join(format!(
            "daemon-{}-{}.log",
            addr.replace([':', '.'], "_"),
            std::process::id()
        ));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
            .arg("run")
            .arg(spec)
            .args([
                "--listen",
                addr,
                "--log-format",
                "text",
                "--status-every",
                "0s",
            ])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(dir.join("daemon-stdout.log")).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start cqlpulse");
        let d = Daemon {
            child,
            addr: addr.to_string(),
            stderr,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "cqlpulse did not listen on {addr}: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200 (connected and prepared).
    pub fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while get(&self.addr, "/readyz").0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready after 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit (up to `limit`) and returns its status code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cqlpulse did not exit within {limit:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = get(&self.addr, "/status");
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it holds, for up to `limit`: the tests' one way to wait.
pub fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
