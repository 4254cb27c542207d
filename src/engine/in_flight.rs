//! The requests a lane has in flight: yielded in completion order, or in submission order for
//! the pipeline model, whose defining trait is waiting for the oldest. Unlike the `futures`
//! collections, both orders let the lane reach every request (for its deadline).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use pin_project_lite::pin_project;

pub enum InFlight<F: Future> {
    Unordered(FuturesUnordered<F>),
    Ordered(Ordered<F>),
}

impl<F: Future> InFlight<F> {
    pub fn new(ordered: bool) -> InFlight<F> {
        if ordered {
            InFlight::Ordered(Ordered {
                set: FuturesUnordered::new(),
                next_in: 0,
                next_out: 0,
                done: VecDeque::new(),
            })
        } else {
            InFlight::Unordered(FuturesUnordered::new())
        }
    }

    pub fn push(&mut self, f: F) {
        match self {
            InFlight::Unordered(s) => s.push(f),
            InFlight::Ordered(o) => {
                o.set.push(Tagged { seq: o.next_in, f });
                o.next_in += 1;
            }
        }
    }

    /// Requests sent and not yet yielded (in order: including finished ones waiting for an
    /// older one).
    pub fn len(&self) -> usize {
        match self {
            InFlight::Unordered(s) => s.len(),
            InFlight::Ordered(o) => (o.next_in - o.next_out) as usize,
        }
    }

    /// Calls `visit` with every request still running.
    pub fn each(&mut self, mut visit: impl FnMut(Pin<&mut F>)) {
        match self {
            InFlight::Unordered(s) => Pin::new(s).iter_pin_mut().for_each(visit),
            InFlight::Ordered(o) => Pin::new(&mut o.set)
                .iter_pin_mut()
                .for_each(|t| visit(t.project().f)),
        }
    }
}

// The results waiting in order are never pinned; the futures are, in their own heap nodes.
impl<F: Future> Unpin for InFlight<F> {}

impl<F: Future> Stream for InFlight<F> {
    type Item = F::Output;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        // Both variants are Unpin: their futures live in heap nodes of their own.
        match self.get_mut() {
            InFlight::Unordered(s) => s.poll_next_unpin(cx),
            InFlight::Ordered(o) => o.poll_next(cx),
        }
    }
}

/// Submission order over a [`FuturesUnordered`]: results that finish before an older one
/// wait in a ring indexed by sequence number (no allocation once it has grown to the window).
pub struct Ordered<F: Future> {
    set: FuturesUnordered<Tagged<F>>,
    next_in: u64,
    next_out: u64,
    /// Slot `i` holds the result of request `next_out + i`, once it has finished.
    done: VecDeque<Option<F::Output>>,
}

impl<F: Future> Ordered<F> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        loop {
            if let Some(Some(_)) = self.done.front() {
                self.next_out += 1;
                return Poll::Ready(self.done.pop_front().flatten());
            }
            match self.set.poll_next_unpin(cx) {
                Poll::Ready(Some((seq, out))) => {
                    let slot = (seq - self.next_out) as usize;
                    if self.done.len() <= slot {
                        self.done.resize_with(slot + 1, || None);
                    }
                    self.done[slot] = Some(out);
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

pin_project! {
    /// A future with its submission number.
    pub struct Tagged<F> {
        seq: u64,
        #[pin]
        f: F,
    }
}

impl<F: Future> Future for Tagged<F> {
    type Output = (u64, F::Output);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.f.poll(cx).map(|out| (*this.seq, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Finishes after `ms` on the paused clock and yields `id`.
    async fn after(ms: u64, id: u32) -> u32 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        id
    }

    #[tokio::test(start_paused = true)]
    async fn ordered_yields_in_submission_order_and_unordered_in_completion_order() {
        for (ordered, want) in [(true, vec![0, 1, 2, 3]), (false, vec![2, 1, 3, 0])] {
            let mut set = InFlight::new(ordered);
            for (id, ms) in [(0, 40), (1, 20), (2, 10), (3, 30)] {
                set.push(Box::pin(after(ms, id)));
            }
            assert_eq!(set.len(), 4);
            let mut got = Vec::new();
            while let Some(id) = set.next().await {
                got.push(id);
            }
            assert_eq!(got, want, "ordered = {ordered}");
            assert_eq!(set.len(), 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ordered_counts_finished_requests_until_the_oldest_is_yielded() {
        let mut set = InFlight::new(true);
        set.push(Box::pin(after(50, 0)));
        set.push(Box::pin(after(10, 1)));
        let mut visited = 0;
        set.each(|_| visited += 1);
        assert_eq!(visited, 2);
        // Request 1 finishes first but waits for request 0: still two in the window.
        let first = tokio::time::timeout(Duration::from_millis(30), set.next()).await;
        assert!(first.is_err());
        assert_eq!(set.len(), 2);
        assert_eq!(set.next().await, Some(0));
        assert_eq!(set.next().await, Some(1));
        assert_eq!(set.next().await, None);
    }
}
