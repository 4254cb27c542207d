//! A lane: one task that claims op numbers, sends them as its model allows, and records what
//! happens in statistics it alone owns. The only state shared between lanes is the op counter
//! (one atomic add per op) and the control settings (read when they change).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use futures::stream::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::control::{Control, Settings};
use super::executor::{Executor, Outcome};
use super::in_flight::InFlight;
use super::model::{self, Gate};
use super::recycled::Recycled;
use super::request::{Finished, Request, Ticket};
use crate::cql::nodes::SLOTS;
use crate::data::{mix, unit};
use crate::plan::OnBacklog;
use crate::plan::{End, Plan};
use crate::stats::{LaneReport, LaneStats, Report, Sample, bounds_ns};

/// An op is late, and dropped under `on_backlog = "drop"`, when it could not be sent within
/// this long after its intended time.
pub const DROP_AFTER: Duration = Duration::from_millis(10);
// An op held for its release alone is never late.
const _: () = assert!(crate::plan::MAX_RELEASE_EVERY.as_nanos() <= DROP_AFTER.as_nanos());

/// How often a lane hands its statistics to the aggregator: often enough that `/status`
/// follows a rate change within a second or two.
pub const REPORT_EVERY: Duration = Duration::from_millis(200);

/// What every lane of a run shares.
pub struct LaneShared<E> {
    pub executor: Arc<E>,
    pub plan: Arc<Plan>,
    pub control: Arc<Control>,
    pub reports: mpsc::Sender<Report>,
    /// Cancelled when the run must stop issuing (its end, or a signal).
    pub stop: CancellationToken,
    pub measure_from: Instant,
    /// When a run with a duration stops issuing: an op due then or later is not part of it.
    pub ends_at: Option<Instant>,
    /// Lanes of the run, every model alike.
    pub lanes: u32,
}

/// A timer made once and re-armed in place: a fresh `sleep_until()` per turn of the lane's
/// loop would register with the timer wheel (a lock) on every request. A lane has two: when
/// the next op is due, and the deadlines of its requests.
struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// What `sleep` is set to, armed or not.
    sleep_at: Instant,
    /// When it should fire; `None` when disarmed.
    at: Option<Instant>,
}

impl Alarm {
    fn new() -> Alarm {
        let now = Instant::now();
        Alarm {
            sleep: Box::pin(tokio::time::sleep_until(now)),
            sleep_at: now,
            at: None,
        }
    }

    /// Fires at `at`, or never with `None`. The timer is reset only for a new time, so
    /// disarming and re-arming for the same time (a lane at its cap) costs nothing.
    fn set(&mut self, at: Option<Instant>) {
        if let Some(t) = at
            && t != self.sleep_at
        {
            self.sleep.as_mut().reset(t);
            self.sleep_at = t;
        }
        self.at = at;
    }

    /// Makes sure it fires by `at`.
    fn no_later_than(&mut self, at: Option<Instant>) {
        if let Some(t) = at
            && self.at.is_none_or(|a| t < a)
        {
            self.set(at);
        }
    }

    /// Resolves when it fires, and disarms; pending while it is not armed.
    async fn fired(&mut self) {
        if self.at.is_none() {
            return std::future::pending().await;
        }
        (&mut self.sleep).await;
        self.at = None;
    }
}

/// Times out the requests past their deadline, and sets `deadlines` for the earliest left.
/// The deadline alarm is kept at or before the earliest deadline (see [`Request`] for why one
/// timer per lane): a request that finishes leaves it where it was, and firing early only
/// costs this pass.
/// Puts a request in flight, its deadline on the lane's alarm.
fn push<'r, F: Future<Output = Outcome>>(
    in_flight: &mut InFlight<Request<'r, F>>,
    deadlines: &mut Alarm,
    request: Request<'r, F>,
) {
    deadlines.no_later_than(request.deadline());
    in_flight.push(request);
}

fn expire<F: Future<Output = Outcome>>(
    deadlines: &mut Alarm,
    in_flight: &mut InFlight<Request<'_, F>>,
) {
    let now = Instant::now();
    in_flight.each(|r| deadlines.no_later_than(r.expire(now)));
}

/// Requests in flight per node: a pass over the lane's requests, made five times a second.
fn node_in_flight<F: Future<Output = Outcome>>(
    in_flight: &mut InFlight<Request<'_, F>>,
) -> Box<[u32; SLOTS]> {
    let mut counts = Box::new([0; SLOTS]);
    in_flight.each(|r| {
        if let Some(n) = r.node() {
            counts[(n as usize).min(SLOTS - 1)] += 1;
        }
    });
    counts
}

struct Lane<'a, E> {
    id: u32,
    shared: &'a LaneShared<E>,
    settings: Settings,
    capacity: u32,
    stats: LaneStats,
    /// Requests in flight per node, counted when a report is due (not per request).
    node_in_flight: Box<[u32; SLOTS]>,
    measuring: bool,
    /// The model's rule for sending another request.
    gate: Gate,
}

/// Runs lane `id` until the run stops issuing and its requests are drained. Returns when the
/// op it had claimed but not sent was due, if it had one (the engine counts it as not sent).
pub async fn run<E: Executor>(shared: Arc<LaneShared<E>>, id: u32) -> Option<Instant> {
    let mut rx = shared.control.subscribe();
    let settings = rx.borrow_and_update().clone();
    let plan = &shared.plan;
    let mut lane = Lane {
        id,
        shared: &shared,
        capacity: 0,
        settings,
        stats: LaneStats::new(
            plan.ops.len(),
            plan.metrics.hdr_significant_digits,
            bounds_ns(&plan.metrics.buckets),
        ),
        node_in_flight: Box::new([0; SLOTS]),
        measuring: shared.measure_from <= Instant::now(),
        gate: Gate::new(shared.control.model()),
    };
    lane.capacity = lane.capacity_for(&lane.settings);
    lane.drive(&mut rx).await
}

/// What a lane does with the next op (see [`Lane::next_ticket`]).
enum Next {
    Send(Ticket),
    /// Late under `on_backlog = "drop"`: counted, not sent.
    Dropped,
    /// Not due yet (or due after the end): kept as the pending op.
    Held,
    /// Every op of the run has been claimed.
    UsedUp,
}

impl<E: Executor> Lane<'_, E> {
    fn capacity_for(&self, s: &Settings) -> u32 {
        let limit = s.in_flight_limit(self.shared.control.model());
        model::share(limit, self.id, self.shared.lanes)
    }

    /// Sends ops as the model and the schedule allow until the run ends or stops, then
    /// drains; returns when the op it held (claimed, not sent) was due.
    ///
    /// - The stop token's `cancelled()` is made once and polled in place: a fresh one per
    ///   turn would register with the token's waiter list (a lock shared by the lanes) on every
    ///   request. Settings are checked with an atomic load at the top of each turn; an idle
    ///   lane wakes for them with its report tick.
    /// - Two alarms: when the next op is due, and the earliest deadline in flight.
    /// - `released_until`: ops due by this instant may be sent. It moves on at most every
    ///   `load.release_every` (1 ms by default): sending each op the moment it fell due, at the
    ///   wake-up of whatever response came in first, made every op a write and a wake-up of its
    ///   own on the driver's connection; released together, the ops of a millisecond go out in
    ///   one write. Each op keeps its intended time: the wait is schedule lag.
    /// - A lane without a share of the limit (fewer workers or a smaller window than lanes)
    ///   never claims, so it learns from the counter that the ops are used up; a lane that
    ///   claims learns it from its claim, with no extra read per turn.
    /// - The wait is biased, completions first: while requests keep finishing, the other
    ///   branches (and the stop token's waiter list, behind a lock shared by the lanes) are
    ///   polled once per wake-up instead of on about every other request. A stop is still
    ///   seen at the top of every turn.
    async fn drive(&mut self, rx: &mut watch::Receiver<Settings>) -> Option<Instant> {
        let shared = self.shared;
        let ends_at = shared.ends_at;
        let mut in_flight = InFlight::new(model::waits_for_oldest(shared.control.model()));
        let mut pending: Option<(u64, Option<Instant>)> = None;
        let mut exhausted = false;
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = shared.stop.cancelled();
        tokio::pin!(stopped);
        let (mut due, mut deadlines) = (Alarm::new(), Alarm::new());
        let mut released_until = Instant::now();
        let release_every = shared.plan.load.release_every;
        // A ticket's attempt (a new op, or a retry keeping its place in flight), its future
        // made in place in a reused heap block (see `recycled`).
        let request = |ticket: Ticket| {
            Request::new(
                &shared.plan,
                ticket,
                Recycled::with(|| shared.executor.execute(ticket.op, ticket.index)),
            )
        };

        loop {
            if rx.has_changed().unwrap_or(false) {
                self.refresh(rx);
                // A claimed op keeps its number but is due by the new schedule.
                pending = pending.map(|(k, _)| (k, self.settings.schedule.due(k)));
            }
            // At the end of a duration the lane still sends what was due before it (a timer
            // of 1 ms resolution may wake it for an op due just before the end, at the end);
            // a stop by signal sends nothing more.
            let stopping = shared.stop.is_cancelled();
            if stopping && ends_at.is_none() {
                break;
            }
            let now = Instant::now();
            if stopping || now >= released_until + release_every {
                released_until = now;
            }
            if !self.settings.paused() && !exhausted {
                exhausted = self.send_due(
                    &mut pending,
                    released_until,
                    &mut in_flight,
                    &mut deadlines,
                    &request,
                );
            }
            exhausted |= self.capacity == 0 && pending.is_none() && self.ops_used_up();
            if stopping || (exhausted && in_flight.len() == 0) {
                break;
            }
            let next_release = released_until + release_every;
            due.set(self.wake_for(pending, next_release, in_flight.len()));
            tokio::select! {
                biased;
                Some(finished) = in_flight.next(), if in_flight.len() > 0 => match finished {
                    Finished::Done(sample) => self.record(&sample, in_flight.len()),
                    Finished::Retry(ticket) => push(&mut in_flight, &mut deadlines, request(ticket)),
                },
                _ = due.fired() => {}
                _ = deadlines.fired() => expire(&mut deadlines, &mut in_flight),
                _ = report.tick() => {
                    self.node_in_flight = node_in_flight(&mut in_flight);
                    self.report(in_flight.len());
                }
                _ = &mut stopped => {}
            }
        }

        // Draining: nothing new is sent. The claimed op goes back to the engine, which counts
        // it as not sent when it was due before the end (see `engine::run`).
        self.drain(&mut in_flight, &mut deadlines, &mut report, request)
            .await;
        self.report_last(in_flight.len()).await;
        pending.and_then(|(_, t)| t)
    }

    /// Waits for the requests in flight (retries included) until they finish or
    /// `load.drain_timeout` after this lane stopped issuing gives them up; `retry` makes a
    /// retry's request.
    ///
    /// Each lane keeps its own drain deadline, checked before every wait: a deadline kept by
    /// another task (a timer spawned at the stop, cancelling a shared token) fired only once
    /// that task was scheduled, and busy lanes had by then drained all they would have given
    /// up (seen with `drain_timeout = "0s"` on a loaded machine).
    async fn drain<'r, F: Future<Output = Outcome>>(
        &mut self,
        in_flight: &mut InFlight<Request<'r, F>>,
        deadlines: &mut Alarm,
        report: &mut tokio::time::Interval,
        retry: impl Fn(Ticket) -> Request<'r, F>,
    ) {
        // `None`: a timeout too long to add to an instant, never reached.
        let give_up_at = Instant::now().checked_add(self.shared.plan.load.drain_timeout);
        let mut give_up = Alarm::new();
        give_up.set(give_up_at);
        while in_flight.len() > 0 {
            if give_up_at.is_some_and(|t| Instant::now() >= t) {
                // Given up: counted here, where it happens, not derived from the others.
                self.stats.abandoned += in_flight.len() as u64;
                break;
            }
            tokio::select! {
                biased;
                Some(finished) = in_flight.next() => match finished {
                    Finished::Done(sample) => self.record(&sample, in_flight.len()),
                    // Retries count as in flight: drained like the rest.
                    Finished::Retry(ticket) => push(in_flight, deadlines, retry(ticket)),
                },
                _ = deadlines.fired() => expire(deadlines, in_flight),
                _ = report.tick() => {
                    self.node_in_flight = node_in_flight(in_flight);
                    self.report(in_flight.len());
                }
                // Wakes the lane for the check above.
                _ = give_up.fired() => {}
            }
        }
    }

    /// Sends the ops released by `released_until` while the model has room; true once every
    /// op of the run has been claimed.
    fn send_due<'r, F: Future<Output = Outcome>>(
        &mut self,
        pending: &mut Option<(u64, Option<Instant>)>,
        released_until: Instant,
        in_flight: &mut InFlight<Request<'r, F>>,
        deadlines: &mut Alarm,
        request: &impl Fn(Ticket) -> Request<'r, F>,
    ) -> bool {
        while self.may_send(in_flight.len()) {
            match self.next_ticket(pending, released_until, in_flight.len()) {
                Next::Send(ticket) => {
                    push(in_flight, deadlines, request(ticket));
                    self.gate.sent();
                }
                Next::Dropped => {}
                Next::Held => break,
                Next::UsedUp => return true,
            }
        }
        false
    }

    /// When the lane must wake for its held op: when it is due, not before the next release,
    /// never for an op due after the end, and only if the model would let it go.
    fn wake_for(
        &mut self,
        pending: Option<(u64, Option<Instant>)>,
        next_release: Instant,
        in_flight: usize,
    ) -> Option<Instant> {
        pending
            .and_then(|(_, t)| t)
            .filter(|&t| self.shared.ends_at.is_none_or(|end| t < end))
            .map(|t| t.max(next_release))
            .filter(|_| !self.settings.paused() && self.may_send(in_flight))
    }

    /// The next op to send, when the model has room: the op held from before, else the next
    /// claimed one. An op not released yet, or due when the run is over, is held (and sent
    /// if a change of the schedule makes it due in time); one too late under
    /// `on_backlog = "drop"` is dropped, counted.
    fn next_ticket(
        &mut self,
        pending: &mut Option<(u64, Option<Instant>)>,
        released_until: Instant,
        in_flight: usize,
    ) -> Next {
        let plan = &self.shared.plan;
        let Some((k, intended)) = pending.take().or_else(|| self.claim()) else {
            return Next::UsedUp;
        };
        let now = Instant::now();
        if let Some(t) = intended {
            if t > released_until || self.shared.ends_at.is_some_and(|end| t >= end) {
                *pending = Some((k, intended));
                return Next::Held;
            }
            if plan.load.on_backlog == OnBacklog::Drop && now - t > DROP_AFTER {
                self.drop_late(now);
                return Next::Dropped;
            }
        }
        self.stats.record_sent(intended, now, in_flight as u32 + 1);
        let index = plan.load.index_map.index(k);
        let op = choose(&self.settings.weights, plan.seed, index);
        Next::Send(Ticket::new(op, index, intended, now))
    }

    fn refresh(&mut self, rx: &mut watch::Receiver<Settings>) {
        self.settings = rx.borrow_and_update().clone();
        self.capacity = self.capacity_for(&self.settings);
    }

    /// Whether the model lets this lane send another request now.
    fn may_send(&mut self, in_flight: usize) -> bool {
        self.gate.may_send(in_flight as u32, self.capacity)
    }

    /// Whether every op of a run with an op count has been claimed (by any lane).
    fn ops_used_up(&self) -> bool {
        match self.shared.plan.load.end {
            End::Ops(n) => self.shared.control.next_op.load(Ordering::Relaxed) >= n,
            _ => false,
        }
    }

    /// The next op number and its intended time, or `None` when the run's ops are used up.
    fn claim(&self) -> Option<(u64, Option<Instant>)> {
        let k = self.shared.control.next_op.fetch_add(1, Ordering::Relaxed);
        if let End::Ops(n) = self.shared.plan.load.end
            && k >= n
        {
            return None;
        }
        Some((k, self.settings.schedule.due(k)))
    }

    /// Drops the claimed late op and every other op already late, in one step: those due
    /// before the run's end only. A lane that sees the end late (held up past it, before the
    /// stop reached it) must not count ops due after the end: they are not part of the run.
    fn drop_late(&mut self, now: Instant) {
        let late = now - DROP_AFTER;
        let until = self.shared.ends_at.map_or(late, |end| end.min(late));
        let due = self.settings.schedule.due_before(until);
        let previous = self
            .shared
            .control
            .next_op
            .fetch_max(due, Ordering::Relaxed);
        let limit = match self.shared.plan.load.end {
            End::Ops(n) => n,
            _ => u64::MAX,
        };
        self.stats.dropped_backlog += 1 + due.min(limit).saturating_sub(previous.min(limit));
    }

    fn record(&mut self, s: &Sample, in_flight: usize) {
        // A watched write's final outcome: a verified read may now target it (or never).
        if let Some(acked) = self.shared.executor.acked(s.op) {
            acked.record(s.index, s.result.is_ok());
        }
        // Close the warm-up interval so the summary can leave it out. Should the report
        // channel be full, the interval stays open (and counts as warm-up) until it is sent.
        if !self.measuring && s.done >= self.shared.measure_from && self.report(in_flight) {
            self.measuring = true;
        }
        self.stats.record(s);
    }

    /// Hands this interval to the aggregator, if the report channel has room; if not, the
    /// interval goes on and the next report carries both (coalesced: no count is lost, and
    /// the lane never waits for the aggregator). Whether it was sent.
    fn report(&mut self, in_flight: usize) -> bool {
        let Ok(permit) = self.shared.reports.try_reserve() else {
            return false;
        };
        permit.send(self.interval(in_flight, false));
        self.stats.peak_in_flight = in_flight as u32;
        true
    }

    /// The lane's last report: it waits for room (nothing is sent any more).
    async fn report_last(&mut self, in_flight: usize) {
        let last = self.interval(in_flight, true);
        let _ = self.shared.reports.send(last).await;
    }

    /// This interval's statistics, handed over; a fresh interval starts.
    fn interval(&mut self, in_flight: usize, last: bool) -> Report {
        Report::Lane(LaneReport {
            lane: self.id as usize,
            at: Instant::now(),
            stats: self.stats.take(),
            in_flight: in_flight as u32,
            warmup: !self.measuring,
            last,
            node_in_flight: self.node_in_flight.clone(),
        })
    }
}

/// The op for index `index`: a pure function of the seed, so every instance agrees.
#[inline]
pub fn choose(cumulative: &[f64], seed: u64, index: u64) -> usize {
    if cumulative.len() == 1 {
        return 0;
    }
    let total = cumulative.last().copied().unwrap_or(0.0);
    let u = unit(mix(seed ^ 0xA076_1D64_78BD_642F ^ index.rotate_left(17))) * total;
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1)
}
