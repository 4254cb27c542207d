//! Spec -> Plan: one check per rule, each error naming the field it is about.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::ops::{self, CONSISTENCY_NAMES, OpKind};
use super::shard::{self, IndexMap, ShardEnv};
use super::*;
use crate::data::Generator;
use crate::spec::{GenSpec, LoadSpec, OnBacklog, ShardIndex, SizeSpec, Source, Spec, SpecError};

/// Largest text or blob value; beyond this a request would not fit the native protocol's
/// default frame limits anyway.
const MAX_VALUE_BYTES: u32 = 16 * 1024 * 1024;

/// Builds the plan. `env` looks up environment variables (passwords and tokens named in the
/// spec); `shard_env` resolves `index = "auto"`; `now_ms` is the origin of time generators.
pub fn build(
    spec: &Spec,
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
    shard_env: &ShardEnv,
    now_ms: i64,
) -> Result<Plan, SpecError> {
    let err = |field: &str, msg: String| source.error_at(field, msg);

    if !ops::is_valid_name(&spec.name) {
        return Err(err(
            "name",
            "must be 1-64 letters, digits, `_` or `-`".into(),
        ));
    }
    let cluster = cluster(spec, env, &err)?;
    check_schema(spec, &err)?;
    let (generators, by_name) = generators(spec, now_ms, &err)?;
    let ops = operations(spec, &cluster, &by_name, &generators, &err)?;
    let shard = shard_plan(spec, shard_env, &err)?;
    let load = load(&spec.load, &shard, &err)?;
    let metrics = metrics(spec, cluster.request_timeout, &err)?;
    let control_token = token(spec, env, &err)?;
    let text = toml::to_string(spec).unwrap_or_default();
    let digest = format!(
        "{:016x}",
        text.bytes()
            .fold(spec.seed, |h, b| crate::data::mix(h ^ b as u64))
    );
    Ok(Plan {
        name: spec.name.clone(),
        seed: spec.seed,
        cluster,
        schema: spec.schema.clone(),
        ops,
        generators,
        load,
        metrics,
        control_token,
        shard,
        spec: spec.clone(),
        digest,
    })
}

type Err<'a> = dyn Fn(&str, String) -> SpecError + 'a;

/// The generators in order, and each name's index among them.
type Generators = (Vec<Arc<Generator>>, HashMap<String, usize>);

fn cluster(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    err: &Err,
) -> Result<ClusterPlan, SpecError> {
    let c = &spec.cluster;
    if c.contact_points.is_empty() {
        return Err(err(
            "cluster.contact_points",
            "needs at least one host:port".into(),
        ));
    }
    for (i, cp) in c.contact_points.iter().enumerate() {
        if cp.trim().is_empty() {
            return Err(err(
                &format!("cluster.contact_points[{i}]"),
                "is empty".into(),
            ));
        }
    }
    let consistency = ops::parse_consistency(&c.consistency).ok_or_else(|| {
        err(
            "cluster.consistency",
            format!(
                "unknown consistency `{}`; expected one of {CONSISTENCY_NAMES}",
                c.consistency
            ),
        )
    })?;
    let serial_consistency =
        ops::parse_serial_consistency(&c.serial_consistency).ok_or_else(|| {
            err(
                "cluster.serial_consistency",
                format!("`{}` is not serial or local_serial", c.serial_consistency),
            )
        })?;
    if c.request_timeout.0.is_zero() {
        return Err(err(
            "cluster.request_timeout",
            "must be greater than zero".into(),
        ));
    }
    if c.connect_timeout.0.is_zero() {
        return Err(err(
            "cluster.connect_timeout",
            "must be greater than zero".into(),
        ));
    }
    if c.connections_per_node == 0 {
        return Err(err(
            "cluster.connections_per_node",
            "must be at least 1".into(),
        ));
    }
    let password = match (&c.password, &c.password_env) {
        (Some(_), Some(_)) => {
            return Err(err(
                "cluster.password_env",
                "set either cluster.password or cluster.password_env, not both".into(),
            ));
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(var)) => Some(env(var).ok_or_else(|| {
            err(
                "cluster.password_env",
                format!("environment variable `{var}` is not set"),
            )
        })?),
        (None, None) => None,
    };
    let credentials = match (&c.username, password) {
        (Some(u), Some(p)) => Some((u.clone(), p)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "cluster.username",
                "a username needs cluster.password or cluster.password_env".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "cluster.password",
                "a password needs cluster.username".into(),
            ));
        }
    };
    Ok(ClusterPlan {
        contact_points: c.contact_points.clone(),
        local_dc: c.local_dc.clone(),
        consistency,
        serial_consistency,
        request_timeout: c.request_timeout.0,
        connect_timeout: c.connect_timeout.0,
        credentials,
        retries: c.retries,
        retry_backoff: c.retry_backoff.0,
        connections_per_node: c.connections_per_node,
    })
}

fn check_schema(spec: &Spec, err: &Err) -> Result<(), SpecError> {
    let ks = &spec.schema.keyspace;
    let valid = !ks.is_empty()
        && ks.len() <= 48
        && ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !ks.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(err(
            "schema.keyspace",
            format!("`{ks}` is not a valid keyspace name (letters, digits, `_`, at most 48)"),
        ));
    }
    if !spec.schema.replication.trim_start().starts_with('{') {
        return Err(err(
            "schema.replication",
            "must be a CQL map such as {'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
        ));
    }
    for (i, s) in spec.schema.statements.iter().enumerate() {
        if s.trim().is_empty() {
            return Err(err(&format!("schema.statements[{i}]"), "is empty".into()));
        }
    }
    Ok(())
}

fn size_ok(size: &SizeSpec) -> Result<(), String> {
    let (min, max) = match *size {
        SizeSpec::Fixed(n) => (n, n),
        SizeSpec::Range { min, max } => (min, max),
    };
    if min > max {
        return Err(format!("size.min ({min}) is above size.max ({max})"));
    }
    if max > MAX_VALUE_BYTES {
        return Err(format!(
            "size {max} is above the limit of {MAX_VALUE_BYTES} bytes"
        ));
    }
    Ok(())
}

fn check_generator(g: &GenSpec) -> Result<(), String> {
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    match *g {
        GenSpec::Uniform { min, max } | GenSpec::Hotspot { min, max, .. } if min > max => {
            Err(format!("min ({min}) is above max ({max})"))
        }
        GenSpec::Hotspot {
            hot_fraction,
            hot_probability,
            ..
        } if !unit(hot_fraction) || !unit(hot_probability) => {
            Err("hot_fraction and hot_probability must be between 0 and 1".into())
        }
        GenSpec::Zipf { count: 0, .. } => Err("count must be at least 1".into()),
        GenSpec::Zipf { exponent, .. } if !(exponent > 0.0 && exponent.is_finite()) => Err(
            format!("exponent must be a positive number, not {exponent}"),
        ),
        GenSpec::Normal { stddev, mean, .. }
            if !(stddev >= 0.0 && stddev.is_finite() && mean.is_finite()) =>
        {
            Err("mean must be finite and stddev a non-negative number".into())
        }
        GenSpec::Normal {
            min: Some(lo),
            max: Some(hi),
            ..
        } if lo > hi => Err(format!("min ({lo}) is above max ({hi})")),
        GenSpec::Text { ref size } | GenSpec::Blob { ref size } => size_ok(size),
        _ => Ok(()),
    }
}

fn generators(spec: &Spec, now_ms: i64, err: &Err) -> Result<Generators, SpecError> {
    let mut list = Vec::new();
    let mut by_name = HashMap::new();
    for (name, g) in &spec.data {
        let field = format!("data.{name}");
        if !ops::is_valid_name(name) {
            return Err(err(
                &field,
                "generator names are letters, digits, `_` or `-`".into(),
            ));
        }
        check_generator(g).map_err(|m| err(&field, m))?;
        by_name.insert(name.clone(), list.len());
        list.push(Arc::new(Generator::new(g, spec.seed, now_ms)));
    }
    Ok((list, by_name))
}

fn operations(
    spec: &Spec,
    cluster: &ClusterPlan,
    by_name: &HashMap<String, usize>,
    generators: &[Arc<Generator>],
    err: &Err,
) -> Result<Vec<OpPlan>, SpecError> {
    if spec.ops.is_empty() {
        return Err(err("ops", "at least one [[ops]] is required".into()));
    }
    let mut out: Vec<OpPlan> = Vec::new();
    for (i, o) in spec.ops.iter().enumerate() {
        let f = |k: &str| format!("ops[{i}].{k}");
        if !ops::is_valid_name(&o.name) {
            return Err(err(
                &f("name"),
                format!("`{}` must be 1-64 letters, digits, `_` or `-`", o.name),
            ));
        }
        if out.iter().any(|p| p.name == o.name) {
            return Err(err(
                &f("name"),
                format!("`{}` is used by an earlier op", o.name),
            ));
        }
        if o.cql.trim().is_empty() {
            return Err(err(&f("cql"), "is empty".into()));
        }
        if !(o.weight >= 0.0 && o.weight.is_finite()) {
            return Err(err(
                &f("weight"),
                format!("must be a non-negative number, not {}", o.weight),
            ));
        }
        let markers = ops::count_bind_markers(&o.cql);
        if markers != o.args.len() {
            return Err(err(
                &f("args"),
                format!(
                    "the statement has {markers} bind marker(s) but {} argument(s) are given",
                    o.args.len()
                ),
            ));
        }
        let mut args = Vec::new();
        for (j, a) in o.args.iter().enumerate() {
            let g = by_name.get(a).ok_or_else(|| {
                let mut known: Vec<&str> = by_name.keys().map(String::as_str).collect();
                known.sort();
                err(
                    &format!("ops[{i}].args[{j}]"),
                    format!(
                        "unknown generator `{a}`; [data] defines: {}",
                        if known.is_empty() {
                            "nothing".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            args.push(*g);
        }
        debug_assert!(args.iter().all(|&g| g < generators.len()));
        let consistency = match &o.consistency {
            Some(c) => ops::parse_consistency(c).ok_or_else(|| {
                err(
                    &f("consistency"),
                    format!("unknown consistency `{c}`; expected one of {CONSISTENCY_NAMES}"),
                )
            })?,
            None => cluster.consistency,
        };
        let serial_consistency = match &o.serial_consistency {
            Some(c) => ops::parse_serial_consistency(c).ok_or_else(|| {
                err(
                    &f("serial_consistency"),
                    format!("`{c}` is not serial or local_serial"),
                )
            })?,
            None => cluster.serial_consistency,
        };
        let timeout = o.timeout.map_or(cluster.request_timeout, |d| d.0);
        if timeout.is_zero() {
            return Err(err(&f("timeout"), "must be greater than zero".into()));
        }
        let kind = ops::classify(&o.cql);
        let batch = match &o.batch {
            None => None,
            Some(b) if b.size == 0 => {
                return Err(err(&f("batch.size"), "must be at least 1".into()));
            }
            Some(_) if kind == OpKind::Read => {
                return Err(err(&f("batch"), "a SELECT cannot be batched".into()));
            }
            Some(b) => Some((b.size, b.kind)),
        };
        out.push(OpPlan {
            name: o.name.clone(),
            cql: o.cql.clone(),
            kind,
            weight: o.weight,
            args,
            arg_names: o.args.clone(),
            consistency,
            serial_consistency,
            timeout,
            idempotent: o
                .idempotent
                .unwrap_or(matches!(kind, OpKind::Read | OpKind::Write)),
            batch,
        });
    }
    if out.iter().map(|o| o.weight).sum::<f64>() <= 0.0 {
        return Err(err("ops", "the weights of all ops sum to zero".into()));
    }
    Ok(out)
}

fn shard_plan(spec: &Spec, shard_env: &ShardEnv, err: &Err) -> Result<ShardPlan, SpecError> {
    let s = &spec.shard;
    if s.count == 0 {
        return Err(err("shard.count", "must be at least 1".into()));
    }
    let index = match &s.index {
        ShardIndex::Index(i) => *i,
        ShardIndex::Named(n) if n == "auto" => {
            shard_env.ordinal().map_err(|m| err("shard.index", m))?
        }
        ShardIndex::Named(n) => {
            return Err(err(
                "shard.index",
                format!("`{n}` is neither a number nor \"auto\""),
            ));
        }
    };
    if index >= s.count {
        return Err(err(
            "shard.index",
            format!("{index} is not below shard.count ({})", s.count),
        ));
    }
    let start_at = match &s.start_at {
        None => None,
        Some(t) => Some(humantime::parse_rfc3339_weak(t).map_err(|e| {
            err(
                "shard.start_at",
                format!("`{t}` is not an RFC 3339 time: {e}"),
            )
        })?),
    };
    Ok(ShardPlan {
        index,
        count: s.count,
        start_at,
    })
}

fn load(l: &LoadSpec, shard: &ShardPlan, err: &Err) -> Result<LoadPlan, SpecError> {
    let model = Model::from(l.model);
    // Knobs of other models are refused: a `window` on a `chains` run is a mistake.
    let knobs = [
        ("workers", l.workers, Model::Sync),
        ("batch_size", l.batch_size, Model::Batches),
        ("window", l.window, Model::Pipeline),
        ("chains", l.chains, Model::Chains),
    ];
    for (key, value, owner) in knobs {
        if value.is_some() && owner != model {
            return Err(err(
                &format!("load.{key}"),
                format!(
                    "is the knob of model `{}`, but load.model is `{}` (whose knob is {})",
                    owner.name(),
                    model.name(),
                    model.knob()
                ),
            ));
        }
        if value == Some(0) {
            return Err(err(&format!("load.{key}"), "must be at least 1".into()));
        }
    }
    if l.max_in_flight == 0 {
        return Err(err("load.max_in_flight", "must be at least 1".into()));
    }
    let concurrency = match model {
        Model::Sync => l.workers.unwrap_or(1),
        Model::Batches => l.batch_size.unwrap_or(120),
        Model::Pipeline => l.window.unwrap_or(120),
        Model::Chains => l.chains.unwrap_or(120),
        Model::Unbounded => l.max_in_flight,
    };
    if concurrency > l.max_in_flight {
        return Err(err(
            &format!("load.{}", model.knob()),
            format!(
                "{concurrency} is above load.max_in_flight ({}), the hard cap",
                l.max_in_flight
            ),
        ));
    }
    if !(l.rate == 0.0 || RATE_RANGE.contains(&l.rate)) {
        return Err(err(
            "load.rate",
            format!(
                "must be 0 (unthrottled) or between 0.01 and 1e8 ops/s, not {}",
                l.rate
            ),
        ));
    }
    if l.rate > 0.0 && !l.stages.is_empty() {
        return Err(err("load.stages", "set either load.rate or load.stages; after its stages a run holds the last stage's rate".into()));
    }
    let share = 1.0 / shard.count as f64;
    let mut stages = Vec::new();
    for (i, s) in l.stages.iter().enumerate() {
        if s.duration.0.is_zero() {
            return Err(err(
                &format!("load.stages[{i}].duration"),
                "must be greater than zero".into(),
            ));
        }
        if !RATE_RANGE.contains(&s.rate) {
            return Err(err(
                &format!("load.stages[{i}].rate"),
                format!("must be between 0.01 and 1e8 ops/s, not {}", s.rate),
            ));
        }
        stages.push(Stage {
            duration: s.duration.0,
            rate: s.rate * share,
            ramp: s.ramp,
        });
    }
    let rate = stages.last().map_or(l.rate * share, |s| s.rate);
    if rate == 0.0 && l.on_backlog == OnBacklog::Drop {
        return Err(err("load.on_backlog", "\"drop\" needs a target rate (load.rate or load.stages): without a schedule nothing is ever late".into()));
    }
    let (end, index_map) = match (l.duration, l.ops) {
        (Some(_), Some(_)) => {
            return Err(err(
                "load.ops",
                "set either load.duration or load.ops, not both".into(),
            ));
        }
        (Some(d), None) if d.0.is_zero() => {
            return Err(err("load.duration", "must be greater than zero".into()));
        }
        (Some(d), None) => (End::Duration(d.0), interleaved(shard)),
        (None, Some(0)) => return Err(err("load.ops", "must be at least 1".into())),
        (None, Some(n)) => {
            let (len, offset) = shard::share(n, shard.index, shard.count);
            (End::Ops(len), IndexMap::Contiguous { offset })
        }
        (None, None) => (End::Forever, interleaved(shard)),
    };
    if let End::Duration(d) = end
        && l.warmup.0 >= d
    {
        return Err(err(
            "load.warmup",
            format!("{} is not shorter than load.duration", l.warmup),
        ));
    }
    let a = &l.abort;
    let error_ratio = match (a.error_ratio, a.error_window) {
        (None, None) => None,
        (Some(r), _) if !(r > 0.0 && r <= 1.0) => {
            return Err(err(
                "load.abort.error_ratio",
                format!("must be in (0, 1], not {r}"),
            ));
        }
        (Some(r), w) => Some((r, w.map_or(Duration::from_secs(30), |w| w.0))),
        (None, Some(_)) => {
            return Err(err(
                "load.abort.error_window",
                "needs load.abort.error_ratio".into(),
            ));
        }
    };
    if a.consecutive_errors == Some(0) {
        return Err(err(
            "load.abort.consecutive_errors",
            "must be at least 1".into(),
        ));
    }
    Ok(LoadPlan {
        model,
        concurrency,
        rate,
        stages,
        max_in_flight: l.max_in_flight,
        on_backlog: l.on_backlog,
        end,
        warmup: l.warmup.0,
        lanes: l.lanes,
        drain_timeout: l.drain_timeout.0,
        abort: AbortPlan {
            error_ratio,
            consecutive_errors: a.consecutive_errors,
        },
        index_map,
    })
}

fn interleaved(shard: &ShardPlan) -> IndexMap {
    IndexMap::Interleaved {
        stride: shard.count as u64,
        offset: shard.index as u64,
    }
}

fn metrics(spec: &Spec, timeout: Duration, err: &Err) -> Result<MetricsPlan, SpecError> {
    let m = &spec.metrics;
    let listen: SocketAddr = m.listen.parse().map_err(|_| {
        err(
            "metrics.listen",
            format!(
                "`{}` is not an address such as 127.0.0.1:9464 or 0.0.0.0:9464",
                m.listen
            ),
        )
    })?;
    let b = &m.buckets;
    if b.min.0.is_zero() || b.min >= b.max {
        return Err(err(
            "metrics.buckets.min",
            "must be above zero and below metrics.buckets.max".into(),
        ));
    }
    if !(b.factor > 1.0 && b.factor <= 10.0) {
        return Err(err(
            "metrics.buckets.factor",
            format!("must be above 1 and at most 10, not {}", b.factor),
        ));
    }
    let mut buckets = Vec::new();
    let mut x = b.min.0.as_secs_f64();
    let max = b.max.0.as_secs_f64();
    while x < max * (1.0 + 1e-9) && buckets.len() < 64 {
        buckets.push(x);
        x *= b.factor;
    }
    if buckets.last().is_some_and(|&l| l < max) {
        buckets.push(x);
    }
    // The request timeout is a boundary, so "timed out" and "just made it" are told apart.
    let t = timeout.as_secs_f64();
    if !buckets.iter().any(|&x| (x - t).abs() < 1e-9) {
        buckets.push(t);
        buckets.sort_by(f64::total_cmp);
    }
    if !(1..=5).contains(&m.hdr_significant_digits) {
        return Err(err(
            "metrics.hdr_significant_digits",
            "must be between 1 and 5".into(),
        ));
    }
    Ok(MetricsPlan {
        listen,
        buckets,
        hdr_significant_digits: m.hdr_significant_digits,
    })
}

fn token(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    err: &Err,
) -> Result<Option<String>, SpecError> {
    let c = &spec.control;
    match (&c.token, &c.token_env) {
        (Some(_), Some(_)) => Err(err(
            "control.token_env",
            "set either control.token or control.token_env, not both".into(),
        )),
        (Some(t), None) if t.len() < 8 => {
            Err(err("control.token", "must be at least 8 characters".into()))
        }
        (Some(t), None) => Ok(Some(t.clone())),
        (None, Some(var)) => env(var).map(Some).ok_or_else(|| {
            err(
                "control.token_env",
                format!("environment variable `{var}` is not set"),
            )
        }),
        (None, None) => Ok(env("CQLPULSE_CONTROL_TOKEN").filter(|t| !t.is_empty())),
    }
}
