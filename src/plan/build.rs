//! Spec -> Plan: one check per rule, each error naming the field it is about. The cluster,
//! metrics and control sections are checked here; the workload (generators and ops) in
//! `workload.rs`, the load and the shard in `load.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use super::load::{load, shard_plan};
use super::ops::{self, CONSISTENCY_NAMES};
use super::shard::ShardEnv;
use super::workload::{generators, operations};
use super::*;
use crate::spec::{Source, Spec, SpecError};

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

/// Builds a located error about a field.
pub(super) type Err<'a> = dyn Fn(&str, String) -> SpecError + 'a;

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
        (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p)),
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
    let tls = match &c.tls {
        Some(t) => Some(TlsPlan {
            config: crate::cql::tls::client_config(t).map_err(|e| err(e.field, e.message))?,
            ca_file: t.ca_file.clone(),
            verify_server_name: t.verify_server_name,
        }),
        None => None,
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
        tls,
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
