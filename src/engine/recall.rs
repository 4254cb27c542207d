//! The recall checker: a thread of its own, fed by the executor through a bounded channel.
//!
//! The executor decides from the op index alone whether an ANN query is sampled; for one that
//! is, it reads the keys of the rows returned and hands them over with `try_send`: the request
//! path never waits for the checker (a full queue drops the sample, counted). The checker
//! computes the exact top k among the rows written (below), within a CPU budget: when its
//! work so far exceeds `cpu` cores times the time since it started, it skips samples, and
//! counts them. Results go to the aggregator as [`Report::Recall`].
//!
//! **What counts as written** for a query (the ground truth): the writer's op indices below
//! `preloaded` (an ingest run before this one), and the writes [`Acked`] had recorded as
//! acknowledged when the query was *sent*: the query's lane takes the writer's order-log
//! length ([`Acked::mark`], one atomic load) before sending, and the checker reads those
//! acknowledgements back later. A write acknowledged after that is not part of the truth,
//! whenever the check runs, so the truth does not depend on the checker's timing.
//!
//! **Rows in flight** when the query was sent may or may not be in the node's answer. A
//! returned row that is not written (above) but is one of the writer's op indices (at or above
//! `preloaded`, claimed by this instance before the check, and the writer by the op choice of
//! the weights the run started with: a reload that changes them is not followed) is
//! *uncertain*: neither a hit nor a miss, and it takes its place from the answer: with `u`
//! uncertain rows among the returned, the query is judged on its other `k - u` rows, against
//! the true `k - u` nearest written rows. Any other returned row (a key this run never writes,
//! or a row that fails the filter) is a miss. So a query's recall is
//! `hits / min(k - u, rows written)`, hits being the written returned rows at least as near as
//! the (k - u)-th true neighbour.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::control::cumulative_weights;
use super::{Acked, Control, choose};
use crate::data::{Generator, mix, unit};
use crate::plan::{Plan, RecallPlan};
use crate::recall::log::{Checked, RecallLog};
use crate::recall::{knn, store};
use crate::stats::{RecallReport, Report};

/// Samples waiting for the checker; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;

/// How long the checker goes on with the samples queued when the run has ended; the rest are
/// skipped (counted with the queue's), so a slow check cannot hold the end of the run.
const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// One sampled ANN query: the writer's [`Acked::mark`] taken before it was sent, and the keys
/// of the rows the node returned, in order.
pub struct Job {
    pub op: usize,
    pub index: u64,
    pub mark: u64,
    pub keys: Vec<i64>,
}

/// What the executor holds: which ops sample, the writers' trackers, the checker's queue.
pub struct Probe {
    /// Per op: the share of queries checked (0 for an op without `[ops.recall]`).
    sample: Vec<f64>,
    /// Per op: the tracker of the write its queries search.
    writers: Vec<Option<Arc<Acked>>>,
    jobs: SyncSender<Job>,
    /// Per op: samples dropped because the queue was full (handed to the checker's reports).
    queue_full: Arc<[AtomicU64]>,
    /// Set when the probe is dropped: the run has ended (see [`FINISH_WITHIN`]).
    ended: Arc<AtomicBool>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::Relaxed);
    }
}

impl Probe {
    /// A probe and its checker thread for a plan with `[ops.recall]`; `None` without one.
    pub fn start(
        plan: &Arc<Plan>,
        acked: &[Option<Arc<Acked>>],
        reports: mpsc::Sender<Report>,
        control: &Control,
        log: Option<RecallLog>,
    ) -> Option<(Arc<Probe>, JoinHandle<()>)> {
        let recall: Vec<Option<&RecallPlan>> = plan.ops.iter().map(|o| o.recall.as_ref()).collect();
        if recall.iter().all(Option::is_none) {
            return None;
        }
        let (jobs, rx) = sync_channel(QUEUE);
        let queue_full: Arc<[AtomicU64]> = plan.ops.iter().map(|_| AtomicU64::new(0)).collect();
        // The checker holds no sender of its queue: it ends when the executor is gone.
        let ended = Arc::new(AtomicBool::new(false));
        let mut checker = Checker::new(plan.clone(), acked.to_vec(), queue_full.clone(), reports);
        checker.ended = ended.clone();
        checker.log = log;
        checker.claimed = control.next_op.clone();
        let probe = Arc::new(Probe {
            sample: recall.iter().map(|r| r.map_or(0.0, |r| r.sample)).collect(),
            writers: recall
                .iter()
                .map(|r| r.and_then(|r| acked[r.writer].clone()))
                .collect(),
            jobs,
            queue_full,
            ended,
        });
        let thread = std::thread::Builder::new()
            .name("cqlpulse-recall".into())
            .spawn(move || checker.run(rx))
            .ok()?;
        Some((probe, thread))
    }

    /// Whether the query of op `op` at `index` is checked: a pure function of the index.
    #[inline]
    pub fn sampled(&self, op: usize, index: u64) -> bool {
        let share = self.sample[op];
        share > 0.0 && (share >= 1.0 || unit(mix(index ^ 0x6A09_E667_F3BC_C908)) < share)
    }

    /// What op `op`'s writer had acknowledged so far, for a sampled query about to be sent.
    #[inline]
    pub fn mark(&self, op: usize) -> u64 {
        self.writers[op].as_ref().map_or(0, |a| a.mark())
    }

    /// Hands a sample to the checker without waiting; a full queue drops it, counted.
    pub fn submit(&self, job: Job) {
        let op = job.op;
        if let Err(TrySendError::Full(_)) = self.jobs.try_send(job) {
            self.queue_full[op].fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Checker {
    plan: Arc<Plan>,
    acked: Vec<Option<Arc<Acked>>>,
    queue_full: Arc<[AtomicU64]>,
    reports: mpsc::Sender<Report>,
    /// Per op with `[ops.recall]`: the stored vectors regenerated so far.
    stores: Vec<Option<store::Store>>,
    started: Instant,
    /// Time spent checking, against the budget.
    spent: Duration,
    /// Set when the run has ended, and when the checker first saw it.
    ended: Arc<AtomicBool>,
    ended_seen: Option<Instant>,
    /// The run's op choice and the op numbers claimed so far, for telling a writer's row in
    /// flight from any other row.
    weights: Arc<[f64]>,
    claimed: Arc<AtomicU64>,
    /// The recall log, when asked for, and per op how many of its writer's
    /// acknowledgements it holds.
    log: Option<RecallLog>,
    logged: Vec<u64>,
}

impl Checker {
    fn new(
        plan: Arc<Plan>,
        acked: Vec<Option<Arc<Acked>>>,
        queue_full: Arc<[AtomicU64]>,
        reports: mpsc::Sender<Report>,
    ) -> Checker {
        let stores = plan
            .ops
            .iter()
            .map(|o| {
                let r = o.recall.as_ref()?;
                Some(store::Store::new(plan.seed, r.vector as u64, r.dimension))
            })
            .collect();
        Checker {
            acked,
            queue_full,
            reports,
            stores,
            started: Instant::now(),
            spent: Duration::ZERO,
            ended: Arc::new(AtomicBool::new(false)),
            ended_seen: None,
            weights: cumulative_weights(&plan.ops),
            claimed: Arc::new(AtomicU64::new(u64::MAX)),
            log: None,
            logged: vec![0; plan.ops.len()],
            plan,
        }
    }

    /// Checks samples until the executor (every sender) is gone.
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            let op = job.op;
            let mut report = RecallReport {
                op,
                hits: 0,
                expected: 0,
                checked: false,
                skipped_budget: 0,
                skipped_queue: self.queue_full[op].swap(0, Ordering::Relaxed),
                cpu_seconds: 0.0,
            };
            if self.finishing() {
                report.skipped_queue += 1;
            } else if self.over_budget(op) {
                report.skipped_budget = 1;
            } else {
                let t = Instant::now();
                let verdict = self.check(&job);
                let took = t.elapsed();
                self.spent += took;
                (report.hits, report.expected) = (verdict.hits, verdict.expected);
                report.checked = true;
                report.cpu_seconds = took.as_secs_f64();
                self.log(&job, &verdict);
            }
            if self.reports.blocking_send(Report::Recall(report)).is_err() {
                return;
            }
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
        // Samples dropped after the last one taken.
        for (op, n) in self.queue_full.iter().enumerate() {
            let skipped_queue = n.swap(0, Ordering::Relaxed);
            if skipped_queue > 0 {
                let _ = self.reports.blocking_send(Report::Recall(RecallReport {
                    op,
                    hits: 0,
                    expected: 0,
                    checked: false,
                    skipped_budget: 0,
                    skipped_queue,
                    cpu_seconds: 0.0,
                }));
            }
        }
    }

    /// Whether the run ended more than [`FINISH_WITHIN`] ago: queued samples are skipped.
    fn finishing(&mut self) -> bool {
        if !self.ended.load(Ordering::Relaxed) {
            return false;
        }
        let seen = *self.ended_seen.get_or_insert_with(Instant::now);
        seen.elapsed() > FINISH_WITHIN
    }

    /// Whether checking more now would exceed `cpu` cores since the checker started.
    fn over_budget(&self, op: usize) -> bool {
        let cpu = self.plan.ops[op].recall.as_ref().map_or(0.0, |r| r.cpu);
        self.spent.as_secs_f64() > cpu * self.started.elapsed().as_secs_f64()
    }

    /// One sample's verdict against the truth of its send (module header).
    fn check(&mut self, job: &Job) -> Verdict {
        let plan = &*self.plan;
        let (Some(r), Some(store)) = (
            plan.ops[job.op].recall.as_ref(),
            self.stores[job.op].as_mut(),
        ) else {
            return Verdict::default();
        };
        let written = Written::new(plan, r, self.acked[r.writer].as_deref(), job);
        let mut query = vec![0f32; r.dimension];
        let qg = &plan.generators[r.query];
        store::regenerate(qg, plan.seed, r.query as u64, job.index, &mut query);
        let vg = &plan.generators[r.vector];
        // The distinct returned rows' op indices, each with its score once found written (a
        // key below the sequence's start is no row of the writer's: a miss).
        let mut returned: Vec<(u64, Option<f64>)> = Vec::with_capacity(job.keys.len());
        for i in job
            .keys
            .iter()
            .filter_map(|&key| u64::try_from(key.wrapping_sub(r.key_start)).ok())
        {
            if !returned.iter().any(|&(j, _)| j == i) {
                returned.push((i, None));
            }
        }
        let scored = written.indices().map(|i| {
            let s = knn::score(r.similarity, &query, store.get(vg, i));
            if let Some(row) = returned.iter_mut().find(|(j, _)| *j == i) {
                row.1 = Some(s);
            }
            (s, i)
        });
        let mut truth = knn::top_k(r.k, scored);
        // Claimed after the answer came: every write the node could have returned is below.
        let claimed = self.claimed.load(Ordering::Relaxed);
        let uncertain = returned
            .iter()
            .filter(|&&(i, s)| s.is_none() && written.in_flight(i, claimed, &self.weights))
            .count();
        truth.truncate(r.k.saturating_sub(uncertain));
        let scores: Vec<Option<f64>> = returned.iter().map(|&(_, s)| s).collect();
        Verdict {
            hits: knn::hits(&truth, &scores) as u32,
            expected: truth.len() as u32,
            uncertain: uncertain as u32,
        }
    }

    /// Writes a checked query to the recall log, after the acknowledgements it counted that
    /// the log does not hold yet.
    fn log(&mut self, job: &Job, v: &Verdict) {
        let (Some(log), Some(r)) = (self.log.as_mut(), self.plan.ops[job.op].recall.as_ref())
        else {
            return;
        };
        let writer = &self.plan.ops[r.writer].name;
        let from = self.logged[r.writer];
        if let Some(acked) = self.acked[r.writer].as_deref()
            && job.mark > from
        {
            let new: Vec<u64> = acked.acknowledgements(from..job.mark).collect();
            log.acknowledged(writer, from, &new);
            self.logged[r.writer] = job.mark;
        }
        log.checked(&Checked {
            op: &self.plan.ops[job.op].name,
            index: job.index,
            mark: job.mark,
            returned: &job.keys,
            uncertain: v.uncertain,
            hits: v.hits,
            expected: v.expected,
        });
    }
}

/// What one check found: true neighbours returned of those expected, and the returned rows
/// left out as in flight.
#[derive(Debug, Default, PartialEq)]
struct Verdict {
    hits: u32,
    expected: u32,
    uncertain: u32,
}

/// The rows a query searches (module header): preloaded, or acknowledged before it was sent
/// (the first `mark` of the writer's order log), with the query's filter value when it has a
/// filter.
struct Written<'a> {
    plan: &'a Plan,
    recall: &'a RecallPlan,
    acked: Option<&'a Acked>,
    mark: u64,
    filter: Option<(&'a Generator, crate::data::Datum)>,
}

impl<'a> Written<'a> {
    fn new(
        plan: &'a Plan,
        recall: &'a RecallPlan,
        acked: Option<&'a Acked>,
        job: &Job,
    ) -> Written<'a> {
        let filter = recall.filter.map(|f| {
            let g = &*plan.generators[f];
            (g, g.datum(plan.seed, f as u64, job.index))
        });
        Written {
            plan,
            recall,
            acked,
            mark: job.mark,
            filter,
        }
    }

    fn passes(&self, i: u64) -> bool {
        match (&self.filter, self.recall.filter) {
            (Some((g, want)), Some(f)) => g.datum(self.plan.seed, f as u64, i) == *want,
            _ => true,
        }
    }

    /// Whether a returned row that is not written is the writer's, in flight when the query
    /// was sent (or sent after it): an op index at or above `preloaded` that this instance
    /// had claimed (op number below `claimed`) and whose op the run's op choice made the
    /// writer, with the query's filter value.
    fn in_flight(&self, i: u64, claimed: u64, weights: &[f64]) -> bool {
        i >= self.recall.preloaded
            && self
                .plan
                .load
                .index_map
                .position(i)
                .is_some_and(|k| k < claimed)
            && choose(weights, self.plan.seed, i) == self.recall.writer
            && self.passes(i)
    }

    /// Every written index, each once: the preloaded ones, then the acknowledged ones in the
    /// order recorded.
    fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        let preloaded = self.recall.preloaded;
        let acked = self
            .acked
            .into_iter()
            .flat_map(move |a| a.acknowledgements(0..self.mark))
            .filter(move |&i| i >= preloaded);
        (0..preloaded).chain(acked).filter(|&i| self.passes(i))
    }
}

#[cfg(test)]
#[path = "recall_tests.rs"]
mod tests;
