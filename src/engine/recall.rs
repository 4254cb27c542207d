//! The recall checker: a thread of its own, fed by the executor through a bounded channel.
//!
//! The executor decides from the op index alone whether an ANN query is sampled; for one that
//! is, it reads the keys of the rows returned and hands them over with `try_send`: the request
//! path never waits for the checker (a full queue drops the sample, counted). The checker
//! computes the exact top k among the rows written (below), within a CPU budget: when its
//! work so far exceeds `cpu` cores times the time since it started, it skips samples, and
//! counts them. Results go to the aggregator as [`Report::Recall`].
//!
//! **What counts as written** for a query of op index `q`: the writer's op indices below
//! `preloaded` (an ingest run before this one), and the writer's op indices below `q` that
//! [`Acked`] holds as acknowledged when the checker takes the sample (about a millisecond
//! after the answer, unless the checker is behind). Op indices are claimed in order, so a write
//! of a lower index was sent before the query; one still in flight when the query was sent and
//! acknowledged before the check counts as written (at most the in-flight writes of that
//! moment; none when ingest and queries are separate runs, as in the tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Acked;
use crate::data::{Generator, mix, unit};
use crate::plan::{Plan, RecallPlan};
use crate::recall::{knn, store};
use crate::stats::{RecallReport, Report};

/// Samples waiting for the checker; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;

/// How long the checker goes on with the samples queued when the run has ended; the rest are
/// skipped (counted with the queue's), so a slow check cannot hold the end of the run.
const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// One sampled ANN query: the keys of the rows the node returned, in order.
pub struct Job {
    pub op: usize,
    pub index: u64,
    pub keys: Vec<i64>,
}

/// What the executor holds: which ops sample, the writers' trackers, the checker's queue.
pub struct Probe {
    /// Per op: the share of queries checked (0 for an op without `[ops.recall]`).
    sample: Vec<f64>,
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
        let probe = Arc::new(Probe {
            sample: recall.iter().map(|r| r.map_or(0.0, |r| r.sample)).collect(),
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
            plan,
            acked,
            queue_full,
            reports,
            stores,
            started: Instant::now(),
            spent: Duration::ZERO,
            ended: Arc::new(AtomicBool::new(false)),
            ended_seen: None,
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
                (report.hits, report.expected) = self.check(&job);
                let took = t.elapsed();
                self.spent += took;
                report.checked = true;
                report.cpu_seconds = took.as_secs_f64();
            }
            if self.reports.blocking_send(Report::Recall(report)).is_err() {
                return;
            }
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

    /// (true neighbours returned, neighbours expected) for one sample.
    fn check(&mut self, job: &Job) -> (u32, u32) {
        let plan = &*self.plan;
        let Some(r) = plan.ops[job.op].recall.as_ref() else {
            return (0, 0);
        };
        let Some(store) = self.stores[job.op].as_mut() else {
            return (0, 0);
        };
        let written = Written::new(plan, r, self.acked[r.writer].as_deref(), job.index);
        let mut query = vec![0f32; r.dimension];
        let qg = &plan.generators[r.query];
        store::regenerate(qg, plan.seed, r.query as u64, job.index, &mut query);
        let vg = &plan.generators[r.vector];
        let candidates = written.indices();
        let scored: Vec<(f64, u64)> = candidates
            .map(|i| (knn::score(r.similarity, &query, store.get(vg, i)), i))
            .collect();
        let truth = knn::top_k(r.k, scored.into_iter());
        let mut seen = Vec::with_capacity(job.keys.len());
        let returned: Vec<Option<f64>> = job
            .keys
            .iter()
            .filter_map(|&key| u64::try_from(key.wrapping_sub(r.key_start)).ok())
            .filter(|i| {
                let new = !seen.contains(i);
                seen.push(*i);
                new
            })
            .map(|i| {
                written
                    .contains(i)
                    .then(|| knn::score(r.similarity, &query, store.get(vg, i)))
            })
            .collect();
        (knn::hits(&truth, &returned) as u32, truth.len() as u32)
    }
}

/// The rows a query of op index `query` searches (module header): preloaded or acknowledged
/// below `query`, with the query's filter value when it has a filter.
struct Written<'a> {
    plan: &'a Plan,
    recall: &'a RecallPlan,
    acked: Option<&'a Acked>,
    query: u64,
    filter: Option<(&'a Generator, crate::data::Datum)>,
}

impl<'a> Written<'a> {
    fn new(
        plan: &'a Plan,
        recall: &'a RecallPlan,
        acked: Option<&'a Acked>,
        query: u64,
    ) -> Written<'a> {
        let filter = recall.filter.map(|f| {
            let g = &*plan.generators[f];
            (g, g.datum(plan.seed, f as u64, query))
        });
        Written {
            plan,
            recall,
            acked,
            query,
            filter,
        }
    }

    fn passes(&self, i: u64) -> bool {
        match (&self.filter, self.recall.filter) {
            (Some((g, want)), Some(f)) => g.datum(self.plan.seed, f as u64, i) == *want,
            _ => true,
        }
    }

    fn contains(&self, i: u64) -> bool {
        let written = i < self.recall.preloaded
            || (i < self.query && self.acked.is_some_and(|a| a.contains(i)));
        written && self.passes(i)
    }

    /// Every written index, ascending, each once.
    fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        let preloaded = self.recall.preloaded;
        let acked = self
            .acked
            .into_iter()
            .flat_map(move |a| a.acknowledged_below(self.query))
            .filter(move |&i| i >= preloaded);
        (0..preloaded).chain(acked).filter(|&i| self.passes(i))
    }
}
