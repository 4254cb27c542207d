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

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

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

/// Node addresses and their indices: append-only, read without a lock.
#[derive(Debug)]
pub struct NodeTable {
    slots: [OnceLock<SocketAddr>; MAX_NODES],
    /// Slots filled; a slot below it is set (published with release ordering).
    len: AtomicUsize,
    /// Serialises the rare registration of a new address.
    adding: Mutex<()>,
}

impl Default for NodeTable {
    fn default() -> Self {
        NodeTable {
            slots: [const { OnceLock::new() }; MAX_NODES],
            len: AtomicUsize::new(0),
            adding: Mutex::new(()),
        }
    }
}

impl NodeTable {
    pub fn new() -> NodeTable {
        NodeTable::default()
    }

    /// The index of `addr`, registering it the first time it is seen. A lookup scans the few
    /// registered addresses; only a new address takes the lock.
    pub fn index(&self, addr: SocketAddr) -> u8 {
        if let Some(i) = self.find(addr, self.len.load(Ordering::Acquire)) {
            return i;
        }
        let _guard = self.adding.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Acquire);
        if let Some(i) = self.find(addr, len) {
            return i;
        }
        if len == MAX_NODES {
            return OTHER;
        }
        let _ = self.slots[len].set(addr);
        self.len.store(len + 1, Ordering::Release);
        len as u8
    }

    fn find(&self, addr: SocketAddr, len: usize) -> Option<u8> {
        self.slots[..len]
            .iter()
            .position(|s| s.get() == Some(&addr))
            .map(|i| i as u8)
    }

    /// The `node` label value of every registered index, in index order.
    pub fn names(&self) -> Vec<String> {
        let len = self.len.load(Ordering::Acquire);
        self.slots[..len]
            .iter()
            .filter_map(|s| s.get().map(SocketAddr::to_string))
            .collect()
    }
}

/// The label value of index `i`, given the registered `names`.
pub fn name_of(names: &[String], i: usize) -> &str {
    names.get(i).map_or(OTHER_NAME, String::as_str)
}

/// `u8::MAX`: nothing noted.
const NONE: u8 = u8::MAX;

thread_local! {
    static NOTED: Cell<u8> = const { Cell::new(NONE) };
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
        let picked = self.inner.pick(request, cluster);
        if let Some((node, _)) = picked {
            self.note_node(node);
        }
        picked
    }

    fn fallback<'a>(
        &'a self,
        request: &'a RoutingInfo,
        cluster: &'a ClusterState,
    ) -> FallbackPlan<'a> {
        // Only asked for when the first choice failed: one more allocation there is fine.
        Box::new(self.inner.fallback(request, cluster).inspect(|(node, _)| {
            self.note_node(node);
        }))
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
