//! Session, schema and prepared statements.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use scylla::client::PoolSize;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::observability::history::HistoryListener;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::nodes::{NodeTracking, Tracking};
use super::refusal::{self, Verdict};
use super::row::{Arg, Marker, bind_args};
use super::verify::{VerifyRead, verify_read};
use crate::plan::{ClusterPlan, Plan};
use crate::spec::{BatchKind, SchemaMode};

/// One op, ready to execute: its prepared statement, and the batch that repeats it if the op
/// is batched.
pub struct PreparedOp {
    pub statement: PreparedStatement,
    pub batch: Option<Batch>,
    /// What each bind marker binds.
    pub args: Vec<Arg>,
    /// For a verified read: how it binds and compares its write's rows.
    pub verify: Option<VerifyRead>,
}

pub struct Prepared {
    pub ops: Vec<PreparedOp>,
}

/// Connects to the cluster. Retries are off in the driver: cqlpulse retries idempotent ops
/// itself, so that every retry is counted in `retries_total`. Routing is the driver's
/// default, made explicit: token-aware (each request to a replica of its partition), within
/// `local_dc` when one is set (no failover to other data centres), wrapped to learn each
/// request's node for the per-node views (`nodes`).
pub async fn connect(cluster: &ClusterPlan, tracking: &Tracking) -> Result<Session, ConnectError> {
    let mut lb = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &cluster.local_dc {
        lb = lb.prefer_datacenter(dc.clone()).permit_dc_failover(false);
    }
    let lb = NodeTracking::new(lb.build(), tracking.nodes.clone());
    let mut profile = ExecutionProfile::builder()
        .consistency(cluster.consistency)
        .serial_consistency(Some(cluster.serial_consistency))
        .request_timeout(Some(cluster.request_timeout))
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
        .load_balancing_policy(Arc::new(lb));
    if let Some(s) = &cluster.speculative_execution {
        // Only idempotent ops are sent twice: the driver checks the statement's flag.
        profile = profile.speculative_execution_policy(Some(Arc::new(
            SimpleSpeculativeExecutionPolicy {
                max_retry_count: s.max as usize,
                retry_interval: s.delay,
            },
        )));
    }
    let profile = profile.build();
    let per_shard =
        NonZeroUsize::new(cluster.connections_per_node as usize).unwrap_or(NonZeroUsize::MIN);
    let mut builder = SessionBuilder::new()
        .known_nodes(&cluster.contact_points)
        .connection_timeout(cluster.connect_timeout)
        .schema_agreement_timeout(cluster.schema_agreement_timeout)
        .pool_size(PoolSize::PerShard(per_shard))
        .default_execution_profile_handle(profile.into_handle());
    if let Some(login) = &cluster.credentials {
        builder = builder.user(&login.username, login.password());
    }
    if let Some(tls) = &cluster.tls {
        if !tls.verify_server_name {
            tracing::warn!(
                ca_file = %tls.ca_file,
                "cluster.tls.verify_server_name = false: node certificates are checked against \
                 the CA but not against the addresses they are reached at"
            );
        }
        builder = builder.tls_context(Some(tls.config.clone()));
    }
    match builder.build().await {
        Ok(session) => Ok(session),
        Err(e) => Err(connect_error(cluster, one_line(&e.to_string())).await),
    }
}

/// A failed connection. `refused`: the node answered and said no (a login or TLS problem),
/// which waiting will not fix; otherwise the node or the cluster is not ready yet (see
/// [`refusal`](super::refusal)). The message says which, and why when known.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    pub message: String,
    pub refused: bool,
}

/// The error for the driver's `reason`, asking the node itself when the text is ambiguous.
async fn connect_error(cluster: &ClusterPlan, reason: String) -> ConnectError {
    let target = connect_target(cluster);
    let verdict = refusal::classify(&reason, cluster.tls.is_some());
    let (refused, why) = match (verdict, &cluster.tls) {
        (Verdict::Refused(why), _) => (true, Some(why.to_string())),
        (Verdict::Wait(why), _) => (false, why.map(str::to_string)),
        (Verdict::DroppedOverTls, None) => (false, None),
        (Verdict::DroppedOverTls, Some(tls)) => {
            let (points, config) = (cluster.contact_points.clone(), tls.config.clone());
            let timeout = cluster.connect_timeout.min(Duration::from_secs(3));
            let alert =
                tokio::task::spawn_blocking(move || refusal::probe_tls(&points, config, timeout))
                    .await
                    .ok()
                    .flatten();
            match alert {
                Some(alert) => (
                    true,
                    Some(format!(
                        "refused: the node rejected the TLS session ({alert})"
                    )),
                ),
                None => (false, Some("the node dropped the connection".into())),
            }
        }
    };
    let message = match why {
        Some(why) => format!("{target}: {why}: {reason}"),
        None => format!("{target}: {reason}"),
    };
    ConnectError { message, refused }
}

/// Who we tried to reach, and how, for the one line a failed connection prints: the nodes,
/// the user (never the password) and the TLS trust root.
fn connect_target(cluster: &ClusterPlan) -> String {
    let mut out = format!("cannot connect to {}", cluster.contact_points.join(", "));
    if let Some(login) = &cluster.credentials {
        out.push_str(&format!(" as user `{}`", login.username));
    }
    match &cluster.tls {
        Some(tls) => out.push_str(&format!(" over TLS (CA {})", tls.ca_file)),
        None => out.push_str(" (plain text)"),
    }
    out
}

/// Driver errors can span lines (a node's reason per line): one line, for logs and stderr.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Creates (or recreates) the keyspace, runs the schema statements and makes the keyspace the
/// session's current one.
pub async fn setup_schema(session: &Session, plan: &Plan) -> Result<()> {
    let schema = &plan.schema;
    let ks = &schema.keyspace;
    if schema.mode == SchemaMode::Recreate {
        super::agreement::ddl(session, &format!("DROP KEYSPACE IF EXISTS {ks}"))
            .await
            .with_context(|| format!("schema.mode = recreate: cannot drop keyspace {ks}"))?;
    }
    if schema.mode != SchemaMode::Skip {
        let create = format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
            schema.replication
        );
        super::agreement::ddl(session, &create)
            .await
            .with_context(|| format!("cannot create keyspace {ks}"))?;
    }
    session
        .use_keyspace(ks.as_str(), false)
        .await
        .with_context(|| format!("cannot use keyspace {ks} (schema.keyspace)"))?;
    if schema.mode != SchemaMode::Skip {
        for (i, s) in schema.statements.iter().enumerate() {
            super::agreement::ddl(session, s)
                .await
                .with_context(|| format!("schema.statements[{i}] failed"))?;
        }
        super::agreement::wait(session)
            .await
            .context("schema agreement")?;
    }
    super::indexes::wait_queryable(session, ks).await
}

/// Prepares every op and checks that its generators can fill the columns it binds.
/// With speculative execution on, the ops' statements report the executions the driver starts
/// to `tracking`.
pub async fn prepare(session: &Session, plan: &Plan, tracking: &Tracking) -> Result<Prepared> {
    let speculative: Option<Arc<dyn HistoryListener>> = plan
        .cluster
        .speculative_execution
        .as_ref()
        .map(|_| tracking.speculative.clone() as Arc<dyn HistoryListener>);
    // The ops' timeouts are the engine's (one timer per lane, not one per request in the
    // driver: see `engine::request`), so their statements run without the driver's.
    let untimed = session
        .get_default_execution_profile_handle()
        .pointee_to_builder()
        .request_timeout(None)
        .build()
        .into_handle();
    // The time origin of default time generators: one for all ops, so they agree.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut ops = Vec::with_capacity(plan.ops.len());
    let mut all_markers = Vec::with_capacity(plan.ops.len());
    for (i, op) in plan.ops.iter().enumerate() {
        let mut statement = session
            .prepare(op.cql.as_str())
            .await
            .with_context(|| format!("ops[{i}] ({}): cannot prepare `{}`", op.name, op.cql))?;
        statement.set_consistency(op.consistency);
        statement.set_serial_consistency(Some(op.serial_consistency));
        statement.set_execution_profile_handle(Some(untimed.clone()));
        statement.set_is_idempotent(op.idempotent);
        if let Some(rows) = op.page_size {
            statement.set_page_size(rows as i32); // at most i32::MAX: checked by the plan
        }
        if let Some(l) = &speculative {
            statement.set_history_listener(l.clone());
        }
        let op_markers = markers(session, &statement);
        let args = bind_args(plan, i, &op_markers, now_ms).map_err(|m| anyhow!(m))?;
        all_markers.push(op_markers);
        let batch = op.batch.map(|(size, kind)| {
            let mut b = Batch::new(match kind {
                BatchKind::Logged => BatchType::Logged,
                BatchKind::Unlogged => BatchType::Unlogged,
                BatchKind::Counter => BatchType::Counter,
            });
            for _ in 0..size {
                b.append_statement(statement.clone());
            }
            b.set_consistency(op.consistency);
            b.set_serial_consistency(Some(op.serial_consistency));
            b.set_execution_profile_handle(Some(untimed.clone()));
            b.set_is_idempotent(op.idempotent);
            if let Some(l) = &speculative {
                b.set_history_listener(l.clone());
            }
            b
        });
        ops.push(PreparedOp {
            statement,
            batch,
            args,
            verify: None,
        });
    }
    bind_verified(plan, &mut ops, &all_markers)?;
    Ok(Prepared { ops })
}

/// Verified reads bind their write's generators: called once every write is prepared.
fn bind_verified(plan: &Plan, ops: &mut [PreparedOp], markers: &[Vec<Marker>]) -> Result<()> {
    for i in 0..ops.len() {
        let Some(w) = plan.ops[i].verify else {
            continue;
        };
        let (read, write) = (&ops[i], &ops[w]);
        let v = verify_read(
            plan,
            i,
            &read.statement,
            &markers[i],
            &markers[w],
            &write.args,
        )
        .map_err(|m| anyhow!(m))?;
        ops[i].verify = v;
    }
    Ok(())
}

/// The statement's bind markers, with their columns' schema types when the driver knows them.
fn markers(session: &Session, statement: &PreparedStatement) -> Vec<Marker> {
    let state = session.get_cluster_state();
    statement
        .get_variable_col_specs()
        .iter()
        .map(|c| Marker {
            name: c.name().to_string(),
            typ: c.typ().clone().into_owned(),
            schema_typ: state
                .get_keyspace(c.table_spec().ks_name())
                .and_then(|k| k.tables.get(c.table_spec().table_name()))
                .and_then(|t| t.columns.get(c.name()))
                .map(|col| col.typ.clone()),
        })
        .collect()
}
