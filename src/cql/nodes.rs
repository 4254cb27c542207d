//! Which node coordinated each request, learned without a lock on the request path.
//!
//! Nodes get small indices in a [`NodeTable`]: the first [`MAX_NODES`] addresses seen keep
//! their own index, any further node shares [`OTHER`], so the `node` label stays bounded.
//! Lanes keep per-node counters in a plain array indexed by it.
//!
//! The driver does not report the coordinator of a failed request, and a request the engine
//! times out is dropped before any answer. What it does do is choose the node inside the
//! poll that sends the request, through the load balancing policy. [`NodeTracking`] wraps the
//! driver's default policy and notes, in a thread-local slot, each node it hands out (the
//! first choice, then each fallback the driver moves on to when a node has no connection)
//! and the node of each attempt that completes. A request clears the slot, polls its driver
//! future and reads the slot (see [`engine::request`](crate::engine)): whatever was noted in
//! between was noted by its own future, because a poll runs on one thread and nothing else
//! runs on that thread meanwhile. The last node noted is the one the request is waiting on,
//! or that answered it.
//!
//! The same thread-local channel carries one thing the other way: the node a retry should
//! keep away from ([`avoiding`]). A retry after a client timeout or a broken connection is a
//! new request to the driver, whose default policy picks a random live replica: a node that
//! stopped answering without closing its connections is still live to the driver, so one
//! retry in three went back to it and waited out the timeout again. Around the poll that
//! sends such a retry, the node of the failed attempt is set, and [`NodeTracking`] moves it to
//! the end of the plan: the retry goes to the next replica, and the node is tried last.

use std::cell::Cell;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

use scylla::cluster::{ClusterState, NodeRef};
use scylla::errors::{RequestAttemptError, RequestError};
use scylla::observability::history::{AttemptId, HistoryListener, RequestId, SpeculativeId};
use scylla::policies::load_balancing::{FallbackPlan, LoadBalancingPolicy, RoutingInfo};
use scylla::policies::retry::RetryDecision;
use scylla::routing::Shard;

/// Nodes with their own `node` label value; the rest share [`OTHER`].
pub const MAX_NODES: usize = 64;
/// The index shared by every node past the first [`MAX_NODES`]: `node="other"`.
pub const OTHER: u8 = MAX_NODES as u8;
/// Slots a per-node table needs: one per node, and `other`.
pub const SLOTS: usize = MAX_NODES + 1;
/// The label value of [`OTHER`].
pub const OTHER_NAME: &str = "other";
/// The label value [`NodeTable::names`] gives a free slot (a node forgotten, not yet reused).
pub const FREE: &str = "";

/// Node addresses and their indices, read without a lock. A node that has left the cluster's
/// metadata for longer than a grace period is forgotten ([`NodeTable::forget_absent`]) and
/// its slot reused, so that addresses that change (pods restarted on Kubernetes) neither
/// leave `up = 0` series behind forever nor push new nodes into `other`.
#[derive(Debug)]
pub struct NodeTable {
    slots: [Slot; MAX_NODES],
    /// Slots ever used; every slot at or past it is free.
    len: AtomicUsize,
    /// Serialises changes (rare: a new address, a node forgotten), and holds since when
    /// each registered address has been missing from the cluster's metadata.
    changing: Mutex<[Option<Instant>; MAX_NODES]>,
}

impl Default for NodeTable {
    fn default() -> Self {
        NodeTable {
            slots: [const { Slot::new() }; MAX_NODES],
            len: AtomicUsize::new(0),
            changing: Mutex::new([None; MAX_NODES]),
        }
    }
}

impl NodeTable {
    pub fn new() -> NodeTable {
        NodeTable::default()
    }

    /// The index of `addr`, registering it the first time it is seen (in the first free
    /// slot). A lookup scans the few registered addresses; only a new address takes the lock.
    pub fn index(&self, addr: SocketAddr) -> u8 {
        if let Some(i) = self.find(addr, self.len.load(Ordering::Acquire)) {
            return i;
        }
        let _guard = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Acquire);
        if let Some(i) = self.find(addr, len) {
            return i;
        }
        let free = self.slots[..len].iter().position(|s| s.load().is_none());
        let i = match free {
            Some(i) => i,
            None if len < MAX_NODES => {
                self.len.store(len + 1, Ordering::Release);
                len
            }
            None => return OTHER,
        };
        self.slots[i].store(Some(addr));
        i as u8
    }

    /// Compares the slots' words with `addr` encoded once, not each slot decoded into an
    /// address: it runs twice per request (the pick and the completion).
    fn find(&self, addr: SocketAddr, len: usize) -> Option<u8> {
        let want = encode(Some(addr));
        self.slots[..len]
            .iter()
            .position(|s| s.words() == want)
            .map(|i| i as u8)
    }

    /// Given the addresses in the cluster's metadata at `now`, forgets every registered
    /// address that has been missing from it for longer than `grace`, freeing its slot.
    /// Returns the addresses forgotten. The grace period must outlast a request's timeout, so
    /// that no request is still waiting on a node when its slot goes to another.
    pub fn forget_absent(
        &self,
        present: &[SocketAddr],
        now: Instant,
        grace: Duration,
    ) -> Vec<SocketAddr> {
        let mut missing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Acquire);
        let mut forgotten = Vec::new();
        for (slot, since) in self.slots[..len].iter().zip(missing.iter_mut()) {
            let Some(addr) = slot.load() else {
                continue;
            };
            if present.contains(&addr) {
                *since = None;
                continue;
            }
            let since = *since.get_or_insert(now);
            if now.saturating_duration_since(since) > grace {
                slot.store(None);
                forgotten.push(addr);
            }
        }
        for (slot, since) in self.slots[..len].iter().zip(missing.iter_mut()) {
            if slot.load().is_none() {
                *since = None;
            }
        }
        forgotten
    }

    /// The `node` label value of every index up to the last one used, in index order; a free
    /// slot's is [`FREE`].
    pub fn names(&self) -> Vec<String> {
        let len = self.len.load(Ordering::Acquire);
        self.slots[..len]
            .iter()
            .map(|s| s.load().map_or_else(String::new, |a| a.to_string()))
            .collect()
    }
}

/// One address, or none, read without a lock: a sequence lock over atomics. The writer
/// (holding the table's lock) makes `version` odd, writes, and makes it even again; a reader
/// retries when it saw an odd version or a change, which happens only while a node is
/// registered or forgotten.
#[derive(Debug)]
struct Slot {
    version: AtomicU64,
    /// The IP address as IPv6 (an IPv4 address mapped).
    ip: [AtomicU64; 2],
    /// The port, bit 16 set for an IPv4 address, bit 17 set when the slot holds an address.
    meta: AtomicU64,
}

const V4: u64 = 1 << 16;
const USED: u64 = 1 << 17;

impl Slot {
    const fn new() -> Slot {
        Slot {
            version: AtomicU64::new(0),
            ip: [AtomicU64::new(0), AtomicU64::new(0)],
            meta: AtomicU64::new(0),
        }
    }

    fn load(&self) -> Option<SocketAddr> {
        let (hi, lo, meta) = self.words();
        decode(hi, lo, meta)
    }

    /// The slot's words as [`encode`] wrote them, read consistently.
    #[inline]
    fn words(&self) -> (u64, u64, u64) {
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = self.ip[0].load(Ordering::Relaxed);
            let lo = self.ip[1].load(Ordering::Relaxed);
            let meta = self.meta.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == before {
                return (hi, lo, meta);
            }
        }
    }

    /// Only with the table's lock held: one writer at a time.
    fn store(&self, addr: Option<SocketAddr>) {
        let (hi, lo, meta) = encode(addr);
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.ip[0].store(hi, Ordering::Relaxed);
        self.ip[1].store(lo, Ordering::Relaxed);
        self.meta.store(meta, Ordering::Relaxed);
        self.version.store(v + 2, Ordering::Release);
    }
}

fn encode(addr: Option<SocketAddr>) -> (u64, u64, u64) {
    let Some(addr) = addr else {
        return (0, 0, 0);
    };
    // An IPv4 address as its IPv4-mapped IPv6 address (::ffff:a.b.c.d), written directly:
    // this runs twice per request (see `NodeTable::find`).
    let (hi, lo, v4) = match addr.ip() {
        IpAddr::V4(v4) => (0, 0xffff_0000_0000 | u64::from(u32::from(v4)), V4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            ((bits >> 64) as u64, bits as u64, 0)
        }
    };
    (hi, lo, USED | v4 | u64::from(addr.port()))
}

fn decode(hi: u64, lo: u64, meta: u64) -> Option<SocketAddr> {
    if meta & USED == 0 {
        return None;
    }
    let v6 = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
    let ip = match (meta & V4 != 0, v6.to_ipv4_mapped()) {
        (true, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    };
    Some(SocketAddr::new(ip, meta as u16))
}

/// The label value of index `i`, given the registered `names` ([`FREE`] for a free slot).
pub fn name_of(names: &[String], i: usize) -> &str {
    names.get(i).map_or(OTHER_NAME, String::as_str)
}

/// `u8::MAX`: nothing noted.
const NONE: u8 = u8::MAX;

thread_local! {
    static NOTED: Cell<u8> = const { Cell::new(NONE) };
    static AVOID: Cell<u8> = const { Cell::new(NONE) };
}

/// Runs `poll` (the poll of a request's attempt) with node `index` set as the node to try
/// last on this thread, and clears it after.
#[inline]
pub fn avoiding<T>(index: u8, poll: impl FnOnce() -> T) -> T {
    AVOID.with(|c| c.set(index));
    let out = poll();
    AVOID.with(|c| c.set(NONE));
    out
}

/// The node the request being polled on this thread should try last, if any.
#[inline]
fn avoided() -> Option<u8> {
    let i = AVOID.with(Cell::get);
    (i != NONE).then_some(i)
}

/// Notes that the request being polled on this thread went to node `index`.
#[inline]
pub fn note(index: u8) {
    NOTED.with(|c| c.set(index));
}

/// The node noted on this thread since the last call, if any; clears the slot.
#[inline]
pub fn take_noted() -> Option<u8> {
    let i = NOTED.with(|c| c.replace(NONE));
    (i != NONE).then_some(i)
}

fn address(node: NodeRef<'_>) -> SocketAddr {
    SocketAddr::new(node.address.ip(), node.address.port())
}

/// The driver's load balancing policy, noting the node of each choice and each completed
/// attempt for the request being polled (see the module header). Routing is the inner
/// policy's, unchanged.
#[derive(Debug)]
pub struct NodeTracking {
    inner: std::sync::Arc<dyn LoadBalancingPolicy>,
    table: std::sync::Arc<NodeTable>,
}

impl NodeTracking {
    pub fn new(
        inner: std::sync::Arc<dyn LoadBalancingPolicy>,
        table: std::sync::Arc<NodeTable>,
    ) -> NodeTracking {
        NodeTracking { inner, table }
    }

    fn note_node(&self, node: NodeRef<'_>) {
        note(self.table.index(address(node)));
    }
}

impl LoadBalancingPolicy for NodeTracking {
    fn pick<'a>(
        &'a self,
        request: &'a RoutingInfo,
        cluster: &'a ClusterState,
    ) -> Option<(NodeRef<'a>, Option<Shard>)> {
        let picked = self.inner.pick(request, cluster)?;
        let index = self.table.index(address(picked.0));
        if avoided() == Some(index) {
            // No first choice: the driver then takes the whole plan from `fallback`.
            return None;
        }
        note(index);
        Some(picked)
    }

    fn fallback<'a>(
        &'a self,
        request: &'a RoutingInfo,
        cluster: &'a ClusterState,
    ) -> FallbackPlan<'a> {
        // Only asked for when the first choice failed or is avoided: allocations are fine.
        let plan = self.inner.fallback(request, cluster);
        let plan: FallbackPlan<'a> = match avoided() {
            None => plan,
            Some(avoid) => Box::new(tried_last(plan, |(node, _)| {
                self.table.index(address(node)) == avoid
            })),
        };
        Box::new(plan.inspect(|(node, _)| self.note_node(node)))
    }

    fn on_request_success(&self, request: &RoutingInfo, latency: Duration, node: NodeRef<'_>) {
        self.inner.on_request_success(request, latency, node);
        self.note_node(node);
    }

    fn on_request_failure(
        &self,
        request: &RoutingInfo,
        latency: Duration,
        node: NodeRef<'_>,
        error: &RequestAttemptError,
    ) {
        self.inner.on_request_failure(request, latency, node, error);
        self.note_node(node);
    }

    fn name(&self) -> String {
        format!("NodeTracking({})", self.inner.name())
    }
}

/// `plan` with the items `avoided` says are to be avoided moved to its end, the order
/// otherwise kept: an avoided node is still tried when nothing else is left.
fn tried_last<T>(
    plan: impl Iterator<Item = T>,
    avoided: impl Fn(&T) -> bool,
) -> std::vec::IntoIter<T> {
    let (mut first, last): (Vec<T>, Vec<T>) = plan.partition(|t| !avoided(t));
    first.extend(last);
    first.into_iter()
}

/// What a session reports per node and per speculative execution, shared by the driver's
/// policies and the aggregator.
#[derive(Debug, Default, Clone)]
pub struct Tracking {
    pub nodes: std::sync::Arc<NodeTable>,
    pub speculative: std::sync::Arc<SpeculativeCounter>,
}

/// Counts the speculative executions the driver starts. Set as the history listener of the
/// ops' statements only when speculative execution is on (the driver starts one per extra
/// fiber, and reports nothing else that counts them); every other event is ignored.
#[derive(Debug, Default)]
pub struct SpeculativeCounter {
    started: AtomicU64,
}

impl SpeculativeCounter {
    pub fn get(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

impl HistoryListener for SpeculativeCounter {
    fn log_request_start(&self) -> RequestId {
        RequestId(0)
    }
    fn log_request_success(&self, _: RequestId) {}
    fn log_request_error(&self, _: RequestId, _: &RequestError) {}
    fn log_new_speculative_fiber(&self, _: RequestId) -> SpeculativeId {
        self.started.fetch_add(1, Ordering::Relaxed);
        SpeculativeId(0)
    }
    fn log_attempt_start(
        &self,
        _: RequestId,
        _: Option<SpeculativeId>,
        _: SocketAddr,
    ) -> AttemptId {
        AttemptId(0)
    }
    fn log_attempt_success(&self, _: AttemptId) {}
    fn log_attempt_error(&self, _: AttemptId, _: &RequestAttemptError, _: &RetryDecision) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, (i / 250) as u8, (i % 250) as u8 + 1], 9042))
    }

    #[test]
    fn indices_are_stable_and_bounded() {
        let t = NodeTable::new();
        assert_eq!(t.index(addr(0)), 0);
        assert_eq!(t.index(addr(1)), 1);
        assert_eq!(t.index(addr(0)), 0, "a known address keeps its index");
        for i in 2..MAX_NODES {
            assert_eq!(t.index(addr(i)) as usize, i);
        }
        assert_eq!(t.index(addr(MAX_NODES)), OTHER);
        assert_eq!(t.index(addr(MAX_NODES + 7)), OTHER);
        let names = t.names();
        assert_eq!(names.len(), MAX_NODES);
        assert_eq!(names[1], "127.0.0.2:9042");
        assert_eq!(name_of(&names, OTHER as usize), OTHER_NAME);
    }

    #[test]
    fn addresses_round_trip_through_a_slot() {
        let slot = Slot::new();
        assert_eq!(slot.load(), None);
        for a in [
            "127.0.3.1:9042",
            "[::1]:19042",
            "[::ffff:10.0.0.1]:9042",
            "10.1.2.3:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            slot.store(Some(a));
            assert_eq!(slot.load(), Some(a), "{a}");
        }
        slot.store(None);
        assert_eq!(slot.load(), None);
    }

    #[test]
    fn a_node_gone_past_the_grace_period_is_forgotten_and_its_slot_reused() {
        let t = NodeTable::new();
        let grace = Duration::from_secs(60);
        let t0 = Instant::now();
        let (a, b, c) = (addr(0), addr(1), addr(2));
        assert_eq!((t.index(a), t.index(b)), (0, 1));
        // b leaves the metadata: kept through the grace period, then forgotten.
        assert!(t.forget_absent(&[a], t0, grace).is_empty());
        assert!(t.forget_absent(&[a], t0 + grace, grace).is_empty());
        assert_eq!(t.index(b), 1, "still known within the grace period");
        assert_eq!(t.forget_absent(&[a], t0 + grace * 2, grace), [b]);
        assert_eq!(t.names(), ["127.0.0.1:9042", FREE]);
        // A new address takes the free slot; the known one keeps its index.
        assert_eq!(t.index(c), 1);
        assert_eq!(t.index(a), 0);
        assert_eq!(t.names(), ["127.0.0.1:9042", "127.0.0.3:9042"]);
        // Back in the metadata before the grace period ends: the clock starts over.
        assert!(t.forget_absent(&[a], t0 + grace * 3, grace).is_empty());
        assert!(t.forget_absent(&[a, c], t0 + grace * 4, grace).is_empty());
        assert!(t.forget_absent(&[a], t0 + grace * 5, grace).is_empty());
        assert_eq!(t.index(c), 1);
    }

    #[test]
    fn a_full_table_makes_room_for_new_nodes_as_old_ones_leave() {
        let t = NodeTable::new();
        let grace = Duration::from_secs(1);
        let t0 = Instant::now();
        for i in 0..MAX_NODES {
            assert_eq!(t.index(addr(i)) as usize, i);
        }
        assert_eq!(t.index(addr(MAX_NODES)), OTHER, "full");
        // A rolling restart with new addresses: the old ones leave the metadata.
        let present: Vec<_> = (MAX_NODES..MAX_NODES + 8).map(addr).collect();
        t.forget_absent(&present, t0, grace);
        assert_eq!(
            t.forget_absent(&present, t0 + grace * 2, grace).len(),
            MAX_NODES
        );
        for (i, a) in present.iter().enumerate() {
            assert_eq!(t.index(*a) as usize, i, "{a} takes a freed slot");
        }
        assert_eq!(t.names().iter().filter(|n| n.as_str() != FREE).count(), 8);
    }

    #[test]
    fn readers_never_see_a_torn_address_while_slots_change() {
        let t = std::sync::Arc::new(NodeTable::new());
        let (a, b) = (addr(0), addr(1));
        t.index(a);
        let reader = {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    let seen = t.slots[0].load();
                    assert!(
                        seen.is_none() || seen == Some(a) || seen == Some(b),
                        "{seen:?}"
                    );
                }
            })
        };
        for i in 0..20_000 {
            let _guard = t.changing.lock().unwrap();
            t.slots[0].store(match i % 3 {
                0 => Some(b),
                1 => None,
                _ => Some(a),
            });
        }
        reader.join().unwrap();
    }

    #[test]
    fn an_avoided_node_is_tried_last_and_only_while_avoiding() {
        let plan = || [3u8, 1, 2].into_iter();
        let order: Vec<u8> = tried_last(plan(), |n| *n == 3).collect();
        assert_eq!(order, [1, 2, 3], "the next replicas first, the node last");
        let order: Vec<u8> = tried_last(plan(), |n| *n == 9).collect();
        assert_eq!(order, [3, 1, 2], "nothing avoided: the plan as it was");
        assert_eq!(avoided(), None);
        assert_eq!(avoiding(7, avoided), Some(7));
        assert_eq!(avoided(), None, "cleared after the poll");
    }

    #[test]
    fn the_noted_node_is_read_once_and_per_thread() {
        assert_eq!(take_noted(), None);
        note(3);
        note(5);
        std::thread::spawn(|| assert_eq!(take_noted(), None))
            .join()
            .unwrap();
        assert_eq!(take_noted(), Some(5), "the last node noted wins");
        assert_eq!(take_noted(), None);
    }
}
