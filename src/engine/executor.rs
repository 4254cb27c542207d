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

use super::acked::Acked;
use super::recall::{Job, Probe};
use super::verify::Verifier;
use crate::cql::{BoundRow, ErrorKind, Prepared, classify};
use crate::plan::{OpKind, Plan};
use crate::stats::Verdict;

/// What a request that succeeded did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Done {
    /// Rows returned (reads).
    pub rows: u64,
    /// Bytes of bound values sent.
    pub bytes: u64,
    /// Pages fetched (reads).
    pub pages: u32,
    /// What a verified read found.
    pub verdict: Verdict,
}

impl Done {
    /// A write that sent `bytes` of bound values.
    pub fn written(bytes: u64) -> Done {
        Done {
            rows: 0,
            bytes,
            pages: 0,
            verdict: Verdict::None,
        }
    }
}

pub type Outcome = Result<Done, ErrorKind>;

pub trait Executor: Send + Sync + 'static {
    /// Sends op `op` with the values of op index `index`, once (retries are the lane's).
    fn execute(&self, op: usize, index: u64) -> impl Future<Output = Outcome> + Send;

    /// The acknowledgements of op `op`, when a verified read reads it back: the lane records
    /// each of its op indices' final outcome there.
    fn acked(&self, _op: usize) -> Option<&Acked> {
        None
    }
}

pub struct CqlExecutor {
    pub plan: Arc<Plan>,
    pub session: Arc<Session>,
    pub prepared: Arc<Prepared>,
    /// Per op: its acknowledgements when a verified read reads it back.
    acked: Vec<Option<Arc<Acked>>>,
    /// Per op: how it verifies, for a verified read.
    verifiers: Vec<Option<Verifier>>,
    /// The recall checker's probe, when an op has `[ops.recall]`.
    recall: Option<Arc<Probe>>,
}

impl CqlExecutor {
    /// The executor of `plan`: `acked` is [`trackers`](super::acked::trackers) of the plan,
    /// shared with `recall`'s checker.
    pub fn new(
        plan: Arc<Plan>,
        session: Arc<Session>,
        prepared: Arc<Prepared>,
        acked: Vec<Option<Arc<Acked>>>,
        recall: Option<Arc<Probe>>,
    ) -> CqlExecutor {
        let verifiers = prepared
            .ops
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = p.verify.as_ref()?;
                let a = acked[v.write].clone()?;
                Some(Verifier::new(&plan, i, v.clone(), a))
            })
            .collect();
        CqlExecutor {
            plan,
            session,
            prepared,
            acked,
            verifiers,
            recall,
        }
    }
}

impl Executor for CqlExecutor {
    async fn execute(&self, op: usize, index: u64) -> Outcome {
        let plan = &*self.plan;
        let op_plan = &plan.ops[op];
        let prepared = &self.prepared.ops[op];
        match &prepared.batch {
            None if op_plan.kind == OpKind::Read => match &self.verifiers[op] {
                Some(v) => self.verified_read(v, &prepared.statement, index).await,
                None => {
                    let row = BoundRow::new(plan.seed, &prepared.args, index);
                    match &self.recall {
                        Some(p) if p.sampled(op, index) => {
                            // What was acknowledged before this query is sent: its truth.
                            let mark = p.mark(op);
                            let mut keys = Vec::new();
                            let mut collect = |r: &QueryRowsResult| first_column_keys(r, &mut keys);
                            let read = self.read_all_pages(&prepared.statement, &row, &mut collect);
                            let outcome = read.await;
                            if outcome.is_ok() {
                                p.submit(Job {
                                    op,
                                    index,
                                    mark,
                                    keys,
                                });
                            }
                            outcome
                        }
                        _ => {
                            let mut count = |_: &QueryRowsResult| {};
                            self.read_all_pages(&prepared.statement, &row, &mut count)
                                .await
                        }
                    }
                }
            },
            None => {
                let row = BoundRow::new(plan.seed, &prepared.args, index);
                // Not boxed: the lane puts this whole future in a heap block of its own
                // (see `engine::recycled`).
                let result = self
                    .session
                    .execute_unpaged(&prepared.statement, &row)
                    .await;
                let bytes = row.bytes.load(Ordering::Relaxed) as u64;
                result.map_err(|e| classify(&e))?;
                Ok(Done::written(bytes))
            }
            Some(batch) => {
                // Op index i of a batched op binds indices i*size .. i*size+size-1, so a
                // batched populate still writes each key exactly once.
                let size = op_plan.batch.map_or(1, |(s, _)| s as u64);
                let rows: Vec<BoundRow<'_>> = (0..size)
                    .map(|j| BoundRow::new(plan.seed, &prepared.args, index * size + j))
                    .collect();
                let result = self.session.batch(batch, &rows).await;
                let bytes: usize = rows.iter().map(|r| r.bytes.load(Ordering::Relaxed)).sum();
                result.map_err(|e| classify(&e))?;
                Ok(Done::written(bytes as u64))
            }
        }
    }

    fn acked(&self, op: usize) -> Option<&Acked> {
        self.acked[op].as_deref()
    }
}

impl CqlExecutor {
    /// A read, page after page until the last (each page of the op's page size): the rows and
    /// pages of all pages, and the bound values' bytes of every page request; `inspect` sees
    /// each page's rows. The lane's deadline and service time cover the whole read.
    async fn read_all_pages(
        &self,
        statement: &PreparedStatement,
        row: &BoundRow<'_>,
        inspect: &mut (dyn FnMut(&QueryRowsResult) + Send),
    ) -> Outcome {
        let (mut rows, mut bytes, mut pages) = (0u64, 0u64, 0u32);
        let mut paging = PagingState::start();
        loop {
            let page = self
                .session
                .execute_single_page(statement, row, paging)
                .await;
            bytes += row.bytes.load(Ordering::Relaxed) as u64;
            let (result, next) = page.map_err(|e| classify(&e))?;
            pages += 1;
            if let Ok(r) = result.into_rows_result() {
                rows += r.rows_num() as u64;
                inspect(&r);
            }
            match next.into_paging_control_flow() {
                ControlFlow::Break(()) => {
                    return Ok(Done {
                        rows,
                        bytes,
                        pages,
                        verdict: Verdict::None,
                    });
                }
                ControlFlow::Continue(state) => paging = state,
            }
        }
    }

    /// A verified read: a row its write had acknowledged before now, read back and compared.
    async fn verified_read(
        &self,
        v: &Verifier,
        statement: &PreparedStatement,
        index: u64,
    ) -> Outcome {
        let seed = self.plan.seed;
        let Some(target) = v.target(seed, index) else {
            return Ok(Done {
                verdict: Verdict::Skipped,
                ..Done::written(0)
            });
        };
        let row = BoundRow::new(seed, v.key(), target.row);
        let mut check = v.check(seed, target);
        let mut inspect = |r: &QueryRowsResult| check.page(r);
        let done = self.read_all_pages(statement, &row, &mut inspect).await?;
        let verdict = check.verdict();
        if verdict != Verdict::Ok {
            v.report(seed, target, verdict, check.first_bad());
        }
        Ok(Done { verdict, ..done })
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
