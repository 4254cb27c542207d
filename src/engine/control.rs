//! Live control of a running engine: pause, resume, rate, concurrency and reloaded weights.
//! Changes travel to the lanes through a `watch` channel; a lane looks at it between requests
//! (an atomic load when nothing changed), never on every clock tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

use tokio::sync::watch;

use super::model;
use super::schedule::Schedule;
use crate::plan::{LoadPlan, Model, OpPlan, Stage};

/// What the lanes obey. Replaced as a whole on every change.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Since when the run has been paused (and its schedule held); `None` while running.
    pub paused_at: Option<Instant>,
    pub schedule: Arc<Schedule>,
    /// The model's knob (workers, batch size, window, chains or the in-flight cap).
    pub concurrency: u32,
    pub max_in_flight: u32,
    /// Cumulative op weights, for choosing an op by binary search.
    pub weights: Arc<[f64]>,
}

impl Settings {
    pub fn paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// The in-flight limit that results (see [`model::in_flight_limit`]).
    pub fn in_flight_limit(&self, model: Model) -> u32 {
        model::in_flight_limit(model, self.concurrency, self.max_in_flight)
    }
}

pub fn cumulative_weights(ops: &[OpPlan]) -> Arc<[f64]> {
    ops.iter()
        .scan(0.0, |acc, o| {
            *acc += o.weight;
            Some(*acc)
        })
        .collect()
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Refused {
    pub field: &'static str,
    pub message: String,
}

/// The handle through which HTTP routes, signals and reloads steer the engine.
pub struct Control {
    tx: watch::Sender<Settings>,
    model: Model,
    /// The next op number to claim: shared by the lanes, read here to anchor schedules.
    pub(super) next_op: Arc<AtomicU64>,
    load: LoadPlan,
}

impl Control {
    pub fn new(load: &LoadPlan, ops: &[OpPlan]) -> Arc<Control> {
        let now = Instant::now();
        let settings = Settings {
            paused_at: None,
            schedule: Arc::new(plan_schedule(load, now, 0)),
            concurrency: load.concurrency,
            max_in_flight: load.max_in_flight,
            weights: cumulative_weights(ops),
        };
        let (tx, _) = watch::channel(settings);
        Arc::new(Control {
            tx,
            model: load.model,
            next_op: Arc::new(AtomicU64::new(0)),
            load: load.clone(),
        })
    }

    pub fn model(&self) -> Model {
        self.model
    }

    pub fn subscribe(&self) -> watch::Receiver<Settings> {
        self.tx.subscribe()
    }

    pub fn settings(&self) -> Settings {
        self.tx.borrow().clone()
    }

    /// Marks the start of issuing: the schedule in force (and its stages) is anchored now.
    /// It is the one `/status` showed while waiting: the spec's, or what a rate or a reload
    /// set before the start (during `shard.start_at` or the connect retries), never the
    /// spec's again.
    pub(super) fn start(&self, at: Instant) {
        self.tx.send_modify(|s| {
            s.schedule = Arc::new(s.schedule.anchored(at, 0));
            // A pause before the start holds the schedule from the start on.
            s.paused_at = s.paused_at.map(|_| at);
        });
    }

    /// Target ops/s now (0 = unthrottled or paused).
    pub fn target_rate(&self) -> f64 {
        let s = self.tx.borrow();
        if s.paused() {
            0.0
        } else {
            s.schedule.rate_at(Instant::now())
        }
    }

    /// The stage of the spec's `load.stages` in force now (held while paused): its index and
    /// the stage itself. `None` without stages, once they are over, and after an explicit rate.
    pub fn stage(&self) -> Option<(usize, Stage)> {
        let s = self.tx.borrow();
        let now = s.paused_at.unwrap_or_else(Instant::now);
        let i = s.schedule.stage_at(now)?;
        Some((i, s.schedule.stages()[i]))
    }

    pub fn in_flight_limit(&self) -> u32 {
        self.tx.borrow().in_flight_limit(self.model)
    }

    pub fn pause(&self) {
        let now = Instant::now();
        self.tx.send_if_modified(|s| {
            let was_running = s.paused_at.is_none();
            if was_running {
                s.paused_at = Some(now);
            }
            was_running
        });
    }

    /// Resumes where the schedule was held: the whole plan (stages included) moves later by
    /// the pause, so the paused time is not owed as a burst and the later stages still come.
    pub fn resume(&self) {
        let now = Instant::now();
        self.tx.send_if_modified(|s| {
            let Some(since) = s.paused_at.take() else {
                return false;
            };
            s.schedule = Arc::new(s.schedule.shifted(now.saturating_duration_since(since)));
            true
        });
    }

    /// Sets a constant rate from now on (0 = unthrottled); the spec's stages no longer apply
    /// (until a reload that changes load.rate or load.stages).
    pub fn set_rate(&self, rate: f64) -> Result<(), Refused> {
        crate::plan::check_rate(rate, self.load.on_backlog).map_err(|message| Refused {
            field: "rate",
            message,
        })?;
        self.replace_schedule(|at, first_op| {
            if rate > 0.0 {
                Schedule::constant(at, first_op, rate)
            } else {
                Schedule::unthrottled(at, first_op)
            }
        });
        Ok(())
    }

    /// Sets the model's knob (see [`model::set_knob`]); a refusal changes nothing.
    pub fn set_concurrency(&self, value: u32) -> Result<(), Refused> {
        let mut result = Ok(());
        self.tx.send_if_modified(|s| {
            result = model::set_knob(self.model, &mut s.concurrency, &mut s.max_in_flight, value)
                .map_err(|message| Refused {
                    field: "concurrency",
                    message,
                });
            result.is_ok()
        });
        result
    }

    /// Applies the hot fields of a reloaded plan: concurrency, cap, weights, and the rate or
    /// stages. The schedule is replaced (its stages starting now) only when the reload changes
    /// load.rate or load.stages against `running`, the load in force before it: a reload of
    /// other fields keeps an explicit rate (`set_rate`) and the stage in progress.
    pub fn apply_reload(&self, running: &LoadPlan, load: &LoadPlan, ops: &[OpPlan]) {
        let weights = cumulative_weights(ops);
        let now = Instant::now();
        let schedule = (load.rate != running.rate || load.stages != running.stages).then(|| {
            let first_op = self.next_op.load(Ordering::Relaxed);
            Arc::new(plan_schedule(load, now, first_op))
        });
        self.tx.send_modify(|s| {
            s.concurrency = load.concurrency;
            s.max_in_flight = load.max_in_flight;
            s.weights = weights;
            if let Some(schedule) = schedule {
                s.schedule = schedule;
                s.paused_at = s.paused_at.map(|_| now);
            }
        });
    }

    /// The ops of the run's window, from the schedule alone: with a rate, those due before
    /// `end` (op numbers below `limit`; a paused schedule stands still from the pause on);
    /// without one nothing is ever due, and the window holds the ops handed out to the lanes.
    /// Never derived from what the lanes sent or dropped: the sum of those is checked
    /// against it.
    pub(super) fn scheduled(&self, end: Instant, limit: u64) -> u64 {
        let s = self.tx.borrow();
        if !s.schedule.is_throttled() {
            return self.next_op.load(Ordering::Relaxed).min(limit);
        }
        let end = s.paused_at.map_or(end, |p| p.min(end));
        s.schedule.due_before(end).min(limit)
    }

    /// The ops due before `end` (op numbers below `limit`) that no lane sent: those never
    /// claimed, and those `held` (claimed, not sent; by due time). A paused schedule stands
    /// still from the pause on; without a rate nothing is ever due.
    pub(super) fn not_sent(&self, end: Instant, limit: u64, held: &[Instant]) -> u64 {
        let s = self.tx.borrow();
        if !s.schedule.is_throttled() {
            return 0;
        }
        let end = s.paused_at.map_or(end, |p| p.min(end));
        let due = s.schedule.due_before(end).min(limit);
        let claimed = self.next_op.load(Ordering::Relaxed).min(limit);
        due.saturating_sub(claimed) + held.iter().filter(|&&t| t < end).count() as u64
    }

    /// Replaces the schedule with one anchored now at the next op to claim. While paused, the
    /// new schedule is held from now on.
    fn replace_schedule(&self, schedule: impl FnOnce(Instant, u64) -> Schedule) {
        let now = Instant::now();
        let schedule = Arc::new(schedule(now, self.next_op.load(Ordering::Relaxed)));
        self.tx.send_modify(|s| {
            s.schedule = schedule;
            s.paused_at = s.paused_at.map(|_| now);
        });
    }
}

fn plan_schedule(load: &LoadPlan, at: Instant, first_op: u64) -> Schedule {
    if load.stages.is_empty() {
        if load.rate > 0.0 {
            Schedule::constant(at, first_op, load.rate)
        } else {
            Schedule::unthrottled(at, first_op)
        }
    } else {
        Schedule::staged(at, first_op, load.stages.clone(), load.rate)
    }
}
