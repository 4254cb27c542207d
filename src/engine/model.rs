//! The five concurrency models, in one place: how many lanes each runs, the in-flight limit
//! its knob gives and each lane's share of it, the order in which a lane takes completions,
//! and the batches gate. The lanes run whatever this module decides; the schedule (when an
//! op is due) applies on top of every model alike.
//!
//! | model       | knob            | lanes             | a lane may send when ...                          |
//! |-------------|-----------------|-------------------|---------------------------------------------------|
//! | `sync`      | `workers`       | one per thread    | one of its workers is idle (its share of workers) |
//! | `batches`   | `batch_size`    | one per thread    | its batch is still filling; then all must finish  |
//! | `pipeline`  | `window`        | one per thread    | below its window share; completions in FIFO order |
//! | `unbounded` | `max_in_flight` | one per thread    | below its share of the cap (the cap is the knob)  |
//! | `chains`    | `chains`        | one per thread    | below its share: each completion sends the next   |
//!
//! The knob's value is checked by the plan (`plan/load.rs`) and changed live by
//! [`set_knob`]; `max_in_flight` caps every model.
//!
//! `sync` runs its workers inside one lane per runtime thread, not as a task each. A worker is
//! a slot of its lane: it sends one request and awaits it, then takes the next op. Ops are
//! claimed in order as workers become idle, so a lane of `n` workers sends exactly what `n`
//! worker tasks would: op `k` at its due time once a worker is idle. What changes is the cost:
//! statistics belong to a lane, and a lane alone writes them (no lock, no atomic on the hot
//! path); with a lane per worker, 1,000 workers kept 1,000 sets of HDR histograms (about
//! 220 KB each, replaced five times a second) and one aggregator merged them all, which took
//! 12.8 GiB of memory and most of the CPU (issue 21). Per-thread statistics shared by worker
//! tasks would have needed a thread-local (tasks move between threads, and each thread's last
//! interval would have no owner to hand it over) or a lock; a lane per thread needs neither.

use super::control::{Refused, Settings};
use crate::plan::Model;

/// The in-flight limit that results from the settings: the knob, capped by `max_in_flight`
/// (for `unbounded` the cap is the knob).
pub fn in_flight_limit(model: Model, s: &Settings) -> u32 {
    match model {
        Model::Unbounded => s.max_in_flight,
        _ => s.concurrency.min(s.max_in_flight),
    }
}

/// Requests lane `lane` of `lanes` may have in flight: its share of the limit (for `sync`,
/// its share of the workers, each with one request in flight).
pub fn lane_capacity(model: Model, s: &Settings, lane: u32, lanes: u32) -> u32 {
    share(in_flight_limit(model, s), lane, lanes)
}

/// The lane's share of `total`: lanes below `total % lanes` take one more.
pub fn share(total: u32, lane: u32, lanes: u32) -> u32 {
    total / lanes + u32::from(lane < total % lanes)
}

/// Whether a lane yields completions in submission order: the pipeline's defining trait is
/// waiting for the oldest request; every other model takes them as they come.
pub fn waits_for_oldest(model: Model) -> bool {
    model == Model::Pipeline
}

/// Sets the model's knob to `value` in `s`; refused at 0 and above the cap, except for
/// `unbounded`, whose only limit is the cap itself (so the knob moves the cap).
pub fn set_knob(model: Model, s: &mut Settings, value: u32) -> Result<(), Refused> {
    if value == 0 {
        return Err(Refused {
            field: "concurrency",
            message: "must be at least 1".into(),
        });
    }
    if model == Model::Unbounded {
        s.concurrency = value;
        s.max_in_flight = value;
        return Ok(());
    }
    if value > s.max_in_flight {
        return Err(Refused {
            field: "concurrency",
            message: format!("{value} is above max_in_flight ({})", s.max_in_flight),
        });
    }
    s.concurrency = value;
    Ok(())
}

/// Whether a lane may send another request now, given its capacity. Every model but
/// `batches` sends while below its capacity; `batches` fills a batch of `capacity`, then
/// waits for all of it to finish before the next.
#[derive(Debug, Clone)]
pub struct Gate {
    batches: bool,
    /// `batches`: whether the current batch is still being filled, and how much of it is sent.
    filling: bool,
    sent_in_batch: u32,
}

impl Gate {
    pub fn new(model: Model) -> Gate {
        Gate {
            batches: model == Model::Batches,
            filling: true,
            sent_in_batch: 0,
        }
    }

    #[inline]
    pub fn may_send(&mut self, in_flight: u32, capacity: u32) -> bool {
        if !self.batches {
            return in_flight < capacity;
        }
        if in_flight == 0 && !self.filling {
            self.filling = true;
            self.sent_in_batch = 0;
        }
        if self.filling && self.sent_in_batch >= capacity {
            self.filling = false;
        }
        self.filling && capacity > 0
    }

    /// Counts a request sent (a new op; retries keep their op's place).
    #[inline]
    pub fn sent(&mut self) {
        self.sent_in_batch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Schedule;
    use std::sync::Arc;
    use tokio::time::Instant;

    fn settings(concurrency: u32, max_in_flight: u32) -> Settings {
        Settings {
            paused_at: None,
            schedule: Arc::new(Schedule::unthrottled(Instant::now(), 0)),
            concurrency,
            max_in_flight,
            weights: Arc::new([1.0]),
        }
    }

    #[test]
    fn the_knob_is_split_between_lanes_and_capped() {
        let s = settings(10, 8);
        assert_eq!(in_flight_limit(Model::Chains, &s), 8, "capped");
        assert_eq!(
            in_flight_limit(Model::Unbounded, &s),
            8,
            "the cap is the knob"
        );
        let shares: Vec<u32> = (0..3)
            .map(|l| lane_capacity(Model::Pipeline, &s, l, 3))
            .collect();
        assert_eq!(shares, [3, 3, 2]);
        let workers: Vec<u32> = (0..3)
            .map(|l| lane_capacity(Model::Sync, &s, l, 3))
            .collect();
        assert_eq!(
            workers,
            [3, 3, 2],
            "sync: the workers, split between the lanes"
        );
    }

    #[test]
    fn knob_changes_obey_the_cap_except_unbounded() {
        let mut s = settings(4, 16);
        assert!(set_knob(Model::Chains, &mut s, 17).is_err());
        assert!(set_knob(Model::Chains, &mut s, 0).is_err());
        set_knob(Model::Chains, &mut s, 16).unwrap();
        assert_eq!(s.concurrency, 16);
        set_knob(Model::Unbounded, &mut s, 64).unwrap();
        assert_eq!((s.concurrency, s.max_in_flight), (64, 64));
    }

    #[test]
    fn the_batches_gate_fills_then_waits_for_the_whole_batch() {
        let mut gate = Gate::new(Model::Batches);
        let mut in_flight = 0;
        while gate.may_send(in_flight, 3) {
            gate.sent();
            in_flight += 1;
        }
        assert_eq!(in_flight, 3);
        assert!(!gate.may_send(1, 3), "one of the batch still out: wait");
        assert!(gate.may_send(0, 3), "all finished: the next batch");
        let mut window = Gate::new(Model::Pipeline);
        assert!(window.may_send(2, 3) && !window.may_send(3, 3));
    }
}
