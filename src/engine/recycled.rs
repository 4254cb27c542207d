//! The heap block a request's future lives in, made in place and kept for the next request.
//!
//! A request's future (the executor's, with the driver's inside it) is large: the driver's
//! alone is 3,856 bytes for an unpaged execute with the `scylla` 1.9 driver. Three costs came
//! with it, per request (BENCHMARKS.md, "Requests in reused heap blocks"):
//! - held inline in the lane's in-flight set it was copied into each entry, three times;
//! - boxed, it was made on the stack and copied into the box;
//! - a box over 1 KiB comes from mimalloc's generic path, which a lane's pattern (one request
//!   finishes, the next is sent) takes on nearly every allocation: about 470 instructions with
//!   the free.
//!
//! [`Recycled::with`] writes the future straight into its block (only its arguments are
//! written), and the in-flight entry holds a pointer. A lane sends and finishes its requests on
//! one thread, so the block a finished request leaves is there for the next one: blocks are
//! kept in a list per thread and layout, up to [`KEEP`] per list (the rest go back to the
//! allocator), so no more are kept than were once in flight. A block freed on another thread
//! (a lane moved by the runtime) joins that thread's list; nothing is shared, nothing locked.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Blocks kept per thread and layout: the default in-flight cap (1,024), and about 4 MiB of
/// request futures.
const KEEP: usize = 1024;

/// One thread's kept blocks, by layout (one layout per executor type: one in a run).
struct Spare {
    lists: Vec<(Layout, Vec<NonNull<u8>>)>,
}

impl Drop for Spare {
    fn drop(&mut self) {
        for (layout, blocks) in self.lists.drain(..) {
            for block in blocks {
                // SAFETY: every kept block was allocated with `layout` and is owned by the list.
                unsafe { dealloc(block.as_ptr(), layout) };
            }
        }
    }
}

thread_local! {
    static SPARE: RefCell<Spare> = const { RefCell::new(Spare { lists: Vec::new() }) };
}

/// A kept block of `layout`, if this thread has one.
fn take(layout: Layout) -> Option<NonNull<u8>> {
    SPARE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            s.lists.iter_mut().find(|(l, _)| *l == layout)?.1.pop()
        })
        .ok()
        .flatten()
}

/// Keeps `block` (of `layout`) for a later [`take`], or frees it when the list is full or
/// the thread is exiting.
fn give(layout: Layout, block: NonNull<u8>) {
    let kept = SPARE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let i = match s.lists.iter().position(|(l, _)| *l == layout) {
                Some(i) => i,
                None => {
                    s.lists.push((layout, Vec::new()));
                    s.lists.len() - 1
                }
            };
            let list = &mut s.lists[i].1;
            if list.len() >= KEEP {
                return false;
            }
            list.push(block);
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: `block` was allocated with `layout`, and nothing refers to it any more.
        unsafe { dealloc(block.as_ptr(), layout) };
    }
}

/// A future on the heap, in a block reused from an earlier one when the thread has one.
pub struct Recycled<F> {
    value: NonNull<F>,
}

// SAFETY: it owns its `F` as a `Box` would.
unsafe impl<F: Send> Send for Recycled<F> {}

// The value is pinned where it lives, on the heap, however the handle moves.
impl<F> Unpin for Recycled<F> {}

impl<F> Recycled<F> {
    /// `make()`'s future, written straight into its block: a large future made first and
    /// moved in would be copied whole (4 KiB for a request), where made in place only its
    /// arguments are written.
    #[inline]
    pub fn with(make: impl FnOnce() -> F) -> Recycled<F> {
        let layout = Layout::new::<F>();
        let block: NonNull<F> = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            take(layout)
                .or_else(|| {
                    // SAFETY: the layout's size is not zero.
                    NonNull::new(unsafe { alloc(layout) })
                })
                .unwrap_or_else(|| handle_alloc_error(layout))
                .cast()
        };
        // SAFETY: `block` is valid for writes of an `F` and aligned for it (its layout's).
        unsafe { block.as_ptr().write(make()) };
        Recycled { value: block }
    }
}

impl<F> Drop for Recycled<F> {
    fn drop(&mut self) {
        // SAFETY: `value` holds the `F` written in `with`, dropped only here.
        unsafe { std::ptr::drop_in_place(self.value.as_ptr()) };
        let layout = Layout::new::<F>();
        if layout.size() != 0 {
            give(layout, self.value.cast());
        }
    }
}

impl<F: Future> Future for Recycled<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the value never moves from its block until it is dropped.
        unsafe { Pin::new_unchecked(&mut *self.value.as_ptr()) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_finished_futures_block_is_reused_and_its_value_dropped() {
        let dropped = Rc::new(());
        let first = Recycled::with(|| (Rc::clone(&dropped), [0u8; 2048]));
        let at = first.value.cast::<u8>();
        drop(first);
        assert_eq!(Rc::strong_count(&dropped), 1, "the value was dropped");
        let second = Recycled::with(|| (Rc::clone(&dropped), [1u8; 2048]));
        assert_eq!(second.value.cast::<u8>(), at, "the block was reused");
        // SAFETY: test only: the value is alive.
        assert_eq!(unsafe { &*second.value.as_ptr() }.1[0], 1);
    }

    #[test]
    fn blocks_of_another_layout_are_not_reused() {
        let a = Recycled::with(|| [0u64; 300]);
        let at = a.value.cast::<u8>();
        drop(a);
        let b = Recycled::with(|| [0u32; 300]);
        assert_ne!(b.value.cast::<u8>(), at);
    }

    #[tokio::test]
    async fn it_polls_the_future_inside() {
        let answer = Recycled::with(|| async { 42 }).await;
        assert_eq!(answer, 42);
    }
}
