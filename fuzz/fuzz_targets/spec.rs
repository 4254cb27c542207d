//! Fuzzes the spec parser and the plan builder: no input may panic or hang.
//!
//! Two modes, chosen by the input:
//! - no NUL byte: the (UTF-8) input is a whole spec file; parse it, and if that succeeds,
//!   build the plan.
//! - a NUL byte: the input is `key\0value`, applied as one override (`Override::new`, or
//!   `env_overrides` when the key starts with `CQLPULSE__`) on top of a fixed valid base spec
//!   (config/quickstart.toml), then parse + build.
//!
//! Every error is formatted with `to_string()`: error Display must not panic either.
//! Nothing else is asserted.

#![no_main]

use std::path::PathBuf;

use cqlpulse::plan::{self, ShardEnv};
use cqlpulse::spec::{self, Override, Source};
use libfuzzer_sys::fuzz_target;

/// config/quickstart.toml, comments dropped: a small spec that parses and builds.
const BASE: &str = r#"name = "quickstart"
seed = 1

[cluster]
contact_points = ["127.0.0.1:9042"]
consistency = "local_quorum"

[schema]
keyspace = "cqlpulse_quickstart"
replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
statements = [
  "CREATE TABLE IF NOT EXISTS kv (key bigint PRIMARY KEY, value text)",
]

[data.key]
kind = "sequence"

[data.value]
kind = "text"
size = { min = 50, max = 150 }

[[ops]]
name = "insert"
cql = "INSERT INTO kv (key, value) VALUES (?, ?)"
args = ["key", "value"]

[load]
model = "chains"
chains = 64
rate = 5000.0
ops = 100000

[metrics]
listen = "127.0.0.1:9464"
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_and_build(source: &Source, overrides: &[Override]) {
    match spec::parse(source, overrides) {
        Ok(spec) => match plan::build(&spec, source, &no_env, &ShardEnv::default(), 0) {
            Ok(plan) => {
                std::hint::black_box(plan);
            }
            Err(e) => {
                std::hint::black_box(e.to_string());
            }
        },
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(nul) = data.iter().position(|&b| b == 0) {
        let (Ok(key), Ok(value)) = (
            std::str::from_utf8(&data[..nul]),
            std::str::from_utf8(&data[nul + 1..]),
        ) else {
            return;
        };
        let source = Source {
            path: PathBuf::from("fuzz.toml"),
            text: BASE.to_string(),
        };
        // Keys spelled as environment variables go through env_overrides (which lowercases
        // them and turns `__` into `.`); any other key is a command-line style dotted key.
        let overrides = if key.starts_with("CQLPULSE__") {
            spec::env_overrides(std::iter::once((key.to_string(), value.to_string())))
        } else {
            vec![Override::new("fuzz override", key, value)]
        };
        for o in &overrides {
            std::hint::black_box(o.dotted_key());
        }
        parse_and_build(&source, &overrides);
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source {
        path: PathBuf::from("fuzz.toml"),
        text: text.to_string(),
    };
    parse_and_build(&source, &[]);
});
