//! The five concurrency models, in one place: how many lanes each runs, the in-flight limit
//! its knob gives and each lane's share of it, the order in which a lane takes completions,
//! and the batches gate. The lanes run whatever this module decides; the schedule (when an
//! op is due) applies on top of every model alike.
//!
//! What each model is (its knob, its traits) is a row of the model table (`spec::MODELS`); this module
//! turns the row into the lanes' limits and their gate. The knob's value is checked by the
//! plan (`plan/load.rs`) and changed live by [`set_knob`]; `max_in_flight` caps every model.
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

use crate::plan::Model;

/// The in-flight limit that results from the knob (`concurrency`) and the cap: the knob,
/// capped by `max_in_flight` (when the cap is the knob, the cap).
pub fn in_flight_limit(model: Model, concurrency: u32, max_in_flight: u32) -> u32 {
    match model.row().cap_is_knob {
        true => max_in_flight,
        false => concurrency.min(max_in_flight),
    }
}

/// The lane's share of `total`: lanes below `total % lanes` take one more. A lane's share of
/// the in-flight limit is its capacity (for `sync`, its share of the workers, each with one
/// request in flight).
pub fn share(total: u32, lane: u32, lanes: u32) -> u32 {
    total / lanes + u32::from(lane < total % lanes)
}

/// Whether a lane yields completions in submission order: the pipeline's defining trait is
/// waiting for the oldest request; every other model takes them as they come.
pub fn waits_for_oldest(model: Model) -> bool {
    model.row().fifo
}

/// Sets the model's knob to `value` (in `concurrency`, and in the cap when the cap is the
/// knob); refused at 0 and above the cap. On refusal nothing changes and the reason is given.
pub fn set_knob(
    model: Model,
    concurrency: &mut u32,
    max_in_flight: &mut u32,
    value: u32,
) -> Result<(), String> {
    if value == 0 {
        return Err("must be at least 1".into());
    }
    if model.row().cap_is_knob {
        (*concurrency, *max_in_flight) = (value, value);
        return Ok(());
    }
    if value > *max_in_flight {
        return Err(format!("{value} is above max_in_flight ({max_in_flight})"));
    }
    *concurrency = value;
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
            batches: model.row().whole_batches,
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

    #[test]
    fn the_knob_is_split_between_lanes_and_capped() {
        assert_eq!(in_flight_limit(Model::Chains, 10, 8), 8, "capped");
        assert_eq!(
            in_flight_limit(Model::Unbounded, 10, 8),
            8,
            "the cap is the knob"
        );
        let limit = in_flight_limit(Model::Pipeline, 10, 8);
        let shares: Vec<u32> = (0..3).map(|l| share(limit, l, 3)).collect();
        assert_eq!(shares, [3, 3, 2]);
    }

    #[test]
    fn knob_changes_obey_the_cap_except_unbounded() {
        let (mut c, mut cap) = (4, 16);
        assert!(set_knob(Model::Chains, &mut c, &mut cap, 17).is_err());
        assert!(set_knob(Model::Chains, &mut c, &mut cap, 0).is_err());
        assert_eq!((c, cap), (4, 16), "a refusal changes nothing");
        set_knob(Model::Chains, &mut c, &mut cap, 16).unwrap();
        assert_eq!(c, 16);
        set_knob(Model::Unbounded, &mut c, &mut cap, 64).unwrap();
        assert_eq!((c, cap), (64, 64));
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
