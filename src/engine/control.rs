//! Live control of a running engine: pause, resume, rate, concurrency and reloaded weights.
//! Changes travel to the lanes through a `watch` channel; a lane looks at it between requests
//! (an atomic load when nothing changed), never on every clock tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

use tokio::sync::watch;

use super::model;
use super::schedule::Schedule;
use crate::plan::{LoadPlan, Model, OpPlan};

/// What the lanes obey. Replaced as a whole on every change.
#[derive(Debug, Clone)]
pub struct Settings {
    pub paused: bool,
    pub schedule: Arc<Schedule>,
    /// The model's knob (workers, batch size, window, chains or the in-flight cap).
    pub concurrency: u32,
    pub max_in_flight: u32,
    /// Cumulative op weights, for choosing an op by binary search.
    pub weights: Arc<[f64]>,
    /// Set by an explicit rate; stages no longer apply.
    pub rate_override: bool,
}

impl Settings {
    /// The in-flight limit that results (see [`model::in_flight_limit`]).
    pub fn in_flight_limit(&self, model: Model) -> u32 {
        model::in_flight_limit(model, self)
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
    /// When the run started issuing (stages count from here).
    started: std::sync::OnceLock<Instant>,
    load: LoadPlan,
}

impl Control {
    pub fn new(load: &LoadPlan, ops: &[OpPlan]) -> Arc<Control> {
        let now = Instant::now();
        let settings = Settings {
            paused: false,
            schedule: Arc::new(plan_schedule(load, now, 0)),
            concurrency: load.concurrency,
            max_in_flight: load.max_in_flight,
            weights: cumulative_weights(ops),
            rate_override: false,
        };
        let (tx, _) = watch::channel(settings);
        Arc::new(Control {
            tx,
            model: load.model,
            next_op: Arc::new(AtomicU64::new(0)),
            started: std::sync::OnceLock::new(),
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

    /// Marks the start of issuing: the schedule (and its stages) is anchored now.
    pub(super) fn start(&self, at: Instant) {
        let _ = self.started.set(at);
        let load = self.load.clone();
        self.tx
            .send_modify(|s| s.schedule = Arc::new(plan_schedule(&load, at, 0)));
    }

    /// Target ops/s now (0 = unthrottled or paused).
    pub fn target_rate(&self) -> f64 {
        let s = self.tx.borrow();
        if s.paused {
            0.0
        } else {
            s.schedule.rate_at(Instant::now())
        }
    }

    pub fn in_flight_limit(&self) -> u32 {
        self.tx.borrow().in_flight_limit(self.model)
    }

    pub fn pause(&self) {
        self.tx
            .send_if_modified(|s| !std::mem::replace(&mut s.paused, true));
    }

    /// Resumes, re-anchoring the schedule so that the paused time is not owed as a burst.
    pub fn resume(&self) {
        let anchor = self.anchor();
        self.tx.send_if_modified(|s| {
            if !s.paused {
                return false;
            }
            s.paused = false;
            s.schedule = Arc::new(reanchor(&s.schedule, anchor));
            true
        });
    }

    /// Sets a constant rate from now on (0 = unthrottled); stages no longer apply.
    pub fn set_rate(&self, rate: f64) -> Result<(), Refused> {
        if !(rate == 0.0 || crate::plan::RATE_RANGE.contains(&rate)) {
            return Err(Refused {
                field: "rate",
                message: format!(
                    "must be 0 (unthrottled) or between 0.01 and 1e8 ops/s, not {rate}"
                ),
            });
        }
        if rate == 0.0 && self.load.on_backlog == crate::spec::OnBacklog::Drop {
            return Err(Refused {
                field: "rate",
                message: "0 (unthrottled) is refused while on_backlog = \"drop\"".into(),
            });
        }
        let (at, first_op) = self.anchor();
        self.tx.send_modify(|s| {
            s.schedule = Arc::new(if rate > 0.0 {
                Schedule::constant(at, first_op, rate)
            } else {
                Schedule::unthrottled(at, first_op)
            });
            s.rate_override = true;
        });
        Ok(())
    }

    /// Sets the model's knob (see [`model::set_knob`]); a refusal changes nothing.
    pub fn set_concurrency(&self, value: u32) -> Result<(), Refused> {
        let mut result = Ok(());
        self.tx.send_if_modified(|s| {
            result = model::set_knob(self.model, s, value);
            result.is_ok()
        });
        result
    }

    /// Applies the hot fields of a reloaded plan: rate or stages, concurrency, cap, weights.
    pub fn apply_reload(&self, load: &LoadPlan, ops: &[OpPlan]) {
        let (at, first_op) = self.anchor();
        let weights = cumulative_weights(ops);
        let schedule = plan_schedule(load, at, first_op);
        self.tx.send_modify(|s| {
            s.schedule = Arc::new(schedule);
            s.concurrency = load.concurrency;
            s.max_in_flight = load.max_in_flight;
            s.weights = weights;
            s.rate_override = false;
        });
    }

    fn anchor(&self) -> (Instant, u64) {
        (Instant::now(), self.next_op.load(Ordering::Relaxed))
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

/// The same rate, continuing from `anchor` (used after a pause).
fn reanchor(s: &Schedule, (at, first_op): (Instant, u64)) -> Schedule {
    let rate = s.rate_at(at);
    if rate > 0.0 {
        Schedule::constant(at, first_op, rate)
    } else {
        Schedule::unthrottled(at, first_op)
    }
}
