//! One case per validation rule: a malformed spec and the words its error must contain.

use std::path::PathBuf;

use super::*;
use crate::spec::{self, Source};

const BASE: &str = r#"
name = "t"
[data.k]
kind = "sequence"
[data.v]
kind = "text"
size = 10
[[ops]]
name = "ins"
cql = "INSERT INTO t (k, v) VALUES (?, ?)"
args = ["k", "v"]
"#;

fn env(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "s3cr3t-value".to_string())
}

fn plan_of(text: &str) -> Result<Plan, spec::SpecError> {
    let source = Source {
        path: PathBuf::from("t.toml"),
        text: text.to_string(),
    };
    let spec = spec::parse(&source, &[])?;
    build(&spec, &source, &env, &ShardEnv::default(), 0)
}

/// BASE with `extra` appended (TOML tables may come in any order).
fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn the_base_spec_is_valid_and_defaults_apply() {
    let p = plan_of(BASE).expect("base spec");
    assert_eq!(p.load.model, Model::Chains);
    assert_eq!(p.load.concurrency, 120);
    assert_eq!(p.load.end, End::Forever);
    assert_eq!(p.ops[0].args.len(), 2);
    assert!(p.ops[0].idempotent);
    assert!(
        p.metrics.buckets.contains(&12.0),
        "the request timeout is a bucket boundary"
    );
    assert!((p.metrics.buckets[0] - 0.0001).abs() < 1e-12);
    // The default layout: 100 us to 10 s by 1.15 (84 bounds, the last 11 s) plus the 12 s
    // timeout.
    assert_eq!(p.metrics.buckets.len(), 85);
    assert!(p.metrics.buckets.windows(2).all(|w| w[0] < w[1]));
    assert!(p.metrics.buckets.windows(2).all(|w| w[1] / w[0] <= 1.16));
}

#[test]
fn an_explicit_bucket_list_is_taken_as_written() {
    let p = plan_of(&with("[metrics]\nbuckets = [0.001, 0.0025, 1, 30]")).expect("list");
    assert_eq!(p.metrics.buckets, vec![0.001, 0.0025, 1.0, 30.0]);
}

#[test]
fn bad_bucket_layouts_name_the_line_and_column_of_the_bound() {
    let cases = [
        (
            "buckets = [0.001, 0.002, 0.002]",
            "t.toml:14:26: metrics.buckets[2]: bounds must increase",
        ),
        (
            "buckets = [0.001]",
            "t.toml:14:1: metrics.buckets: needs at least 2 bounds, not 1",
        ),
        (
            "buckets = []",
            "metrics.buckets: needs at least 2 bounds, not 0",
        ),
        (
            "buckets = [0.001, inf]",
            "t.toml:14:19: metrics.buckets[1]: must be a finite number",
        ),
        (
            "buckets = [nan, 1.0]",
            "metrics.buckets[0]: must be a finite number",
        ),
        (
            "buckets = [-1.0, 1.0]",
            "metrics.buckets[0]: must be a finite number of seconds above zero",
        ),
        (
            "buckets = { factor = 1.01 }",
            "metrics.buckets.factor: 1.01 from 100us to 10s gives 1159 buckets, over the limit of 200",
        ),
        ("buckets = { minimum = \"1ms\" }", "unknown field `minimum`"),
        (
            "buckets = \"fine\"",
            "a table { min, max, factor } or a list of upper bounds",
        ),
    ];
    let over: Vec<String> = (1..=201).map(|i| format!("{i}.0")).collect();
    let over = format!("buckets = [{}]", over.join(", "));
    let mut all: Vec<(&str, &str)> = cases.to_vec();
    all.push((&over, "metrics.buckets: 201 bounds, over the limit of 200"));
    for (line, expected) in all {
        let msg = match plan_of(&with(&format!("[metrics]\n{line}"))) {
            Ok(_) => panic!("`{line}` accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(expected) && msg.starts_with("t.toml:"),
            "`{line}`: got `{msg}`, expected `{expected}`"
        );
    }
}

#[test]
fn malformed_specs_are_refused_with_field_and_reason() {
    let cases: Vec<(String, &str)> = vec![
        (
            with("[load]\nrate = 1e-300"),
            "load.rate: must be 0 (unthrottled) or between 0.01 and 1e8",
        ),
        (
            with("[load]\nstages = [{ duration = \"1s\", rate = 1e300 }]"),
            "load.stages[0].rate: must be between 0.01 and 1e8",
        ),
        (
            with("[load]\nduration = \"100000y\""),
            "load.duration: duration `100000y` is longer than 10 years",
        ),
        (
            with("[cluster]\nretry_backoff = \"1000000d\""),
            "cluster.retry_backoff: duration `1000000d` is longer",
        ),
        (
            with("[cluster.speculative_execution]\ndelay = \"0s\""),
            "t.toml:14:1: cluster.speculative_execution.delay: must be greater than zero",
        ),
        (
            with("[cluster.speculative_execution]\ndelay = \"10ms\"\nmax = 0"),
            "t.toml:15:1: cluster.speculative_execution.max: must be 1 to 10 extra attempts, not 0",
        ),
        (
            with("[cluster]\nspeculative_execution = { max = 2 }"),
            "cluster.speculative_execution: missing field `delay`",
        ),
        (
            with("[cluster.speculative_execution]\ndelay = \"10ms\"\nmaximum = 2"),
            "t.toml:15:1: cluster.speculative_execution.maximum: unknown field `maximum`",
        ),
        (
            with("[load]\nconcurency = 3"),
            "t.toml:14:1: load.concurency: unknown field `concurency`",
        ),
        (
            with("[load]\nrate = \"fast\""),
            "load.rate: invalid type: string",
        ),
        (
            with("[load]\nmodel = \"async\""),
            "load.model: unknown variant `async`",
        ),
        (
            with("[load]\nduration = \"ten seconds\""),
            "load.duration: invalid duration",
        ),
        (
            with("[load]\nworkers = 4"),
            "load.workers: is the knob of model `sync`",
        ),
        (
            with("[load]\nmodel = \"sync\"\nworkers = 0"),
            "load.workers: must be at least 1",
        ),
        (
            with("[load]\nrate = -5.0"),
            "load.rate: must be 0 (unthrottled) or between 0.01 and 1e8",
        ),
        (
            with("[load]\non_backlog = \"drop\""),
            "load.on_backlog: \"drop\" needs a target rate",
        ),
        (
            with("[load]\nduration = \"10s\"\nops = 5"),
            "load.ops: set either load.duration or load.ops",
        ),
        (with("[load]\nops = 0"), "load.ops: must be at least 1"),
        (
            with("[load]\nmax_in_flight = 0"),
            "load.max_in_flight: must be at least 1",
        ),
        (
            with("[load]\nchains = 2000"),
            "load.chains: 2000 is above load.max_in_flight",
        ),
        (
            with("[load]\nduration = \"5s\"\nwarmup = \"5s\""),
            "load.warmup: 5s is not shorter",
        ),
        (
            with("[load]\nrelease_every = \"20ms\""),
            "load.release_every: 20ms is longer than 10ms",
        ),
        (
            with("[load]\nrate = 10.0\nstages = [{ duration = \"1s\", rate = 5.0 }]"),
            "load.stages: set either load.rate or load.stages",
        ),
        (
            with("[load]\nstages = [{ duration = \"0s\", rate = 5.0 }]"),
            "load.stages[0].duration: must be greater than zero",
        ),
        (
            with("[load]\nabort = { error_ratio = 1.5 }"),
            "load.abort.error_ratio: must be in (0, 1]",
        ),
        (
            BASE.replace("args = [\"k\", \"v\"]", "args = [\"k\"]"),
            "ops[0].args: the statement has 2 bind marker(s) but 1 argument(s)",
        ),
        (
            BASE.replace("args = [\"k\", \"v\"]", "args = [\"k\", \"nope\"]"),
            "ops[0].args[1]: unknown generator `nope`; [data] defines: k, v",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"in s\""),
            "ops[0].name: `in s` must be 1-64 letters",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"ins\"\nweight = 0.0"),
            "ops: the weights of all ops sum to zero",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"ins\"\nweight = -1.0"),
            "ops[0].weight: must be a non-negative number",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"ins\"\nweigth = 1.0"),
            "ops[0].weigth: unknown field `weigth`",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"ins\"\nconsistency = \"most\""),
            "ops[0].consistency: unknown consistency `most`",
        ),
        (
            BASE.replace("name = \"ins\"", "name = \"ins\"\nbatch = { size = 0 }"),
            "ops[0].batch.size: must be at least 1",
        ),
        (
            format!("{BASE}\n[[ops]]\nname = \"ins\"\ncql = \"SELECT * FROM t\"\n"),
            "ops[1].name: `ins` is used by an earlier op",
        ),
        (
            format!(
                "{BASE}\n[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM t WHERE k = ?\"\nargs = [\"k\"]\nbatch = {{ size = 3 }}\n"
            ),
            "ops[1].batch: a SELECT cannot be batched",
        ),
        (
            "name = \"t\"\n".to_string(),
            "ops: at least one [[ops]] is required",
        ),
        (
            BASE.replace(
                "kind = \"sequence\"",
                "kind = \"uniform\"\nmin = 5\nmax = 1",
            ),
            "data.k: min (5) is above max (1)",
        ),
        (
            BASE.replace("kind = \"sequence\"", "kind = \"zipf\"\ncount = 0"),
            "data.k: count must be at least 1",
        ),
        (
            BASE.replace(
                "args = [\"k\", \"v\"]",
                "args = [\"k\", \"v\"]\npage_size = 100",
            ),
            "ops[0].page_size: pages are for reads (SELECT); this op writes",
        ),
        (
            with("[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM t\"\nverify = \"nope\""),
            "ops[1].verify: unknown write op `nope`; the ops are: ins, r",
        ),
        (
            BASE.replace(
                "args = [\"k\", \"v\"]",
                "args = [\"k\", \"v\"]\nverify = \"ins\"",
            ),
            "ops[0].verify: only a read (SELECT) verifies; `ins` writes",
        ),
        (
            with(
                "[[ops]]\nname = \"c\"\ncql = \"UPDATE n SET c = c + ? WHERE k = ?\"\nargs = [\"v\", \"k\"]\n[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM n\"\nverify = \"c\"",
            ),
            "ops[2].verify: `c` cannot be verified: it is a counter update",
        ),
        (
            with(
                "[[ops]]\nname = \"l\"\ncql = \"INSERT INTO t (k, v) VALUES (?, ?) IF NOT EXISTS\"\nargs = [\"k\", \"v\"]\n[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM t\"\nverify = \"l\"",
            ),
            "ops[2].verify: `l` cannot be verified: it is a conditional write (IF ...)",
        ),
        (
            with(
                "[[ops]]\nname = \"n\"\ncql = \"INSERT INTO t (k, v, at) VALUES (?, ?, toTimestamp(NOW()))\"\nargs = [\"k\", \"v\"]\n[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM t\"\nverify = \"n\"",
            ),
            "ops[2].verify: `n` cannot be verified: it sets a column with now()",
        ),
        (
            with("[[ops]]\nname = \"r\"\ncql = \"SELECT * FROM t\"\npage_size = 0"),
            "ops[1].page_size: must be at least 1",
        ),
        (
            with("[data.l]\nkind = \"list\"\nelement = \"nope\""),
            "data.l.element: unknown generator `nope`; [data] defines: k, l, v",
        ),
        (
            with(
                "[data.a]\nkind = \"list\"\nelement = \"b\"\n[data.b]\nkind = \"udt\"\nfields = { x = \"a\" }",
            ),
            "data.b.fields: generators refer to each other in a cycle: a -> b -> a",
        ),
        (
            with("[data.s]\nkind = \"sparse\"\nof = \"k\"\nnulls = 1.5"),
            "data.s: nulls is the share of null values, between 0 and 1, not 1.5",
        ),
        (
            with("[data.l]\nkind = \"map\"\nkey = \"k\"\nvalue = \"v\"\nsize = \"v\""),
            "data.l.size: a size comes from an integer generator, not a text one",
        ),
        (
            with("[data.l]\nkind = \"set\"\nelement = \"k\"\nsize = 70000"),
            "data.l: size 70000 is above the limit of 65535 elements",
        ),
        (
            with("[data.x]\nkind = \"vector\"\nelement = \"k\"\ndimension = 0"),
            "data.x: dimension must be at least 1",
        ),
        (
            BASE.replace("kind = \"sequence\"", "kind = \"gamma\""),
            "t.toml:4:8: data.k.kind: unknown variant `gamma`",
        ),
        (
            BASE.replace("size = 10", "size = { min = 10, max = 5 }"),
            "data.v: size.min (10) is above size.max (5)",
        ),
        (
            with("[cluster]\ncontact_points = []"),
            "cluster.contact_points: needs at least one host:port",
        ),
        (
            with("[cluster]\nconsistency = \"local_one_two\""),
            "cluster.consistency: unknown consistency",
        ),
        (
            with("[cluster]\nserial_consistency = \"quorum\""),
            "cluster.serial_consistency: `quorum` is not serial",
        ),
        (
            with("[cluster]\nrequest_timeout = \"0s\""),
            "cluster.request_timeout: must be greater than zero",
        ),
        (
            with("[cluster]\nschema_agreement_timeout = \"0s\""),
            "cluster.schema_agreement_timeout: must be greater than zero",
        ),
        (
            with("[cluster]\nusername = \"u\""),
            "cluster.username: a username needs",
        ),
        (
            with("[cluster]\nusername = \"u\"\npassword_env = \"MISSING\""),
            "cluster.password_env: environment variable `MISSING` is not set",
        ),
        (
            with("[schema]\nkeyspace = \"my-ks\""),
            "schema.keyspace: `my-ks` is not a valid keyspace name",
        ),
        (
            with("[schema]\nmode = \"sometimes\""),
            "schema.mode: unknown variant `sometimes`",
        ),
        (
            with("[metrics]\nlisten = \"localhost\""),
            "metrics.listen: `localhost` is not an address",
        ),
        (
            with("[metrics]\nbuckets = { factor = 1.0 }"),
            "metrics.buckets.factor: must be above 1",
        ),
        (
            with("[shard]\nindex = 3\ncount = 3"),
            "shard.index: 3 is not below shard.count (3)",
        ),
        (
            with("[shard]\ncount = 0"),
            "shard.count: must be at least 1",
        ),
        (
            with("[shard]\nindex = \"auto\"\ncount = 2"),
            "shard.index: \"auto\" needs CQLPULSE_POD_INDEX",
        ),
        (
            with("[shard]\nindex = \"first\""),
            "shard.index: `first` is neither a number nor \"auto\"",
        ),
        (
            with("[shard]\nstart_at = \"tomorrow\""),
            "shard.start_at: `tomorrow` is not an RFC 3339 time",
        ),
        (
            with("[control]\ntoken = \"short\""),
            "control.token: must be at least 8 characters",
        ),
        (with("name = \"dup\""), "duplicate key"),
        (with("[load\nrate = 1"), "t.toml:13:"),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (text, expected) in &cases {
        match plan_of(text) {
            Ok(_) => failures.push(format!("accepted, expected `{expected}`")),
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(expected) || !msg.starts_with("t.toml") {
                    failures.push(format!("got `{msg}`\n   expected `{expected}`"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn speculative_execution_is_off_unless_set() {
    assert_eq!(plan_of(BASE).unwrap().cluster.speculative_execution, None);
    let p = plan_of(&with(
        "[cluster]\nlocal_dc = \"dc1\"\nspeculative_execution = { delay = \"20ms\" }",
    ))
    .unwrap();
    assert_eq!(
        p.cluster.speculative_execution,
        Some(Speculative {
            max: 1,
            delay: std::time::Duration::from_millis(20)
        })
    );
    assert_eq!(p.cluster.local_dc.as_deref(), Some("dc1"));
}

#[test]
fn semantic_errors_point_at_the_line_of_the_field() {
    let text = with("[load]\nmodel = \"sync\"\nwindow = 5");
    let msg = plan_of(&text).unwrap_err().to_string();
    assert!(msg.starts_with("t.toml:15:1: load.window:"), "{msg}");
}

#[test]
fn shards_split_ops_and_rate_exactly() {
    let mut total_ops = 0;
    let mut total_rate = 0.0;
    for i in 0..3 {
        let text = with(&format!(
            "[load]\nops = 10\nrate = 100.0\n[shard]\nindex = {i}\ncount = 3"
        ));
        let p = plan_of(&text).unwrap();
        let End::Ops(n) = p.load.end else { panic!() };
        total_ops += n;
        total_rate += p.load.rate;
    }
    assert_eq!(total_ops, 10);
    assert!((total_rate - 100.0).abs() < 1e-9);
}

#[test]
fn stages_ramp_and_then_hold_the_last_rate() {
    let p = plan_of(&with("[load]\nstages = [{ duration = \"10s\", rate = 100.0, ramp = true }, { duration = \"10s\", rate = 50.0 }]")).unwrap();
    // The schedule the engine builds from these stages (it owns the rate arithmetic).
    let start = tokio::time::Instant::now();
    let schedule = crate::engine::Schedule::staged(start, 0, p.load.stages.clone(), p.load.rate);
    let at = |s: f64| schedule.rate_at(start + std::time::Duration::from_secs_f64(s));
    assert!((at(5.0) - 50.0).abs() < 1e-9, "half way up the ramp");
    assert_eq!(at(15.0), 50.0);
    assert_eq!(at(100.0), 50.0);
    assert_eq!(p.load.rate, 50.0);
}

#[test]
fn an_auto_ordinal_beyond_the_count_is_a_waiting_surplus_not_an_error() {
    let plan_as_pod = |pod: &str| {
        let source = Source {
            path: PathBuf::from("t.toml"),
            text: with("[shard]\nindex = \"auto\"\ncount = 3"),
        };
        let spec = spec::parse(&source, &[]).unwrap();
        let shard_env = ShardEnv {
            pod_index: Some(pod.to_string()),
            hostname: None,
        };
        build(&spec, &source, &env, &shard_env, 0)
    };
    let inside = plan_as_pod("2").unwrap().shard;
    assert_eq!((inside.index, inside.surplus), (2, false));
    let beyond = plan_as_pod("3").unwrap().shard;
    assert_eq!((beyond.index, beyond.surplus), (3, true));
    assert!(
        beyond
            .surplus_reason()
            .contains("pod ordinal 3 is not below shard.count (3)"),
        "{}",
        beyond.surplus_reason()
    );
}
