//! Which op indices of one write op the cluster acknowledged: what a verified read may target
//! (and what a vector search's recall may count as present).
//!
//! One [`Acked`] per watched write op. The lane [`record`](Acked::record)s each op index of
//! that write once its final outcome is known (after its retries); a reader
//! [`pick`](Acked::pick)s an index acknowledged before the call, or asks about the indices
//! acknowledged below a bound ([`acknowledged_below`](Acked::acknowledged_below),
//! [`contains`](Acked::contains)).
//!
//! **Exact.** An index is set only once its write was acknowledged, with a release store that
//! a reader's acquire load pairs with: a write that failed, timed out, is still in flight or
//! was never sent is never picked, so a read sent after `pick` cannot race its write.
//!
//! **Lock-free.** Setting a bit is one `fetch_or` on the request path; a page of bits is
//! allocated once per [`PAGE_OPS`] op numbers (a `OnceLock` initialised by whichever lane gets
//! there first), never on a request otherwise.
//!
//! **Memory, bounded and stated.** One bit per op number of this instance (the shard's own op
//! sequence, see [`IndexMap`]), writes and other ops alike: **128 KiB per 2^20 op numbers,
//! about 125 KiB per million** (so per million writes when the write is the only op, and
//! 125 KiB divided by its share of the mix otherwise), allocated 128 KiB at a time as the run
//! reaches them, plus a fixed 96 KiB directory. Failures cost nothing more: their bit stays
//! clear (and they are counted). The first [`MAX_OPS`] (2^32, 512 MiB of bits) op numbers are
//! tracked; a write past them is counted in [`untracked`](Acked::untracked) and never picked
//! (about 12 hours at 100,000 ops/s of one instance).
//!
//! **The order of acknowledgements** (recall writers only). A recall check needs what was
//! acknowledged when its query was *sent*, not when it is checked. The tracker of a write a
//! recall check reads back also logs each acknowledged position in the order recorded (4 bytes
//! per acknowledgement, in pages of 4 MiB allocated as the run reaches them), so a query's lane
//! captures that set as one number, the log's length ([`mark`](Acked::mark): one atomic load,
//! no lock, nothing allocated), and the checker reads the first `mark` entries back later
//! ([`acknowledgements`](Acked::acknowledgements)).
//!
//! **Shards and batches.** Positions are this instance's op numbers, so the bitmap stays dense
//! whatever the [`IndexMap`] (contiguous or interleaved across shards), and each instance
//! verifies its own writes. A batched write records its op index `i`; the caller expands it to
//! the rows `i * size ..` it wrote.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::plan::{IndexMap, Plan};

/// Op numbers per page of bits (2^20: 16,384 words, 128 KiB).
pub const PAGE_OPS: u64 = 1 << 20;
const PAGE_WORDS: usize = (PAGE_OPS / 64) as usize;
/// Pages in the directory: 4,096, so [`MAX_OPS`] = 2^32 op numbers.
const PAGES: usize = 4096;
/// Op numbers tracked (2^32 - 1: the order log keeps a position plus one in 32 bits); later
/// ones are counted, not tracked.
pub const MAX_OPS: u64 = PAGE_OPS * PAGES as u64 - 1;
/// Entries per page of the order log (2^20: 4 MiB), and its pages: 4,096 cover [`MAX_OPS`].
const ORDER_PAGE: u64 = 1 << 20;
/// Words a `pick` scans from its random start before giving up (4,096 op numbers): enough
/// to find a write making up 1% of the mix with a chance of failure below 1e-17.
const SCAN_WORDS: u64 = 64;

type Page = Box<[AtomicU64]>;

/// The acknowledged op indices of one write op.
pub struct Acked {
    map: IndexMap,
    pages: Box<[OnceLock<Page>]>,
    /// One past the highest position set: `pick` draws below it.
    high: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    untracked: AtomicU64,
    /// The acknowledged positions in the order recorded, for a recall writer (module header).
    order: Option<Order>,
}

/// An append-only log of positions: a slot is claimed with one `fetch_add` and then written
/// (position plus one, so 0 is a slot claimed and not written yet).
struct Order {
    len: AtomicU64,
    pages: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

/// One tracker per write op that a verified read (`verify`) or a recall check
/// (`[ops.recall]`) reads back, `None` for every other op: the lanes record into these, and the
/// readers read the same ones.
pub fn trackers(plan: &Plan) -> Vec<Option<Arc<Acked>>> {
    (0..plan.ops.len())
        .map(|w| {
            let read_back = plan
                .ops
                .iter()
                .any(|o| o.verify == Some(w) || o.recall.as_ref().is_some_and(|r| r.writer == w));
            let searched = plan
                .ops
                .iter()
                .any(|o| o.recall.as_ref().is_some_and(|r| r.writer == w));
            let map = plan.load.index_map;
            read_back.then(|| {
                Arc::new(if searched {
                    Acked::ordered(map)
                } else {
                    Acked::new(map)
                })
            })
        })
        .collect()
}

impl Acked {
    /// A tracker for a write whose op indices come from `map` (the plan's `load.index_map`).
    pub fn new(map: IndexMap) -> Acked {
        Acked {
            map,
            pages: (0..PAGES).map(|_| OnceLock::new()).collect(),
            high: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            order: None,
        }
    }

    /// A tracker that also logs the order of acknowledgements (a recall check's writer).
    pub fn ordered(map: IndexMap) -> Acked {
        let order = Order {
            len: AtomicU64::new(0),
            pages: (0..PAGES).map(|_| OnceLock::new()).collect(),
        };
        Acked {
            order: Some(order),
            ..Acked::new(map)
        }
    }

    /// Records op index `index`'s final outcome: `acknowledged` when the write succeeded
    /// (after its retries). Called once per index; an index of another shard is ignored.
    pub fn record(&self, index: u64, acknowledged: bool) {
        if !acknowledged {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(pos) = self.map.position(index).filter(|&p| p < MAX_OPS) else {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let page = self.pages[(pos / PAGE_OPS) as usize]
            .get_or_init(|| (0..PAGE_WORDS).map(|_| AtomicU64::new(0)).collect());
        let bit = pos % PAGE_OPS;
        page[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Release);
        self.high.fetch_max(pos + 1, Ordering::Release);
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        if let Some(order) = &self.order {
            let slot = order.len.fetch_add(1, Ordering::AcqRel);
            let page = order.pages[(slot / ORDER_PAGE) as usize]
                .get_or_init(|| (0..ORDER_PAGE).map(|_| AtomicU32::new(0)).collect());
            // pos < MAX_OPS < 2^32 - 1: the plus one fits, and is never 0.
            page[(slot % ORDER_PAGE) as usize].store(pos as u32 + 1, Ordering::Release);
        }
    }

    /// How many acknowledgements the order log holds now (0 without one): what a query sent
    /// after this call may count as written is the first `mark` of them
    /// ([`acknowledgements`](Acked::acknowledgements)). One atomic load.
    #[inline]
    pub fn mark(&self) -> u64 {
        self.order
            .as_ref()
            .map_or(0, |o| o.len.load(Ordering::Acquire))
    }

    /// The op indices of the acknowledgements at `slots` of the order log (`0..mark`: those
    /// recorded before [`mark`](Acked::mark) returned `mark`), in the order recorded. A slot
    /// counted and not written yet (its lane between two instructions) is waited for,
    /// yielding the thread: for the recall checker, off the request path.
    pub fn acknowledgements(&self, slots: Range<u64>) -> impl Iterator<Item = u64> + '_ {
        let order = self.order.as_ref();
        let slots = if order.is_some() { slots } else { 0..0 };
        slots.map(move |slot| {
            let order = order.expect("mark is 0 without an order log");
            loop {
                let entry = order.pages[(slot / ORDER_PAGE) as usize]
                    .get()
                    .map_or(0, |p| {
                        p[(slot % ORDER_PAGE) as usize].load(Ordering::Acquire)
                    });
                if entry != 0 {
                    return self.map.index(u64::from(entry - 1));
                }
                std::thread::yield_now();
            }
        })
    }

    /// An op index acknowledged before this call, drawn from `random` (a hash, uniform over
    /// u64): the first acknowledged one at or after a random op number, wrapping around.
    /// `None` when nothing was acknowledged yet (or none within the scan of a sparse write).
    pub fn pick(&self, random: u64) -> Option<u64> {
        let high = self.high.load(Ordering::Acquire);
        if high == 0 {
            return None;
        }
        let start = ((random as u128 * high as u128) >> 64) as u64;
        let words = high.div_ceil(64);
        let mut word = start / 64;
        // The bits below the start in its own word are looked at last, after the wrap.
        let mut mask = !0u64 << (start % 64);
        for _ in 0..=SCAN_WORDS.min(words) {
            let bits = self.word(word) & mask;
            if bits != 0 {
                let pos = word * 64 + bits.trailing_zeros() as u64;
                return Some(self.map.index(pos));
            }
            word = if word + 1 >= words { 0 } else { word + 1 };
            mask = !0;
        }
        None
    }

    /// Whether op index `index` is acknowledged (as of now).
    pub fn contains(&self, index: u64) -> bool {
        match self.map.position(index).filter(|&p| p < MAX_OPS) {
            Some(pos) => self.word(pos / 64) & (1 << (pos % 64)) != 0,
            None => false,
        }
    }

    /// The op indices acknowledged (as of each word's read) and below `bound`, ascending.
    pub fn acknowledged_below(&self, bound: u64) -> impl Iterator<Item = u64> + '_ {
        let high = self.high.load(Ordering::Acquire);
        (0..high.div_ceil(64))
            .flat_map(move |w| {
                let mut bits = self.word(w);
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let b = bits.trailing_zeros() as u64;
                        bits &= bits - 1;
                        w * 64 + b
                    })
                })
            })
            .map(|pos| self.map.index(pos))
            .take_while(move |&i| i < bound)
    }

    /// Writes acknowledged (and tracked) so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Writes that ended in an error (never picked).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Acknowledged writes past [`MAX_OPS`] op numbers: never picked.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Bytes of bits allocated so far (the directory left out).
    pub fn bytes(&self) -> usize {
        self.pages.iter().filter(|p| p.get().is_some()).count() * PAGE_WORDS * 8
    }

    /// Word `w` of the bits (0 where no page is allocated).
    fn word(&self, w: u64) -> u64 {
        let (page, i) = (w / PAGE_WORDS as u64, (w % PAGE_WORDS as u64) as usize);
        match self.pages.get(page as usize).and_then(|p| p.get()) {
            Some(p) => p[i].load(Ordering::Acquire),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mix;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn nothing_is_picked_before_an_acknowledgement() {
        let a = Acked::new(IndexMap::Contiguous { offset: 0 });
        assert_eq!(a.pick(12345), None);
        a.record(3, false);
        a.record(4, false);
        assert_eq!(a.pick(12345), None, "failed writes are never picked");
        assert_eq!(a.failed(), 2);
        a.record(7, true);
        for r in 0..1000 {
            assert_eq!(a.pick(mix(r)), Some(7));
        }
    }

    #[test]
    fn only_acknowledged_indices_are_picked_and_listed() {
        // Every third index acknowledged, every fifth failed, the rest another op's or
        // never recorded (in flight).
        let a = Acked::new(IndexMap::Contiguous { offset: 1000 });
        let mut acked = HashSet::new();
        for i in 1000..1000 + 300_000u64 {
            if i % 3 == 0 {
                a.record(i, true);
                acked.insert(i);
            } else if i % 5 == 0 {
                a.record(i, false);
            }
        }
        assert_eq!(a.acknowledged(), acked.len() as u64);
        let mut seen = HashSet::new();
        for r in 0..20_000 {
            let i = a.pick(mix(r)).expect("dense enough to always find one");
            assert!(acked.contains(&i), "picked {i}, never acknowledged");
            seen.insert(i);
        }
        assert!(seen.len() > 15_000, "picks spread out: {}", seen.len());
        let below: Vec<u64> = a.acknowledged_below(2000).collect();
        let mut expected: Vec<u64> = acked.iter().copied().filter(|&i| i < 2000).collect();
        expected.sort();
        assert_eq!(below, expected);
        assert_eq!(a.acknowledged_below(u64::MAX).count(), acked.len());
        assert!(a.contains(1002) && !a.contains(1003) && !a.contains(5));
    }

    #[test]
    fn an_interleaved_shard_keeps_its_own_indices_densely() {
        // Shard 2 of 4: indices 2, 6, 10, ...; another shard's index is ignored.
        let map = IndexMap::Interleaved {
            stride: 4,
            offset: 2,
        };
        let a = Acked::new(map);
        for k in 0..100_000 {
            a.record(map.index(k), true);
        }
        a.record(3, true);
        assert_eq!(a.untracked(), 1);
        assert!(!a.contains(3));
        assert_eq!(a.bytes(), PAGE_WORDS * 8, "100,000 op numbers fit one page");
        for r in 0..1000 {
            let i = a.pick(mix(r)).unwrap();
            assert_eq!(i % 4, 2);
            assert!(i < 400_000);
        }
        assert_eq!(
            a.acknowledged_below(40).collect::<Vec<_>>(),
            [2, 6, 10, 14, 18, 22, 26, 30, 34, 38]
        );
    }

    #[test]
    fn a_sparse_write_is_found_across_words_and_the_wrap() {
        let a = Acked::new(IndexMap::Contiguous { offset: 0 });
        a.record(0, true);
        a.record(1999, true);
        // 2,000 op numbers, two acknowledged: every pick finds one of them.
        for r in 0..1000 {
            let i = a.pick(mix(r)).unwrap();
            assert!(i == 0 || i == 1999, "{i}");
        }
        // A write too sparse for the scan: none found, never a wrong one.
        let b = Acked::new(IndexMap::Contiguous { offset: 0 });
        b.record(0, true);
        b.record(1_000_000, true);
        let found = (0..1000)
            .filter_map(|r| b.pick(mix(r)))
            .collect::<HashSet<_>>();
        assert!(found.is_subset(&HashSet::from([0, 1_000_000])));
    }

    #[test]
    fn readers_never_see_an_index_before_its_record() {
        // Writers record acknowledged indices while readers pick: every pick must be an index
        // whose record had begun (the writer publishes its progress after each record).
        let map = IndexMap::Contiguous { offset: 0 };
        let a = Arc::new(Acked::new(map));
        let progress: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        // Picks made so far: the writers wait halfway for the first, so that picks overlap
        // the records even when the reader is descheduled for as long as the writers run (it
        // once picked nothing at all, with the whole suite running on two cores).
        let seen = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (a, progress, seen) = (a.clone(), progress.clone(), seen.clone());
                std::thread::spawn(move || {
                    for k in 0..200_000u64 {
                        if k == 100_000 {
                            while seen.load(Ordering::Acquire) == 0 {
                                std::thread::yield_now();
                            }
                        }
                        let i = k * 2 + w;
                        // A third of them fail.
                        a.record(i, i % 3 != 0);
                        progress[w as usize].store(k + 1, Ordering::Release);
                    }
                })
            })
            .collect();
        // Readers pick until the writers are done (however the threads are scheduled), and at
        // least 200,000 times.
        let mut picked = 0;
        let finished = |p: &[AtomicU64; 2]| p.iter().all(|d| d.load(Ordering::Acquire) == 200_000);
        let mut r = 0u64;
        while r < 200_000 || !finished(&progress) {
            if let Some(i) = a.pick(mix(r)) {
                assert_ne!(i % 3, 0, "picked failed write {i}");
                let done = progress[(i % 2) as usize].load(Ordering::Acquire);
                assert!(i / 2 < done + 1, "picked {i} before its record");
                picked += 1;
                seen.store(picked, Ordering::Release);
            }
            r += 1;
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert!(picked > 0);
        assert_eq!(a.acknowledged() + a.failed(), 400_000);
    }

    #[test]
    fn a_mark_holds_every_acknowledgement_recorded_before_it_and_none_after() {
        // Writers record while a reader takes marks: the first `mark` acknowledgements are
        // distinct, acknowledged (no failed write), and include every write whose record had
        // ended before the mark was taken; the log never holds a failed write.
        let a = Arc::new(Acked::ordered(IndexMap::Contiguous { offset: 0 }));
        let progress: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (a, progress) = (a.clone(), progress.clone());
                std::thread::spawn(move || {
                    for k in 0..100_000u64 {
                        let i = k * 2 + w;
                        a.record(i, !i.is_multiple_of(3));
                        progress[w as usize].store(k + 1, Ordering::Release);
                    }
                })
            })
            .collect();
        let mut marks = 0;
        loop {
            let done: Vec<u64> = progress.iter().map(|p| p.load(Ordering::Acquire)).collect();
            let mark = a.mark();
            let seen: HashSet<u64> = a.acknowledgements(0..mark).collect();
            assert_eq!(seen.len() as u64, mark, "distinct");
            for (w, &d) in done.iter().enumerate() {
                for k in d.saturating_sub(50)..d {
                    let i = k * 2 + w as u64;
                    assert_eq!(
                        seen.contains(&i),
                        !i.is_multiple_of(3),
                        "{i}: recorded before the mark"
                    );
                }
            }
            assert!(seen.iter().all(|i| !i.is_multiple_of(3)));
            marks += 1;
            if done.iter().all(|&d| d == 100_000) && marks > 10 {
                break;
            }
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(a.mark(), a.acknowledged());
        let all: Vec<u64> = a.acknowledgements(0..a.mark()).collect();
        assert_eq!(all.len() as u64, 2 * 100_000 - 66_667);
        // Each writer's acknowledgements come in the order it recorded them.
        for w in 0..2 {
            let mine: Vec<u64> = all.iter().copied().filter(|i| i % 2 == w).collect();
            assert!(mine.windows(2).all(|p| p[0] < p[1]));
        }
        // A tracker without an order log marks nothing.
        let plain = Acked::new(IndexMap::Contiguous { offset: 0 });
        plain.record(1, true);
        assert_eq!((plain.mark(), plain.acknowledgements(0..5).count()), (0, 0));
    }
}
