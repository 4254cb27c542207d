//! The live page's feed: one point a second, taken from the published snapshot, kept in a
//! ring of fixed size ([`CAPACITY`] points) so memory stays flat however long the daemon runs.
//! Served as `GET /api/history?since=SEQ`: the points newer than `SEQ` (all without it), with
//! the op and error-kind names they refer to by position.
//!
//! Another reader of the snapshots, like `/metrics`: the recorder is a task of its own, the
//! ring's lock is taken once a second by it and once per request by readers, never by a lane.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::App;
use crate::cql::ErrorKind;
use crate::daemon::Handle;
use crate::stats::{ClusterGauges, Percentiles, Snapshot};

/// Points kept: 10 minutes at one a second (about 0.5 KiB each with two ops).
pub const CAPACITY: usize = 600;
/// Time between points.
pub const EVERY: Duration = Duration::from_secs(1);

/// One second of the run. Counters are cumulative since the start (the page takes
/// differences); percentiles are exact, over the last second.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Position in the feed: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// Unix time, in seconds.
    pub time: f64,
    pub elapsed_seconds: f64,
    pub phase: &'static str,
    pub paused: bool,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub in_flight: u64,
    pub in_flight_limit: u64,
    pub issued: u64,
    pub dropped: u64,
    /// Per error kind, in the order of the feed's `error_kinds`.
    pub errors: [u64; ErrorKind::COUNT],
    pub retries: u64,
    pub cluster: ClusterGauges,
    pub schedule_lag: Option<Percentiles>,
    /// Per op, in the order of the feed's `ops`.
    pub ops: Vec<PointOp>,
    /// This process's CPU seconds so far and resident memory.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointOp {
    pub ok: u64,
    pub errors: u64,
    pub service: Option<Percentiles>,
    pub response: Option<Percentiles>,
    /// Recall@k of the latest checked queries, for an ANN op with `[ops.recall]`.
    pub recall: Option<f64>,
}

impl Point {
    pub fn of(seq: u64, time: SystemTime, s: &Snapshot) -> Point {
        let errors = ErrorKind::ALL.map(|k| s.errors_of(k));
        let process = s.process.unwrap_or_default();
        Point {
            seq,
            time: time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            elapsed_seconds: s.elapsed.as_secs_f64(),
            phase: s.gauges.phase.name(),
            paused: s.gauges.paused,
            target_rate: s.gauges.target_rate,
            achieved_rate: s.achieved_rate,
            in_flight: s.in_flight,
            in_flight_limit: s.gauges.in_flight_limit,
            issued: s.issued,
            dropped: s.dropped_backlog,
            errors,
            retries: s.ops.iter().map(|o| o.retries).sum(),
            cluster: s.cluster.clone(),
            schedule_lag: s.recent.schedule_lag.clone(),
            ops: s
                .ops
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let recent = s.recent.ops.get(i);
                    PointOp {
                        ok: o.ok,
                        errors: o.errors_total(),
                        service: recent.and_then(|r| r.service.clone()),
                        response: recent.and_then(|r| r.response.clone()),
                        recall: o.recall.as_ref().and_then(|r| r.recent_recall),
                    }
                })
                .collect(),
            cpu_seconds: process.cpu_seconds,
            rss_bytes: process.resident_bytes,
        }
    }
}

/// The ring: at most `capacity` points, the oldest dropped first.
pub struct History {
    capacity: usize,
    points: Mutex<VecDeque<Arc<Point>>>,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            points: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Point>>> {
        // A panic while holding the lock leaves a valid ring: keep serving it.
        self.points.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number the next point gets.
    pub fn next_seq(&self) -> u64 {
        self.lock().back().map_or(1, |p| p.seq + 1)
    }

    pub fn push(&self, point: Point) {
        let mut points = self.lock();
        if points.len() == self.capacity {
            points.pop_front();
        }
        points.push_back(Arc::new(point));
    }

    /// The points with a sequence number above `since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<Arc<Point>> {
        let points = self.lock();
        // Sequence numbers are consecutive: the first wanted point's position is arithmetic.
        let first = points.front().map_or(0, |p| p.seq);
        let skip = since.saturating_add(1).saturating_sub(first) as usize;
        points.iter().skip(skip).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Records a point every [`EVERY`] until `stop` is cancelled.
pub async fn record(history: Arc<History>, handle: Handle, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let snapshot = handle.snapshot();
                history.push(Point::of(history.next_seq(), SystemTime::now(), &snapshot));
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    since: Option<u64>,
}

/// `GET /api/history?since=SEQ`.
pub async fn route(
    State(app): State<App>,
    query: Result<Query<Since>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let since = match query {
        Ok(Query(q)) => q.since.unwrap_or(0),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": format!("invalid query: {e}; expected ?since=<sequence number>")})),
            )
                .into_response();
        }
    };
    let snapshot = app.handle.snapshots.borrow().clone();
    let points = app.history.since(since);
    // Serialised straight from the points: no JSON tree of the whole ring in between.
    axum::Json(Feed {
        capacity: app.history.capacity,
        interval_seconds: EVERY.as_secs_f64(),
        ops: snapshot.ops.iter().map(|o| o.name.as_str()).collect(),
        error_kinds: ErrorKind::ALL.iter().map(|k| k.name()).collect(),
        points: points.iter().map(|p| &**p).collect(),
    })
    .into_response()
}

/// The body of `GET /api/history`.
#[derive(Serialize)]
struct Feed<'a> {
    capacity: usize,
    interval_seconds: f64,
    ops: Vec<&'a str>,
    error_kinds: Vec<&'static str>,
    points: Vec<&'a Point>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(seq: u64) -> Point {
        Point {
            seq,
            time: 0.0,
            elapsed_seconds: seq as f64,
            phase: "running",
            paused: false,
            target_rate: 0.0,
            achieved_rate: 0.0,
            in_flight: 0,
            in_flight_limit: 0,
            issued: seq * 10,
            dropped: 0,
            errors: [0; ErrorKind::COUNT],
            retries: 0,
            cluster: ClusterGauges::default(),
            schedule_lag: None,
            ops: Vec::new(),
            cpu_seconds: 0.0,
            rss_bytes: 0,
        }
    }

    fn push_next(h: &History) {
        let seq = h.next_seq();
        h.push(point(seq));
    }

    #[test]
    fn ring_keeps_the_newest_capacity_points() {
        let h = History::new(3);
        assert!(h.is_empty());
        assert_eq!(h.next_seq(), 1);
        for _ in 0..10 {
            push_next(&h);
        }
        assert_eq!(h.len(), 3);
        let seqs: Vec<u64> = h.since(0).iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [8, 9, 10]);
        assert_eq!(h.next_seq(), 11);
    }

    #[test]
    fn since_returns_only_newer_points() {
        let h = History::new(5);
        for _ in 0..7 {
            push_next(&h);
        }
        let seqs = |since| h.since(since).iter().map(|p| p.seq).collect::<Vec<_>>();
        assert_eq!(seqs(0), [3, 4, 5, 6, 7]);
        assert_eq!(seqs(5), [6, 7]);
        assert_eq!(seqs(7), Vec::<u64>::new());
        assert_eq!(seqs(u64::MAX), Vec::<u64>::new());
        // A reader further behind than the ring gets what is left.
        assert_eq!(seqs(1), [3, 4, 5, 6, 7]);
    }

    #[test]
    fn point_sums_errors_by_kind_over_ops() {
        use crate::stats::{Buckets, Gauges, OpSnapshot, Phase};
        let mut errors = [0; ErrorKind::COUNT];
        errors[ErrorKind::WriteTimeout.index()] = 2;
        let op = |name: &str| OpSnapshot {
            ok: 5,
            errors,
            retries: 1,
            ..OpSnapshot::empty(name, 1)
        };
        let s = Snapshot {
            nodes: Vec::new(),
            elapsed: Duration::from_secs(2),
            gauges: Gauges {
                phase: Phase::Running,
                paused: false,
                target_rate: 10.0,
                in_flight_limit: 4,
                reloads_applied: 0,
                reloads_rejected: 0,
                ..Gauges::default()
            },
            cluster: ClusterGauges::default(),
            ops: vec![op("a"), op("b")],
            lag: Buckets::new(1),
            bounds: vec![0.01].into(),
            issued: 14,
            dropped_backlog: 1,
            not_sent_run_ended: 2,
            in_flight: 3,
            peak_in_flight: 4,
            achieved_rate: 7.0,
            recent: Default::default(),
            process: crate::process::read(),
        };
        let p = Point::of(1, SystemTime::UNIX_EPOCH + Duration::from_secs(5), &s);
        assert_eq!(p.errors[ErrorKind::WriteTimeout.index()], 4);
        assert_eq!(p.retries, 2);
        assert_eq!(p.dropped, 1);
        assert_eq!(p.time, 5.0);
        assert_eq!(p.ops.len(), 2);
        assert_eq!((p.ops[1].ok, p.ops[1].errors), (5, 2));
        assert_eq!(p.ops[0].service, None, "no recent window: no percentiles");
    }
}
