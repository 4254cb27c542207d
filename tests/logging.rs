//! The log as a file or a pipe receives it: plain text, no terminal colour codes. Needs no
//! Cassandra: a daemon that cannot connect logs its retries.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn log_lines_to_a_file_carry_no_colour_codes() {
    let node = free_addr();
    let spec = spec_file(
        "logging",
        &format!(
            r#"name = "logging"
[cluster]
contact_points = ["{node}"]
connect_timeout = "1s"
[schema]
keyspace = "t_logging"
replication = "{{'class': 'SimpleStrategy', 'replication_factor': 1}}"
statements = ["CREATE TABLE IF NOT EXISTS kv (key bigint PRIMARY KEY)"]
[data.key]
kind = "sequence"
[[ops]]
name = "insert"
cql = "INSERT INTO kv (key) VALUES (?)"
args = ["key"]
[load]
model = "chains"
chains = 1
rate = 10.0
ops = 10
"#
        ),
    );
    // `--log-format text` (the daemon helper's) to a file: the text format, not JSON.
    let daemon = Daemon::start(&spec, &free_addr(), &[], &[]);
    wait_for(Duration::from_secs(30), "a connection retry logged", || {
        daemon.log().contains("retrying in")
    });
    let log = daemon.log();
    assert!(log.contains("WARN"), "the text format's level: {log}");
    assert!(
        !log.contains('\x1b'),
        "terminal escape codes in a log written to a file: {log:?}"
    );
}
