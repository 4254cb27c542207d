//! The engine: the schedule, the five concurrency models ([`model`]: one place to learn them)
//! and the lanes that run them.
//!
//! It knows no HTTP and no Prometheus: control arrives through [`Control`] (a `watch` of
//! settings), results leave as lane reports to the stats aggregator.

pub mod acked;
mod control;
mod executor;
mod in_flight;
mod lane;
pub mod model;
pub mod recall;
mod recycled;
mod request;
mod schedule;
mod verify;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use acked::Acked;
pub use control::{Control, Refused, Settings};
pub use executor::{CqlExecutor, Done, Executor, Outcome};
pub use lane::{DROP_AFTER, choose};
pub use schedule::Schedule;

use crate::plan::{End, Plan};
use crate::stats::Report;
use lane::LaneShared;

/// Runs the plan's load until its op count or duration is reached, or `stop` is cancelled;
/// then drains in-flight requests for up to the drain timeout. Returns when every lane has
/// handed over its last report.
pub async fn run<E: Executor>(
    executor: Arc<E>,
    plan: Arc<Plan>,
    control: Arc<Control>,
    reports: mpsc::Sender<Report>,
    stop: CancellationToken,
) {
    if let Some(at) = plan.shard.start_at {
        // A start barrier shared by instances: wall-clock time, then a monotonic wait.
        if let Ok(wait) = at.duration_since(SystemTime::now()) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
    let start = Instant::now();
    control.start(start);
    let _ = reports
        .send(Report::Started {
            at: start,
            measure_from: start + plan.load.warmup,
        })
        .await;

    let issuing = stop.child_token();
    let ends_at = match plan.load.end {
        End::Duration(d) => start.checked_add(d),
        _ => None,
    };
    if let End::Duration(d) = plan.load.end {
        let issuing = issuing.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => issuing.cancel(),
                _ = issuing.cancelled() => {}
            }
        });
    }
    let lanes = match plan.load.lanes {
        0 => tokio::runtime::Handle::current().metrics().num_workers() as u32,
        n => n,
    }
    .max(1);
    let shared = Arc::new(LaneShared {
        executor,
        plan: plan.clone(),
        control: control.clone(),
        reports,
        stop: issuing.clone(),
        measure_from: start + plan.load.warmup,
        ends_at,
        lanes,
    });

    let mut set = JoinSet::new();
    for id in 0..lanes {
        set.spawn(lane::run(shared.clone(), id));
    }
    let mut draining = false;
    // When issuing stopped, and the due times of the ops the lanes claimed but never sent.
    let mut stopped_at = None;
    let mut held = Vec::new();
    loop {
        tokio::select! {
            // The stop first: lanes that finish draining must not hide when issuing stopped.
            biased;
            _ = issuing.cancelled(), if !draining => {
                draining = true;
                // The end of a duration is its exact time, however late this task sees it.
                stopped_at = Some(ends_at.unwrap_or_else(Instant::now).min(Instant::now()));
            }
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(Some(due))) => held.push(due),
                Some(_) => {}
            },
        }
    }
    // Every op the schedule had due before the end was sent, dropped, or is counted here.
    let end = stopped_at.unwrap_or_else(Instant::now);
    let limit = match plan.load.end {
        End::Ops(n) => n,
        _ => u64::MAX,
    };
    let ended = Report::Ended {
        scheduled: control.scheduled(end, limit),
        not_sent: control.not_sent(end, limit, &held),
    };
    let _ = shared.reports.send(ended).await;
}
