//! Secured nodes: TLS with password authentication, and mutual TLS, each against a real
//! Cassandra node started by `scripts/cassandra start --tls --auth --nodes 2` / `start --mtls` (what
//! `scripts/test` does in its "secured nodes" phase), plus the plain node of the main suite
//! for "TLS to a plain-text port". Every bad input must end in one line naming the file or the
//! node, with the right exit status, and the password must show nowhere.
//!
//! Where the nodes are (defaults: what `scripts/test` starts):
//!   CQLPULSE_TEST_PLAIN_NODE  127.0.0.1:9042
//!   CQLPULSE_TEST_TLS_HOME    <repo>/.cassandra-tls   (nodes 127.0.1.1-2: --tls --auth --nodes 2;
//!                             the tests use node 1, one stops node 2 for a while)
//!   CQLPULSE_TEST_MTLS_HOME   <repo>/.cassandra-mtls  (node 127.0.2.1:9042: --mtls)
//!   CQLPULSE_TEST_TLS_NODE, CQLPULSE_TEST_MTLS_NODE    override the addresses
//! Not run by a bare `cargo test` (`test = false` in Cargo.toml): `cargo test --test secure`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

const USER_ENV: &str = "CQLPULSE_TEST_SECRET";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Node {
    addr: String,
    tls: PathBuf,
    home: PathBuf,
    /// The TLS + password node's logins, shared by its tests; held alone by the test that
    /// makes them fail for a while (`logins_that_cannot_be_checked_are_waited_for`).
    _logins: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

/// Whether logins on the TLS + password node work (read) or are being broken (write).
static LOGINS: std::sync::RwLock<()> = std::sync::RwLock::new(());

impl Node {
    fn file(&self, name: &str) -> String {
        let path = self.tls.join(name);
        assert!(
            path.is_file(),
            "{} is missing: start the node with `scripts/cassandra start --tls` (see tests/secure.rs)",
            path.display()
        );
        path.display().to_string()
    }

    /// Fails the test (never skips it) when the node is not listening.
    fn require(&self) {
        let addr: std::net::SocketAddr = self.addr.parse().unwrap();
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
            panic!(
                "no secured Cassandra node on {}: run `scripts/test`, or start one as tests/secure.rs says",
                self.addr
            );
        }
    }
}

fn tls_node() -> Node {
    let mut n = tls_node_alone();
    n._logins = Some(LOGINS.read().unwrap_or_else(|e| e.into_inner()));
    n
}

/// The TLS + password node, without a share of its logins: the caller holds them all.
fn tls_node_alone() -> Node {
    let home = PathBuf::from(env_or(
        "CQLPULSE_TEST_TLS_HOME",
        &repo(".cassandra-tls").display().to_string(),
    ));
    let n = Node {
        addr: env_or("CQLPULSE_TEST_TLS_NODE", "127.0.1.1:9042"),
        tls: home.join("tls"),
        home,
        _logins: None,
    };
    n.require();
    n
}

fn mtls_node() -> Node {
    let home = PathBuf::from(env_or(
        "CQLPULSE_TEST_MTLS_HOME",
        &repo(".cassandra-mtls").display().to_string(),
    ));
    let n = Node {
        addr: env_or("CQLPULSE_TEST_MTLS_NODE", "127.0.2.1:9042"),
        tls: home.join("tls"),
        home,
        _logins: None,
    };
    n.require();
    n
}

/// The test role of `scripts/cassandra start --auth`, and its password.
fn login(node: &Node) -> (String, String) {
    let file = node.home.join("auth/password");
    let password = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (start the node with --auth)", file.display()));
    (
        env_or("CASSANDRA_TEST_ROLE", "cqlpulse"),
        password.trim().to_string(),
    )
}

/// A spec against `addr` with the given extra `[cluster]` keys and `[cluster.tls]` table.
fn spec(ks: &str, addr: &str, cluster: &str, tls: &str, load: &str) -> String {
    let body = testtable_spec(ks, load);
    format!(
        "{body}\n[cluster]\ncontact_points = [\"{addr}\"]\nconnect_timeout = \"3s\"\n{cluster}\n{tls}\n"
    )
}

fn tls_table(ca: &str, extra: &str) -> String {
    format!("[cluster.tls]\nca_file = \"{ca}\"\n{extra}")
}

/// Runs `cqlpulse ARGS`, killed (and the test failed) if it has not exited after `limit`.
fn cqlpulse(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let tag = format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let (out_path, err_path) = (
        dir.join(format!("secure-{tag}.out")),
        dir.join(format!("secure-{tag}.err")),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_cqlpulse"))
        .args(args)
        .args(["--log-format", "text"])
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start cqlpulse");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cqlpulse {args:?} hung: no exit after {limit:?}; stderr: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// `cqlpulse run`/`check` options that come before the global `--log-format`.
/// `cqlpulse run SPEC` with no status lines, listening on any free port (tests run in
/// parallel: not the default 9464).
fn run(spec: &Path, env: &[(&str, &str)], limit: Duration) -> Output {
    let spec = spec.display().to_string();
    let args = [
        "run",
        &spec,
        "--status-every",
        "0s",
        "--listen",
        "127.0.0.1:0",
    ];
    cqlpulse(&args, env, limit)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last line of stderr (what `main` prints for a failure) must be the only error line.
fn error_line(out: &Output) -> String {
    let (_, err) = text(out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("cqlpulse: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected, stderr:\n{err}");
    lines[0].to_string()
}

fn assert_fails(out: &Output, code: i32, wanted: &[&str]) -> String {
    let line = error_line(out);
    assert_eq!(out.status.code(), Some(code), "{line}");
    for w in wanted {
        assert!(line.contains(w), "`{w}` not in: {line}");
    }
    assert!(!line.contains("panicked"), "{line}");
    line
}

async fn tls_session(
    node: &Node,
    ca: &str,
    client: bool,
    user: Option<(&str, &str)>,
) -> scylla::client::session::Session {
    let spec = cqlpulse::spec::TlsSpec {
        ca_file: ca.to_string(),
        cert_file: client.then(|| node.file("client.pem")),
        key_file: client.then(|| node.file("client.key")),
        verify_server_name: true,
    };
    let config = cqlpulse::plan::tls::client_config(&spec).unwrap_or_else(|e| panic!("{e}"));
    let mut b = scylla::client::session_builder::SessionBuilder::new()
        .known_node(&node.addr)
        .tls_context(Some(config));
    if let Some((u, p)) = user {
        b = b.user(u, p);
    }
    b.build()
        .await
        .unwrap_or_else(|e| panic!("test session to {}: {e}", node.addr))
}

mod tls_auth {
    use super::*;

    /// `init --from` through TLS and a login reads the table's schema and writes a spec that
    /// connects the same way (the user, the variable holding the password, the CA) and passes
    /// `check --connect`; the password is written nowhere. Without TLS, init names the node.
    #[tokio::test(flavor = "multi_thread")]
    async fn init_from_a_table_over_tls_with_a_login_writes_a_spec_that_connects() {
        let _serial = serial().await;
        let node = tls_node();
        let (user, password) = login(&node);
        let ks = keyspace("init_tls");
        let ca = node.file("ca.pem");
        let cluster = format!("username = \"{user}\"\npassword_env = \"{USER_ENV}\"");
        let made = spec_file(
            "init-tls-table",
            &spec(&ks, &node.addr, &cluster, &tls_table(&ca, ""), "ops = 1"),
        );
        let env = [(USER_ENV, password.as_str())];
        let limit = Duration::from_secs(60);
        let created = cqlpulse(
            &["check", &made.display().to_string(), "--connect"],
            &env,
            limit,
        );
        assert!(created.status.success(), "{}", text_of(&created).1);

        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("init-tls-{ks}.toml"));
        let from = format!("{ks}.testtable");
        let init = cqlpulse(
            &[
                "init",
                "--from",
                &from,
                "--contact-points",
                &node.addr,
                "--username",
                &user,
                "--password-env",
                USER_ENV,
                "--tls-ca-file",
                &ca,
                "-o",
                &out.display().to_string(),
            ],
            &env,
            limit,
        );
        assert!(init.status.success(), "init failed: {}", text_of(&init).1);
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(
            !written.contains(&password),
            "the password is written nowhere"
        );
        for line in [
            format!("username = \"{user}\""),
            format!("password_env = \"{USER_ENV}\""),
            format!("ca_file = \"{ca}\""),
        ] {
            assert!(written.contains(&line), "`{line}` in\n{written}");
        }
        let check = cqlpulse(
            &["check", &out.display().to_string(), "--connect"],
            &env,
            limit,
        );
        let (check_out, check_err) = text_of(&check);
        assert!(
            check.status.success(),
            "the written spec connects: {check_err}"
        );
        assert!(check_out.contains(": ok: "), "{check_out}");

        let plain = cqlpulse(
            &["init", "--from", &from, "--contact-points", &node.addr],
            &env,
            limit,
        );
        let (_, err) = text_of(&plain);
        assert!(!plain.status.success());
        assert!(err.contains(&node.addr), "names the node: {err}");
        let session = tls_session(&node, &ca, false, Some((&user, &password))).await;
        let q = format!("DROP KEYSPACE IF EXISTS {ks}");
        session.query_unpaged(q, ()).await.unwrap();
    }

    /// TLS and a password against the real node: the workload runs to its end, every write
    /// is in the table, and the password shows in none of: the log, `/status`, `/metrics`,
    /// `check` and `check --connect` output, the summary, the reload diff.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_workload_runs_over_tls_with_a_password_that_shows_nowhere() {
        let _serial = serial().await;
        let node = tls_node();
        let (user, password) = login(&node);
        let ks = keyspace("tls_auth");
        let ca = node.file("ca.pem");
        let cluster = format!("username = \"{user}\"\npassword_env = \"{USER_ENV}\"");
        let text = spec(
            &ks,
            &node.addr,
            &cluster,
            &tls_table(&ca, ""),
            "model = \"pipeline\"\nwindow = 16\nrate = 400\nops = 2000",
        );
        let path = spec_file("tls-auth", &text);
        let env = [(USER_ENV, password.as_str())];

        let check = cqlpulse(
            &["check", &path.display().to_string(), "--connect"],
            &env,
            Duration::from_secs(60),
        );
        let (check_out, check_err) = text_of(&check);
        assert!(
            check.status.success(),
            "check --connect failed: {check_err}"
        );
        assert!(check_out.contains("connected to"), "{check_out}");

        let addr = "127.0.0.1:19467";
        let mut daemon = Daemon::start(&path, addr, &["--linger", "30s"], &env);
        daemon.wait_ready();
        let status = get(addr, "/status").1;
        let metrics = get(addr, "/metrics").1;
        // A reload that changes the login is refused, naming the fields; the diff is shown.
        let changed = text.replace(&format!("username = \"{user}\""), "username = \"someone\"");
        std::fs::write(&path, &changed).unwrap();
        let (code, reload) = http(addr, "POST", "/control/reload", None, &[]);
        wait_for(Duration::from_secs(60), "the run to finish", || {
            get(addr, "/status").1.contains("\"done\"")
        });
        let done_status = get(addr, "/status").1;
        daemon.signal("TERM");
        assert_eq!(
            daemon.wait(Duration::from_secs(60)),
            Some(0),
            "{}",
            daemon.log()
        );
        let log = daemon.log();
        let stdout = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("daemon-stdout.log"),
        )
        .unwrap_or_default();

        assert_ne!(
            code, 200,
            "a reload that changes cluster.username must be refused: {reload}"
        );
        assert!(reload.contains("cluster.username"), "{reload}");
        for (what, out) in [
            ("check stdout", check_out.as_str()),
            ("check stderr", check_err.as_str()),
            ("log", log.as_str()),
            ("summary", stdout.as_str()),
            ("/status", status.as_str()),
            ("/status at the end", done_status.as_str()),
            ("/metrics", metrics.as_str()),
            ("reload answer", reload.as_str()),
        ] {
            assert!(
                !out.contains(&password),
                "the password shows in the {what}:\n{out}"
            );
        }
        assert!(metrics.contains("cqlpulse_requests_total"), "{metrics}");

        let session = tls_session(&node, &ca, false, Some((&user, &password))).await;
        assert_eq!(count(&session, &format!("{ks}.testtable")).await, 2000);
        drop_keyspace(&session, &ks).await;
    }

    /// A password that looks like a number, from the environment or from `--set`, is the
    /// text as written (an override of a secret is never parsed as TOML), and logs in; it
    /// shows in no output.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_numeric_looking_password_from_the_environment_or_set_logs_in() {
        const ROLE: &str = "cqlpulse_numeric";
        const NUMERIC: &str = "918273645";
        let node = tls_node();
        let (user, password) = login(&node);
        let ca = node.file("ca.pem");
        // The test role may not create roles: the node's superuser does, through the script
        // that started the node (it logs in as `cassandra`).
        cassandra(
            &node,
            &[
                "query",
                &format!(
                    "CREATE ROLE IF NOT EXISTS {ROLE} WITH PASSWORD = '{NUMERIC}' AND LOGIN = true"
                ),
                &format!("GRANT ALL PERMISSIONS ON ALL KEYSPACES TO {ROLE}"),
            ],
        );
        let admin = tls_session(&node, &ca, false, Some((&user, &password))).await;
        let ks = keyspace("numericpw");
        let path = spec_file(
            "numeric-password",
            &spec(&ks, &node.addr, "", &tls_table(&ca, ""), "ops = 10"),
        );
        let path = path.display().to_string();
        let by_env = [
            ("CQLPULSE__CLUSTER__USERNAME", ROLE),
            ("CQLPULSE__CLUSTER__PASSWORD", NUMERIC),
        ];
        let set_user = format!("cluster.username={ROLE}");
        let set_password = format!("cluster.password={NUMERIC}");
        // The arguments, and the environment.
        type Way<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
        let ways: [Way<'_>; 2] = [
            (&["check", &path, "--connect"], &by_env),
            (
                &[
                    "check",
                    &path,
                    "--connect",
                    "--set",
                    &set_user,
                    "--set",
                    &set_password,
                ],
                &[],
            ),
        ];
        for (args, env) in ways {
            let out = cqlpulse(args, env, Duration::from_secs(60));
            let (o, e) = text(&out);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {o}{e}");
            assert!(o.contains("connected to"), "{o}");
            assert!(
                !o.contains(NUMERIC) && !e.contains(NUMERIC),
                "the password shows: {o}{e}"
            );
        }
        drop_keyspace(&admin, &ks).await;
    }

    #[test]
    fn a_wrong_password_exits_1_naming_the_user_and_the_node() {
        let node = tls_node();
        let (user, password) = login(&node);
        let wrong = format!("{password}-wrong");
        for (who, secret) in [
            (user.as_str(), wrong.as_str()),
            ("no_such_role", password.as_str()),
        ] {
            let cluster = format!("username = \"{who}\"\npassword_env = \"{USER_ENV}\"");
            let path = spec_file(
                &format!("bad-login-{who}"),
                &spec(
                    "unused",
                    &node.addr,
                    &cluster,
                    &tls_table(&node.file("ca.pem"), ""),
                    "ops = 10",
                ),
            );
            // connect_timeout is 3 s: well within 20 s unless something hangs.
            let out = run(&path, &[(USER_ENV, secret)], Duration::from_secs(20));
            let line = assert_fails(
                &out,
                1,
                &[
                    &node.addr,
                    &format!("`{who}`"),
                    "refused: wrong password or unknown role",
                ],
            );
            let (o, e) = text_of(&out);
            assert!(
                !o.contains(secret) && !e.contains(secret),
                "the password shows: {e}"
            );
            assert!(!line.contains(secret));
        }
    }

    /// The login of a role other than the superuser, from scratch: `Err` with the driver's text.
    async fn try_login(node: &Node, ca: &str, user: &str, password: &str) -> Result<(), String> {
        let spec = cqlpulse::spec::TlsSpec {
            ca_file: ca.to_string(),
            cert_file: None,
            key_file: None,
            verify_server_name: true,
        };
        let config = cqlpulse::plan::tls::client_config(&spec).unwrap();
        scylla::client::session_builder::SessionBuilder::new()
            .known_node(&node.addr)
            .tls_context(Some(config))
            .user(user, password)
            .build()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Runs `scripts/cassandra ARGS` on the TLS + password nodes; fails the test if it fails.
    fn cassandra(node: &Node, args: &[&str]) {
        if let Err(e) = try_cassandra(Some(&node.home), args) {
            panic!("{e}");
        }
    }

    /// Start-up while the auth replicas are down, as in a rolling restart: the TLS + password
    /// nodes are two, with system_auth on both (RF 2), so with node 2 stopped node 1 answers
    /// every login "Unable to perform authentication: Cannot achieve consistency level". The
    /// daemon, pointed at node 1, waits and says why; once node 2 is back it runs.
    #[tokio::test(flavor = "multi_thread")]
    // `LOGINS` is held for the whole test on purpose: it keeps out the other tests of this
    // node, each on a thread and runtime of its own, so no task of this runtime waits on it.
    #[allow(clippy::await_holding_lock)]
    async fn logins_that_cannot_be_checked_are_waited_for() {
        let _serial = serial().await;
        let _alone = LOGINS.write().unwrap_or_else(|e| e.into_inner());
        let node = tls_node_alone();
        let (user, password) = login(&node);
        let ca = node.file("ca.pem");
        let cluster_env =
            std::fs::read_to_string(node.home.join("cluster.env")).unwrap_or_default();
        assert!(
            cluster_env.contains("NODES=2"),
            "the TLS + password node must be two (`scripts/cassandra start --tls --auth --nodes 2`, \
             as scripts/test does): {cluster_env}"
        );
        cassandra(&node, &["stop-node", "2"]);
        // Whatever happens, node 2 is back for the tests after this one.
        let _back = OnPanic(|| bring_back(Some(&node.home), 2));
        // The node keeps a login's result for a moment (credentials_validity): wait until
        // a fresh login sees the outage.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match try_login(&node, &ca, &user, &password).await {
                Err(e) if e.contains("Cannot achieve consistency level") => break,
                other => assert!(
                    Instant::now() < deadline,
                    "logins still checked with node 2 down: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ks = keyspace("auth_outage");
        let cluster = format!("username = \"{user}\"\npassword_env = \"{USER_ENV}\"");
        let path = spec_file(
            "auth-outage",
            &spec(
                &ks,
                &node.addr,
                &cluster,
                &tls_table(&ca, ""),
                "rate = 200\nops = 400",
            ),
        );
        let addr = free_addr();
        let env = [(USER_ENV, password.as_str())];
        let mut daemon = Daemon::start(&path, &addr, &[], &env);
        wait_for(Duration::from_secs(30), "the wait logged twice", || {
            daemon.log().matches("cannot check the login yet").count() >= 2
        });
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "exited during the outage: {}",
            daemon.log()
        );
        cassandra(&node, &["start-node", "2"]);
        assert_eq!(
            daemon.wait(Duration::from_secs(180)),
            Some(0),
            "{}",
            daemon.log()
        );
        let log = daemon.log();
        assert!(log.contains("retrying in"), "{log}");
        assert!(!log.contains("refused"), "{log}");
        let session = tls_session(&node, &ca, false, Some((&user, &password))).await;
        assert_eq!(count(&session, &format!("{ks}.testtable")).await, 400);
        drop_keyspace(&session, &ks).await;
    }

    #[test]
    fn plain_text_to_the_tls_port_exits_1_naming_the_node() {
        let node = tls_node();
        let (user, password) = login(&node);
        let cluster = format!("username = \"{user}\"\npassword_env = \"{USER_ENV}\"");
        let path = spec_file(
            "plain-to-tls",
            &spec("unused", &node.addr, &cluster, "", "ops = 10"),
        );
        let out = run(&path, &[(USER_ENV, &password)], Duration::from_secs(20));
        assert_fails(&out, 1, &[&node.addr, "plain text"]);
    }

    #[test]
    fn a_ca_that_did_not_sign_the_node_exits_1_naming_the_node_and_the_ca() {
        let node = tls_node();
        let (user, password) = login(&node);
        let other = node.file("other-ca.pem");
        let cluster = format!("username = \"{user}\"\npassword_env = \"{USER_ENV}\"");
        let path = spec_file(
            "wrong-ca",
            &spec(
                "unused",
                &node.addr,
                &cluster,
                &tls_table(&other, ""),
                "ops = 10",
            ),
        );
        let out = run(&path, &[(USER_ENV, &password)], Duration::from_secs(20));
        assert_fails(&out, 1, &[&node.addr, &other, "UnknownIssuer"]);
    }

    #[test]
    fn tls_to_a_plain_text_port_exits_1_naming_the_node() {
        let node = tls_node();
        let plain = env_or("CQLPULSE_TEST_PLAIN_NODE", NODE);
        require_cassandra_at(&plain);
        let path = spec_file(
            "tls-to-plain",
            &spec(
                "unused",
                &plain,
                "",
                &tls_table(&node.file("ca.pem"), ""),
                "ops = 10",
            ),
        );
        let out = run(&path, &[], Duration::from_secs(20));
        assert_fails(&out, 1, &[&plain, "over TLS"]);
    }

    /// Files named by the spec are read when it is checked: a missing, unreadable or empty
    /// file is a spec error (exit 2) naming the field and the path, before any connection.
    #[test]
    fn missing_and_unusable_files_are_spec_errors_naming_field_and_file() {
        let node = tls_node();
        let ca = node.file("ca.pem");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let missing = dir.join("no-such-ca.pem").display().to_string();
        let a_directory = dir.display().to_string();
        let cases = [
            (
                tls_table(&missing, ""),
                "cluster.tls.ca_file",
                missing.clone(),
            ),
            (
                tls_table(&a_directory, ""),
                "cluster.tls.ca_file",
                a_directory.clone(),
            ),
            (
                tls_table(
                    &ca,
                    &format!(
                        "cert_file = \"{}\"\nkey_file = \"{missing}\"",
                        node.file("client.pem")
                    ),
                ),
                "cluster.tls.key_file",
                missing.clone(),
            ),
            (
                tls_table(
                    &ca,
                    &format!(
                        "cert_file = \"{}\"\nkey_file = \"{}\"",
                        node.file("client.pem"),
                        node.file("other.key")
                    ),
                ),
                "cluster.tls.key_file",
                node.file("other.key"),
            ),
            (
                tls_table(&ca, &format!("cert_file = \"{}\"", node.file("client.pem"))),
                "cluster.tls.cert_file",
                "key_file".into(),
            ),
        ];
        for (i, (tls, field, file)) in cases.iter().enumerate() {
            let path = spec_file(
                &format!("bad-tls-file-{i}"),
                &spec("unused", &node.addr, "", tls, "ops = 10"),
            );
            let p = path.display().to_string();
            for args in [vec!["check", p.as_str()], vec!["run", p.as_str()]] {
                let out = cqlpulse(&args, &[], Duration::from_secs(20));
                assert_fails(&out, 2, &[&p, field, file]);
            }
        }
    }
}

mod mtls {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_workload_runs_with_a_client_certificate() {
        let _serial = serial().await;
        let node = mtls_node();
        let ks = keyspace("mtls");
        let ca = node.file("ca.pem");
        let tls = tls_table(
            &ca,
            &format!(
                "cert_file = \"{}\"\nkey_file = \"{}\"",
                node.file("client.pem"),
                node.file("client.key")
            ),
        );
        let path = spec_file(
            "mtls",
            &spec(
                &ks,
                &node.addr,
                "",
                &tls,
                "model = \"pipeline\"\nwindow = 16\nrate = 400\nops = 1000",
            ),
        );
        let out = run(&path, &[], Duration::from_secs(120));
        let (o, e) = text_of(&out);
        assert!(out.status.success(), "{o}\n{e}");
        let session = tls_session(&node, &ca, true, None).await;
        assert_eq!(count(&session, &format!("{ks}.testtable")).await, 1000);
        drop_keyspace(&session, &ks).await;
    }

    #[test]
    fn without_a_client_certificate_exits_1_naming_the_node() {
        let node = mtls_node();
        let path = spec_file(
            "mtls-no-cert",
            &spec(
                "unused",
                &node.addr,
                "",
                &tls_table(&node.file("ca.pem"), ""),
                "ops = 10",
            ),
        );
        let out = run(&path, &[], Duration::from_secs(20));
        // Whether the driver saw the alert or only the connection dropped, the line says why.
        assert_fails(
            &out,
            1,
            &[&node.addr, "over TLS", "refused", "CertificateRequired"],
        );
    }

    /// With name verification off, the CA is still checked (and one warning is logged).
    #[test]
    fn verify_server_name_off_warns_once_and_keeps_the_ca_check() {
        let node = mtls_node();
        let client = format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\nverify_server_name = false",
            node.file("client.pem"),
            node.file("client.key")
        );
        let ok = spec_file(
            "no-name-check",
            &spec(
                "unused",
                &node.addr,
                "",
                &tls_table(&node.file("ca.pem"), &client),
                "ops = 10",
            ),
        );
        let out = cqlpulse(
            &["check", &ok.display().to_string(), "--connect"],
            &[],
            Duration::from_secs(60),
        );
        let (o, e) = text_of(&out);
        assert!(out.status.success(), "{o}\n{e}");
        assert_eq!(e.matches("verify_server_name = false").count(), 1, "{e}");

        let bad = spec_file(
            "no-name-check-bad-ca",
            &spec(
                "unused",
                &node.addr,
                "",
                &tls_table(&node.file("other-ca.pem"), &client),
                "ops = 10",
            ),
        );
        let out = cqlpulse(
            &["check", &bad.display().to_string(), "--connect"],
            &[],
            Duration::from_secs(20),
        );
        assert_fails(&out, 1, &[&node.addr, "UnknownIssuer"]);
    }
}

fn text_of(out: &Output) -> (String, String) {
    text(out)
}

fn require_cassandra_at(addr: &str) {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    if std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_err() {
        panic!(
            "no plain Cassandra node on {addr}: run `scripts/test` (or `scripts/cassandra start`)"
        );
    }
}
