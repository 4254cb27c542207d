//! The HTTP listener's guards, on a real daemon against the real node: no other web page can
//! drive the control API (foreign `Origin`, non-JSON bodies, DNS rebinding through a foreign
//! `Host`), and idle or slow connections cannot exhaust the daemon (a connection cap, a
//! header-read timeout).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const ADDR: &str = "127.0.0.1:19466";

fn spec_text(ks: &str) -> String {
    testtable_spec(
        ks,
        "model = \"chains\"\nchains = 8\nmax_in_flight = 64\nrate = 200.0\ndrain_timeout = \"10s\"",
    )
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    http_exact(ADDR, method, path, headers, body)
}

/// The JSON error of a refusal.
fn error_of(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["error"].as_str().unwrap_or_default().to_string()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const HOST: (&str, &str) = ("Host", ADDR);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_other_web_page_can_drive_or_read_the_control_api() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("guard");
    let spec = spec_file("guard", &spec_text(&ks));
    let d = Daemon::start(&spec, ADDR, &[], &[]);
    d.wait_ready();
    let before = d.status();
    assert_eq!(before["paused"], false);

    // Method, path, headers, body, status, words of the JSON error.
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        u16,
        &'a str,
    );
    let evil_origin = ("Origin", "http://evil.example");
    let cases: &[Case] = &[
        // The cross-site simple POST of the issue: a form or a no-cors fetch.
        (
            "POST",
            "/control/pause",
            &[HOST, evil_origin, ("Content-Type", "text/plain")],
            "x",
            403,
            "Origin `http://evil.example`",
        ),
        (
            "POST",
            "/control/pause",
            &[HOST, evil_origin],
            "",
            403,
            "not this daemon's own",
        ),
        (
            "PUT",
            "/control/rate",
            &[HOST, evil_origin, JSON],
            r#"{"rate": 10}"#,
            403,
            "Origin",
        ),
        (
            "POST",
            "/control/reload",
            &[HOST, ("Origin", "null")],
            "",
            403,
            "Origin `null`",
        ),
        // The daemon's own scheme and host, another port: another origin.
        (
            "POST",
            "/control/resume",
            &[HOST, ("Origin", "http://127.0.0.1:19467")],
            "",
            403,
            "Origin",
        ),
        // A body must be declared JSON; a bodyless route still refuses a form's body.
        (
            "PUT",
            "/control/rate",
            &[HOST, ("Content-Type", "text/plain")],
            r#"{"rate": 10}"#,
            415,
            "Content-Type: application/json",
        ),
        (
            "PUT",
            "/control/rate",
            &[HOST],
            r#"{"rate": 10}"#,
            415,
            "given: none",
        ),
        (
            "PUT",
            "/control/concurrency",
            &[HOST, ("Content-Type", "application/x-www-form-urlencoded")],
            "concurrency=1",
            415,
            "application/x-www-form-urlencoded",
        ),
        (
            "POST",
            "/control/pause",
            &[HOST, ("Content-Type", "multipart/form-data; boundary=x")],
            "",
            415,
            "multipart/form-data",
        ),
        // DNS rebinding: the page's own origin, under a name that is not a loopback one.
        (
            "PUT",
            "/control/rate",
            &[
                ("Host", "evil.example:19466"),
                ("Origin", "http://evil.example:19466"),
                JSON,
            ],
            r#"{"rate": 10}"#,
            403,
            "DNS rebinding",
        ),
        (
            "POST",
            "/control/pause",
            &[("Host", "evil.example:19466")],
            "",
            403,
            "Host `evil.example:19466`",
        ),
        (
            "GET",
            "/status",
            &[("Host", "evil.example:19466")],
            "",
            403,
            "not a loopback name",
        ),
        (
            "GET",
            "/metrics",
            &[("Host", "127.0.0.1.evil.example")],
            "",
            403,
            "not a loopback name",
        ),
        (
            "GET",
            "/",
            &[("Host", "localhost.evil.example:19466")],
            "",
            403,
            "not a loopback name",
        ),
        (
            "GET",
            "/api/history",
            &[("Host", "10.1.2.3:19466")],
            "",
            403,
            "not a loopback name",
        ),
    ];
    for (method, path, headers, body, status, words) in cases {
        let (code, _, text) = raw(method, path, headers, body);
        assert_eq!(code, *status, "{method} {path} {headers:?}: {text}");
        let e = error_of(&text);
        assert!(
            e.contains(words),
            "{method} {path} {headers:?}: `{e}` lacks `{words}`"
        );
    }
    let after = d.status();
    for key in ["paused", "target_rate", "concurrency", "reloads"] {
        assert_eq!(
            before[key], after[key],
            "{key} changed by a refused request"
        );
    }

    // What the page and the tools send still works: the page's own origin, JSON, loopback
    // names (and a tunnel's port, which is not compared).
    let own = [HOST, ("Origin", "http://127.0.0.1:19466"), JSON];
    assert_eq!(raw("POST", "/control/pause", &own, "").0, 200);
    assert_eq!(d.status()["paused"], true);
    assert_eq!(
        raw("POST", "/control/resume", &[HOST], "").0,
        200,
        "curl: no Origin"
    );
    let (code, _, text) = raw(
        "PUT",
        "/control/rate",
        &[
            ("Host", "localhost:19466"),
            ("Origin", "http://localhost:19466"),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        r#"{"rate": 300}"#,
    );
    assert_eq!(code, 200, "{text}");
    assert_eq!(d.status()["target_rate"], 300.0);
    assert_eq!(raw("GET", "/metrics", &[("Host", "[::1]:8080")], "").0, 200);
    assert_eq!(
        raw("GET", "/status", &[], "").0,
        200,
        "HTTP/1.0 without Host"
    );

    // The page may not be framed by another.
    let (code, head, _) = raw("GET", "/", &[HOST], "");
    assert_eq!(code, 200);
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no Content-Security-Policy: {head}"));
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_does_not_let_another_page_through() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("guardtoken");
    let spec = spec_file("guardtoken", &spec_text(&ks));
    let token = "Bearer guard-token-0123";
    let d = Daemon::start(&spec, ADDR, &[], &[("CQLPULSE_CONTROL_TOKEN", &token[7..])]);
    d.wait_ready();
    let auth = ("Authorization", token);
    let (code, _, text) = raw(
        "POST",
        "/control/pause",
        &[HOST, auth, ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(
        (code, error_of(&text).contains("Origin")),
        (403, true),
        "{text}"
    );
    let (code, _, text) = raw("PUT", "/control/rate", &[HOST, auth], r#"{"rate": 10}"#);
    assert_eq!(
        (code, error_of(&text).contains("Content-Type")),
        (415, true),
        "{text}"
    );
    assert_eq!(raw("POST", "/control/pause", &[HOST, auth], "").0, 200);
    assert_eq!(d.status()["paused"], true);
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}

/// The daemon's open sockets (its TCP listener, the driver's connections and HTTP clients).
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Whether the daemon has closed `s` (end of file or a reset), waiting up to `wait`.
fn closed_by_daemon(mut s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // timed out: still open
        }
    }
}

/// The limits as `src/http/server.rs` sets them.
const MAX_CONNECTIONS: usize = 64;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_capped_and_metrics_still_answers() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("limits");
    let spec = spec_file("limits", &spec_text(&ks));
    let d = Daemon::start(&spec, ADDR, &[], &[]);
    d.wait_ready();
    let pid = d.child.id();

    // A client that never finishes its headers, and one idle after a kept-alive request: each
    // is closed once the header-read timeout has passed, not before.
    let started = Instant::now();
    let mut slow = TcpStream::connect(ADDR).unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let mut idle = TcpStream::connect(ADDR).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let early = HEADER_READ_TIMEOUT - Duration::from_secs(2);
    assert!(
        !closed_by_daemon(&slow, early),
        "slow closed before the timeout"
    );
    assert!(
        !closed_by_daemon(&idle, Duration::from_millis(10)),
        "idle closed early"
    );
    assert!(
        closed_by_daemon(&slow, Duration::from_secs(5)),
        "slow never closed"
    );
    assert!(
        closed_by_daemon(&idle, Duration::from_secs(5)),
        "idle never closed"
    );
    let took = started.elapsed();
    eprintln!("slow and idle connections closed after {took:?}");
    assert!(
        took < HEADER_READ_TIMEOUT + Duration::from_secs(3),
        "{took:?}"
    );

    // A flood of idle connections, three times the cap: the daemon holds at most the cap
    // (its socket count rises by at most that much), closes the rest, and answers a scrape.
    let baseline = sockets_of(pid);
    let flood: Vec<TcpStream> = (0..3 * MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(ADDR).unwrap())
        .collect();
    let t = Instant::now();
    let (code, body) = get(ADDR, "/metrics");
    let scrape = t.elapsed();
    eprintln!(
        "/metrics under a flood of {} idle sockets: {scrape:?}",
        flood.len()
    );
    assert_eq!(code, 200);
    assert!(body.contains("cqlpulse_requests_total"), "{body}");
    assert!(scrape < Duration::from_secs(2), "{scrape:?}");
    let held = sockets_of(pid).saturating_sub(baseline);
    eprintln!("daemon sockets: {baseline} before, +{held} during the flood");
    assert!(
        held <= MAX_CONNECTIONS + 1,
        "{held} sockets above the baseline"
    );
    let closed = flood
        .iter()
        .filter(|s| closed_by_daemon(s, Duration::from_millis(20)))
        .count();
    eprintln!(
        "{closed} of {} flood connections closed by the daemon",
        flood.len()
    );
    assert!(closed >= 2 * MAX_CONNECTIONS - 1, "only {closed} closed");
    assert_eq!(d.status()["phase"], "running", "the run goes on");

    drop(flood);
    drop(d);
    drop_keyspace(&session().await, &ks).await;
}
