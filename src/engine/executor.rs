//! How a lane sends one op. The trait lets scheduling logic be unit-tested against a fake;
//! [`CqlExecutor`] is the real thing, through the `scylla` driver.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::ops::ControlFlow;

use scylla::client::session::Session;
use scylla::response::PagingState;
use scylla::statement::prepared::PreparedStatement;

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
}

impl Executor for CqlExecutor {
    async fn execute(&self, op: usize, index: u64) -> Outcome {
        let plan = &*self.plan;
        let op_plan = &plan.ops[op];
        let prepared = &self.prepared.ops[op];
        match &prepared.batch {
            None if op_plan.kind == OpKind::Read => {
                let row = BoundRow::new(plan.seed, &prepared.args, index);
                self.read_all_pages(&prepared.statement, &row).await
            }
            None => {
                let row = BoundRow::new(plan.seed, &prepared.args, index);
                // Boxed: the driver's future is large, and unboxed it is copied into every
                // in-flight slot (A/B measured in BENCHMARKS.md).
                let result =
                    Box::pin(self.session.execute_unpaged(&prepared.statement, &row)).await;
                let bytes = row.bytes.load(Ordering::Relaxed) as u64;
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
    /// service time cover the whole read.
    async fn read_all_pages(&self, statement: &PreparedStatement, row: &BoundRow<'_>) -> Outcome {
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut paging = PagingState::start();
        loop {
            // Boxed, as the unpaged request (see `execute`).
            let page = Box::pin(self.session.execute_single_page(statement, row, paging)).await;
            bytes += row.bytes.load(Ordering::Relaxed) as u64;
            let (result, next) = page.map_err(|e| classify(&e))?;
            rows += result.into_rows_result().map_or(0, |r| r.rows_num() as u64);
            match next.into_paging_control_flow() {
                ControlFlow::Break(()) => return Ok((rows, bytes)),
                ControlFlow::Continue(state) => paging = state,
            }
        }
    }
}
