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
use crate::spec::{BucketSpec, ClusterSpec, Secret, Source, Spec, SpecError};

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
    let mut ops = operations(spec, &cluster, &by_name, &generators, &err)?;
    super::recall::resolve(spec, &mut ops, &generators, &by_name, &err)?;
    let shard = shard_plan(spec, shard_env, &err)?;
    let load = load(&spec.load, &shard, &err)?;
    let metrics = metrics(spec, cluster.request_timeout, &err)?;
    let control_token = token(spec, env, &err)?;
    // Published without authentication, so no function of a secret: the spec serialises its
    // secrets as a placeholder (`spec::Secret`), and a password change is not a workload change.
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

fn cluster(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    err: &ErrorAt,
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
    check_timeouts(c, err)?;
    let speculative_execution = speculative(c, err)?;
    let credentials = credentials(c, env, err)?;
    let tls = match &c.tls {
        Some(t) => Some(TlsPlan {
            config: super::tls::client_config(t).map_err(|e| err(e.field, e.message))?,
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
        speculative_execution,
        tls,
        forget_nodes_after: c.forget_nodes_after.0,
        schema_agreement_timeout: c.schema_agreement_timeout.0,
    })
}

/// The timeouts (a node's slot outlives any request waiting on it) and the pool size.
fn check_timeouts(c: &ClusterSpec, err: &ErrorAt) -> Result<(), SpecError> {
    if c.request_timeout.0.is_zero() {
        return Err(err(
            "cluster.request_timeout",
            "must be greater than zero".into(),
        ));
    }
    if c.forget_nodes_after.0 <= c.request_timeout.0 {
        return Err(err(
            "cluster.forget_nodes_after",
            format!(
                "must be longer than cluster.request_timeout ({}): a node's slot must not go to \
                 another while a request may still wait on it",
                humantime::format_duration(c.request_timeout.0)
            ),
        ));
    }
    if c.schema_agreement_timeout.0.is_zero() {
        return Err(err(
            "cluster.schema_agreement_timeout",
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
    Ok(())
}

fn speculative(c: &ClusterSpec, err: &ErrorAt) -> Result<Option<Speculative>, SpecError> {
    Ok(match &c.speculative_execution {
        None => None,
        Some(s) if s.delay.0.is_zero() => {
            return Err(err(
                "cluster.speculative_execution.delay",
                "must be greater than zero".into(),
            ));
        }
        Some(s) if s.max == 0 || s.max > 10 => {
            return Err(err(
                "cluster.speculative_execution.max",
                format!("must be 1 to 10 extra attempts, not {}", s.max),
            ));
        }
        Some(s) => Some(Speculative {
            max: s.max,
            delay: s.delay.0,
        }),
    })
}

/// The login: a username with a password written in the spec or taken from the environment.
fn credentials(
    c: &ClusterSpec,
    env: &dyn Fn(&str) -> Option<String>,
    err: &ErrorAt,
) -> Result<Option<Credentials>, SpecError> {
    let password = match (&c.password, &c.password_env) {
        (Some(_), Some(_)) => {
            return Err(err(
                "cluster.password_env",
                "set either cluster.password or cluster.password_env, not both".into(),
            ));
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(var)) => Some(env(var).map(Secret::new).ok_or_else(|| {
            err(
                "cluster.password_env",
                format!("environment variable `{var}` is not set"),
            )
        })?),
        (None, None) => None,
    };
    Ok(match (&c.username, password) {
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
    })
}

fn check_schema(spec: &Spec, err: &ErrorAt) -> Result<(), SpecError> {
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

fn metrics(spec: &Spec, timeout: Duration, err: &ErrorAt) -> Result<MetricsPlan, SpecError> {
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
    let buckets = buckets(&m.buckets, timeout, err)?;
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

/// The classic bucket bounds, in seconds: finite, positive, strictly increasing, at least 2
/// and at most [`MAX_BUCKETS`] (each bound is one series per histogram).
fn buckets(b: &BucketSpec, timeout: Duration, err: &ErrorAt) -> Result<Vec<f64>, SpecError> {
    let buckets = match b {
        BucketSpec::Bounds(bounds) => {
            for (i, &x) in bounds.iter().enumerate() {
                let field = format!("metrics.buckets[{i}]");
                if !x.is_finite() || x <= 0.0 {
                    return Err(err(
                        &field,
                        format!("must be a finite number of seconds above zero, not {x}"),
                    ));
                }
                if i > 0 && x <= bounds[i - 1] {
                    return Err(err(
                        &field,
                        format!("bounds must increase: {x} follows {}", bounds[i - 1]),
                    ));
                }
            }
            if bounds.len() < 2 {
                return Err(err(
                    "metrics.buckets",
                    format!("needs at least 2 bounds, not {}", bounds.len()),
                ));
            }
            // An explicit list is the operator's exact layout: nothing is added to it.
            bounds.clone()
        }
        BucketSpec::Exponential(b) => {
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
            let (min, max) = (b.min.0.as_secs_f64(), b.max.0.as_secs_f64());
            // Counted before building, so a factor of 1.0000001 cannot allocate millions.
            let n = ((max / min).ln() / b.factor.ln() - 1e-9).ceil() as usize + 1;
            if n > MAX_BUCKETS {
                return Err(err(
                    "metrics.buckets.factor",
                    format!(
                        "{} from {} to {} gives {n} buckets, over the limit of {MAX_BUCKETS}: \
                         raise the factor or narrow the range",
                        b.factor, b.min, b.max
                    ),
                ));
            }
            // Three significant digits keep the `le` labels readable (0.000132, not
            // 0.00013225000000000002) and move a bound by at most 0.5%.
            let mut buckets: Vec<f64> = (0..n)
                .map(|i| significant(min * b.factor.powi(i as i32), 3))
                .collect();
            buckets.dedup();
            // The request timeout is a boundary, so "timed out" and "just made it" are told
            // apart.
            let t = timeout.as_secs_f64();
            if !buckets.iter().any(|&x| (x - t).abs() < 1e-9) {
                buckets.push(t);
                buckets.sort_by(f64::total_cmp);
            }
            buckets
        }
    };
    if buckets.len() > MAX_BUCKETS {
        return Err(err(
            "metrics.buckets",
            format!(
                "{} bounds, over the limit of {MAX_BUCKETS} (each is a series per histogram)",
                buckets.len()
            ),
        ));
    }
    Ok(buckets)
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits - 1 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

fn token(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    err: &ErrorAt,
) -> Result<Option<Secret>, SpecError> {
    let c = &spec.control;
    match (&c.token, &c.token_env) {
        (Some(_), Some(_)) => Err(err(
            "control.token_env",
            "set either control.token or control.token_env, not both".into(),
        )),
        (Some(t), None) if t.expose().len() < 8 => {
            Err(err("control.token", "must be at least 8 characters".into()))
        }
        (Some(t), None) => Ok(Some(t.clone())),
        (None, Some(var)) => env(var).map(|t| Some(Secret::new(t))).ok_or_else(|| {
            err(
                "control.token_env",
                format!("environment variable `{var}` is not set"),
            )
        }),
        (None, None) => Ok(env("CQLPULSE_CONTROL_TOKEN")
            .filter(|t| !t.is_empty())
            .map(Secret::new)),
    }
}
