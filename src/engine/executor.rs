//! How a lane sends one op. The trait lets scheduling logic be unit-tested against a fake;
//! [`CqlExecutor`] is the real thing, through the `scylla` driver.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::ops::ControlFlow;

use scylla::client::session::Session;
use scylla::response::PagingState;
use scylla::response::query_result::QueryRowsResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use super::recall::{Job, Probe};
use crate::cql::{BoundRow, ErrorKind, Prepared, classify};
use crate::plan::{OpKind, Plan};

/// Rows returned and bytes of bound values sent.
pub type Outcome = Result<(u64, u64), ErrorKind>;

pub trait Executor: Send + Sync + 'static {
    /// Sends op `op` with the values of op index `index`, once (retries are the lane's).
    fn execute(&self, op: usize, index: u64) -> impl Future<Output = Outcome> + Send;
}

pub struct CqlExecutor {
    pub plan: Arc<Plan>,
    pub session: Arc<Session>,
    pub prepared: Arc<Prepared>,
    /// The recall checker's probe, when an op has `[ops.recall]`.
    pub recall: Option<Arc<Probe>>,
}

impl Executor for CqlExecutor {
    async fn execute(&self, op: usize, index: u64) -> Outcome {
        let plan = &*self.plan;
        let op_plan = &plan.ops[op];
        let prepared = &self.prepared.ops[op];
        match &prepared.batch {
            None if op_plan.kind == OpKind::Read => {
                let row = BoundRow::new(plan.seed, &prepared.args, index);
                match &self.recall {
                    Some(p) if p.sampled(op, index) => {
                        let mut keys = Vec::new();
                        let read = self.read_all_pages(&prepared.statement, &row, Some(&mut keys));
                        let outcome = read.await;
                        if outcome.is_ok() {
                            p.submit(Job { op, index, keys });
                        }
                        outcome
                    }
                    _ => self.read_all_pages(&prepared.statement, &row, None).await,
                }
            }
            None => {
                let row = BoundRow::new(plan.seed, &prepared.args, index);
                // Boxed: the driver's future is large, and unboxed it is copied into every
                // in-flight slot (A/B measured in BENCHMARKS.md).
                let result =
                    Box::pin(self.session.execute_unpaged(&prepared.statement, &row)).await;
                let bytes = row.bytes.load(Ordering::Relaxed) as u64;
                if let Some(acked) = self.recall.as_ref().and_then(|p| p.acked(op)) {
                    // Final: a success is never retried, and a failure is retried as the
                    // same index (recorded when it succeeds).
                    if result.is_ok() {
                        acked.record(index, true);
                    }
                }
                result.map_err(|e| classify(&e))?;
                Ok((0, bytes))
            }
            Some(batch) => {
                // Op index i of a batched op binds indices i*size .. i*size+size-1, so a
                // batched populate still writes each key exactly once.
                let size = op_plan.batch.map_or(1, |(s, _)| s as u64);
                let rows: Vec<BoundRow<'_>> = (0..size)
                    .map(|j| BoundRow::new(plan.seed, &prepared.args, index * size + j))
                    .collect();
                let result = Box::pin(self.session.batch(batch, &rows)).await;
                let bytes: usize = rows.iter().map(|r| r.bytes.load(Ordering::Relaxed)).sum();
                result.map_err(|e| classify(&e))?;
                Ok((0, bytes as u64))
            }
        }
    }
}

impl CqlExecutor {
    /// A read, page after page until the last (each page of the op's page size): the rows of
    /// all pages, and the bound values' bytes of every page request. The lane's deadline and
    /// service time cover the whole read. With `keys` (a sampled ANN query), the first column
    /// of each row, an integer key, is collected for the recall checker.
    async fn read_all_pages(
        &self,
        statement: &PreparedStatement,
        row: &BoundRow<'_>,
        mut keys: Option<&mut Vec<i64>>,
    ) -> Outcome {
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut paging = PagingState::start();
        loop {
            // Boxed, as the unpaged request (see `execute`).
            let page = Box::pin(self.session.execute_single_page(statement, row, paging)).await;
            bytes += row.bytes.load(Ordering::Relaxed) as u64;
            let (result, next) = page.map_err(|e| classify(&e))?;
            let result = result.into_rows_result().ok();
            rows += result.as_ref().map_or(0, |r| r.rows_num() as u64);
            if let (Some(keys), Some(r)) = (keys.as_deref_mut(), &result) {
                first_column_keys(r, keys);
            }
            match next.into_paging_control_flow() {
                ControlFlow::Break(()) => return Ok((rows, bytes)),
                ControlFlow::Continue(state) => paging = state,
            }
        }
    }
}

/// The first column of each row as an integer (a key a `sequence` generator wrote); rows
/// whose first column is not an integer are left out (the checker counts them as misses).
fn first_column_keys(result: &QueryRowsResult, keys: &mut Vec<i64>) {
    let Ok(rows) = result.rows::<Row>() else {
        return;
    };
    for row in rows.flatten() {
        match row.columns.first() {
            Some(Some(CqlValue::BigInt(k))) => keys.push(*k),
            Some(Some(CqlValue::Int(k))) => keys.push(i64::from(*k)),
            Some(Some(CqlValue::SmallInt(k))) => keys.push(i64::from(*k)),
            _ => {}
        }
    }
}
