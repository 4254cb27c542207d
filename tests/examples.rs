//! Every example spec in `config/` is valid offline, and its statements prepare against the
//! real node with generators that fit their columns.

mod common;

use std::process::Command;

use common::*;
use cqlpulse::daemon::Loaded;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "the examples are all there: {files:?}");
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_spec_is_valid_and_prepares_against_the_node() {
    require_cassandra();
    let _serial = serial().await;
    let session = session().await;
    for path in examples() {
        // Each in a keyspace of its own, so examples sharing one do not collide.
        let stem = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        let ks = keyspace(&format!("ex_{stem}"));
        let mut loaded = Loaded::load(
            path.clone(),
            vec![set("schema.keyspace", &format!("\"{ks}\""))],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        loaded.plan.schema.mode = cqlpulse::spec::SchemaMode::CreateIfMissing;
        let tracking = cqlpulse::cql::Tracking::default();
        let s = cqlpulse::cql::connect(&loaded.plan.cluster, &tracking)
            .await
            .unwrap();
        cqlpulse::cql::setup_schema(&s, &loaded.plan)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        cqlpulse::cql::prepare(&s, &loaded.plan, &tracking)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        drop_keyspace(&session, &ks).await;
    }
}

#[test]
fn the_binary_checks_examples_and_refuses_a_bad_spec_with_status_2() {
    let bin = env!("CARGO_BIN_EXE_cqlpulse");
    for path in examples() {
        let out = Command::new(bin).arg("check").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok: workload"));
    }
    let bad = spec_file(
        "bad",
        "name = \"x\"\n[[ops]]\nname = \"a\"\ncql = \"SELECT 1\"\nweigth = 2\n",
    );
    let out = Command::new(bin).arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-") && err.contains(":5:1: ops[0].weigth: unknown field `weigth`"),
        "{err}"
    );
    let out = Command::new(bin)
        .args(["check", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml: cannot read spec"));
    let out = Command::new(bin)
        .arg("check")
        .arg(&bad)
        .env("CQLPULSE__LOAD__RATE", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "the file's error comes first");
}
