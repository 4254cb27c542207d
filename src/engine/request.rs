//! One attempt of an op in flight: the backoff before it (for a retry), the attempt, and its
//! deadline.
//!
//! The deadline is enforced by the lane, not by a timer per request. The driver's own timeout
//! registers every request in tokio's timer wheel (a lock, an insert and a removal) and moves
//! the driver's multi-KiB future once more; without them the client spends 6.6% less CPU per
//! insert (BENCHMARKS.md). A lane instead keeps one timer at or before the earliest deadline of
//! its requests. When it fires (about once per timeout unless requests really time out) the lane
//! calls [`Request::expire`] on each request, which marks the ones past their deadline and
//! wakes them; they then end as `client_timeout`, dropping the attempt (the driver forgets a
//! dropped request and discards its late response).
//!
//! The node an attempt went to is noted by the driver's load balancing policy inside the poll
//! that sends it (see [`crate::cql::nodes`]): the request clears the thread's note, polls the
//! attempt and keeps what was noted, so a lane knows where each request is waiting and which
//! node answered or failed it, timeouts included.
//!
//! A retry comes back to the lane as [`Finished::Retry`] with its [`Ticket`], and the lane
//! sends it as a new request that waits out the backoff first: every attempt is made where
//! the lane calls the executor, so the attempt's type is the one the lane's in-flight set
//! holds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::executor::Outcome;
use crate::cql::{ErrorKind, nodes};
use crate::plan::Plan;
use crate::stats::{Sample, Verdict};

/// What a request resolves to: its sample, or its op's ticket to send again.
pub enum Finished {
    Done(Sample),
    Retry(Ticket),
}

/// An op while it is in flight, across its attempts: which op, its index, when it was due
/// and first sent, and the retries so far.
#[derive(Clone, Copy)]
pub struct Ticket {
    pub op: usize,
    pub index: u64,
    pub intended: Option<Instant>,
    pub sent: Instant,
    pub retries: u32,
    /// For a retry: the node to try last (the one that timed out or broke the connection).
    pub avoid: Option<u8>,
}

impl Ticket {
    /// The first attempt of op `op` on op index `index`, sent at `sent`.
    pub fn new(op: usize, index: u64, intended: Option<Instant>, sent: Instant) -> Ticket {
        Ticket {
            op,
            index,
            intended,
            sent,
            retries: 0,
            avoid: None,
        }
    }
}

pin_project! {
    /// One attempt of an op, after its backoff when it is a retry.
    pub struct Request<'a, F> {
        plan: &'a Plan,
        ticket: Ticket,
        // When the attempt times out; during the backoff, the earliest it can.
        // `None` when the timeout is too long to add to an instant.
        deadline: Option<Instant>,
        // Set by the lane once the deadline has passed.
        expired: bool,
        // The waker of the last poll, to wake the request when it expires.
        waker: Option<Waker>,
        backoff: Option<Pin<Box<Sleep>>>,
        // The node the attempt went to (an index of the node table), once known.
        node: Option<u8>,
        #[pin]
        attempt: F,
    }
}

impl<'a, F: Future<Output = Outcome>> Request<'a, F> {
    /// `attempt` (not polled until the lane polls the request) for `ticket`; a retry first
    /// waits out its backoff, `retry_backoff` doubled for each retry before it.
    pub fn new(plan: &'a Plan, ticket: Ticket, attempt: F) -> Self {
        let timeout = plan.ops[ticket.op].timeout;
        let (deadline, backoff) = match ticket.retries {
            0 => (ticket.sent.checked_add(timeout), None),
            n => {
                let backoff = plan
                    .cluster
                    .retry_backoff
                    .saturating_mul(1 << (n - 1).min(10));
                let start = Instant::now().checked_add(backoff);
                (
                    start.and_then(|t| t.checked_add(timeout)),
                    Some(Box::pin(tokio::time::sleep(backoff))),
                )
            }
        };
        Request {
            plan,
            ticket,
            deadline,
            expired: false,
            waker: None,
            backoff,
            node: None,
            attempt,
        }
    }

    /// The node the attempt is waiting on, once it has been sent.
    pub fn node(&self) -> Option<u8> {
        self.node
    }

    /// The deadline of the attempt (or the earliest it can be, before the backoff ends).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Marks the request as timed out and wakes it when its attempt is running and past its
    /// deadline at `now`. Returns the deadline still ahead, if any.
    pub fn expire(self: Pin<&mut Self>, now: Instant) -> Option<Instant> {
        let this = self.project();
        let deadline = (*this.deadline)?;
        if deadline > now || this.backoff.is_some() {
            return Some(deadline);
        }
        if !*this.expired {
            *this.expired = true;
            if let Some(w) = this.waker {
                w.wake_by_ref();
            }
        }
        None
    }
}

impl<F: Future<Output = Outcome>> Future for Request<'_, F> {
    type Output = Finished;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finished> {
        let this = self.project();
        let ticket = *this.ticket;
        let op_plan = &this.plan.ops[ticket.op];
        if let Some(sleep) = this.backoff {
            ready!(sleep.as_mut().poll(cx));
            *this.backoff = None;
            *this.deadline = Instant::now().checked_add(op_plan.timeout);
        }
        // Whatever is noted during this poll was noted by this attempt (module header).
        nodes::take_noted();
        let attempt = this.attempt;
        let polled = match ticket.avoid {
            Some(node) => nodes::avoiding(node, || attempt.poll(cx)),
            None => attempt.poll(cx),
        };
        if let Some(n) = nodes::take_noted() {
            *this.node = Some(n);
        }
        let outcome = match polled {
            Poll::Ready(outcome) => outcome,
            // Dropping the request drops the attempt: the driver forgets it.
            Poll::Pending if *this.expired => Err(ErrorKind::ClientTimeout),
            Poll::Pending => {
                if this.waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                    *this.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
        };
        if let Err(kind) = outcome
            && op_plan.idempotent
            && kind.is_retryable()
            && ticket.retries < this.plan.cluster.retries
        {
            // Where each retry goes, for `--log cqlpulse::engine=debug` (errors only: rare).
            tracing::debug!(
                op = ticket.op,
                index = ticket.index,
                retry = ticket.retries + 1,
                node = ?*this.node,
                kind = kind.name(),
                "retrying"
            );
            return Poll::Ready(Finished::Retry(Ticket {
                retries: ticket.retries + 1,
                avoid: this.node.filter(|_| kind.blames_the_node()),
                ..ticket
            }));
        }
        Poll::Ready(Finished::Done(Sample {
            op: ticket.op,
            index: ticket.index,
            intended: ticket.intended,
            sent: ticket.sent,
            done: Instant::now(),
            result: outcome.map(|d| d.rows),
            bytes: outcome.map_or(0, |d| d.bytes),
            retries: ticket.retries,
            node: *this.node,
            pages: outcome.map_or(0, |d| d.pages),
            verdict: outcome.map_or(Verdict::None, |d| d.verdict),
        }))
    }
}
