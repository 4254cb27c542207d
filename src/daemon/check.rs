//! `cqlpulse check`: what a spec would run, and with `--connect` whether the cluster takes
//! it (connect, create the missing schema, prepare every op). Shared by the binary and the
//! tests, so both check the same way.

use crate::cql;
use crate::plan::{End, Plan};
use crate::spec::SchemaMode;

/// Why `check --connect` failed, step by step.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Names the nodes, the user and the TLS trust root (never the password).
    #[error(transparent)]
    Connect(#[from] cql::ConnectError),
    #[error("cannot create the schema: {0:#}")]
    Schema(anyhow::Error),
    #[error("{0:#}")]
    Prepare(anyhow::Error),
}

/// One line saying what the plan runs: its name, ops, model and knob, and how long.
pub fn describe(plan: &Plan) -> String {
    format!(
        "workload `{}`, {} op(s), model {} ({} = {}), {}",
        plan.name,
        plan.ops.len(),
        plan.load.model.name(),
        plan.load.model.knob(),
        plan.load.concurrency,
        match plan.load.end {
            End::Ops(n) => format!("{n} ops"),
            End::Duration(d) => format!("for {}", humantime::format_duration(d)),
            End::Forever => "until stopped".to_string(),
        }
    )
}

/// Connects, creates the missing schema and prepares every op (checking that its generators
/// can fill the columns). Never drops anything: `schema.mode = "recreate"` is checked as
/// `create_if_missing`.
pub async fn connect(plan: &Plan) -> Result<(), CheckError> {
    let mut plan = plan.clone();
    if plan.schema.mode == SchemaMode::Recreate {
        plan.schema.mode = SchemaMode::CreateIfMissing;
    }
    let tracking = cql::Tracking::default();
    let session = cql::connect(&plan.cluster, &tracking).await?;
    cql::setup_schema(&session, &plan)
        .await
        .map_err(CheckError::Schema)?;
    cql::prepare(&session, &plan, &tracking)
        .await
        .map_err(CheckError::Prepare)?;
    Ok(())
}
