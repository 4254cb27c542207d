//! The aggregator: the one task that merges lane reports. It keeps cumulative Prometheus
//! buckets and counters, the post-warm-up histograms behind the summary, and publishes a
//! [`Snapshot`] twice a second. Lanes never wait for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};

use super::hdrlog::HdrLog;
use super::lane::{LaneReport, histogram};
use super::recent::RecentWindow;
use super::snapshot::{Buckets, ClusterGauges, Gauges, OpSnapshot, Phase, Snapshot};
use super::summary::{Measured, Summary};
use crate::cql::ErrorKind;

/// The achieved rate is averaged over about this long: short enough to follow a rate change
/// within two seconds, long enough to smooth lane reports arriving at their own times.
const ACHIEVED_WINDOW: Duration = Duration::from_millis(1500);

/// What reaches the aggregator.
#[derive(Debug)]
pub enum Report {
    /// The run starts issuing at `at`; the summary counts from `measure_from` (after warm-up).
    Started {
        at: Instant,
        measure_from: Instant,
    },
    Lane(LaneReport),
}

/// Reads the engine's gauges and the driver's state when a snapshot is taken.
pub type GaugeSource = Box<dyn Fn() -> (Gauges, ClusterGauges) + Send + Sync>;

pub struct AggregatorConfig {
    pub workload: String,
    pub model: String,
    pub op_names: Vec<String>,
    /// Bucket upper bounds in seconds.
    pub bounds: Arc<[f64]>,
    pub sigfig: u8,
    pub publish_every: Duration,
    /// How often a status line is printed (zero = never).
    pub status_every: Duration,
    pub hdr_log: Option<HdrLog>,
}

impl AggregatorConfig {
    /// The configuration for a plan: its ops, buckets and precision, a snapshot twice a
    /// second, no status line and no interval log.
    pub fn for_plan(plan: &crate::plan::Plan) -> AggregatorConfig {
        AggregatorConfig {
            workload: plan.name.clone(),
            model: plan.load.model.name().to_string(),
            op_names: plan.ops.iter().map(|o| o.name.clone()).collect(),
            bounds: plan.metrics.buckets.clone().into(),
            sigfig: plan.metrics.hdr_significant_digits,
            publish_every: Duration::from_millis(500),
            status_every: Duration::ZERO,
            hdr_log: None,
        }
    }
}

pub struct Aggregator {
    cfg: AggregatorConfig,
    bounds_ns: Vec<u64>,
    gauges: GaugeSource,
    started: Option<Instant>,
    measure_from: Option<Instant>,
    ops: Vec<OpSnapshot>,
    lag: Buckets,
    measured: Measured,
    /// This interval's service time per op, for the interval log and the status line.
    interval: Vec<Histogram<u64>>,
    interval_start: Instant,
    /// Exact percentiles of the last second, for the snapshot (the live page).
    recent: RecentWindow,
    issued: u64,
    dropped_backlog: u64,
    dropped_draining: u64,
    lanes: Vec<LaneState>,
    peak_in_flight: u64,
    last_status: Instant,
    out: watch::Sender<Arc<Snapshot>>,
}

/// What the aggregator keeps of each lane between snapshots.
#[derive(Default)]
struct LaneState {
    in_flight: u32,
    /// The highest in-flight count reported since the last snapshot.
    peak: u32,
    completed: u64,
    /// (end of interval, completed so far) over the last [`ACHIEVED_WINDOW`]: the lane's own
    /// timestamps, so the rate does not depend on when reports happen to arrive.
    history: VecDeque<(Instant, u64)>,
}

impl LaneState {
    fn absorb(&mut self, r: &LaneReport) {
        self.in_flight = if r.last { 0 } else { r.in_flight };
        self.peak = self.peak.max(r.stats.peak_in_flight);
        self.completed += r
            .stats
            .ops
            .iter()
            .flatten()
            .map(|o| o.ok + o.error_count())
            .sum::<u64>();
        self.history.push_back((r.at, self.completed));
        while self.history.len() > 2 && r.at.duration_since(self.history[0].0) > ACHIEVED_WINDOW {
            self.history.pop_front();
        }
    }

    /// Completions per second over the window; 0 for a lane silent for longer than it.
    fn rate(&self, now: Instant) -> f64 {
        match (self.history.front(), self.history.back()) {
            (Some(&(t0, c0)), Some(&(t1, c1)))
                if t1 > t0 && now.duration_since(t1) <= ACHIEVED_WINDOW =>
            {
                (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

impl Aggregator {
    pub fn new(
        cfg: AggregatorConfig,
        gauges: GaugeSource,
    ) -> (Aggregator, watch::Receiver<Arc<Snapshot>>) {
        let bounds_ns = cfg
            .bounds
            .iter()
            .map(|s| (s * 1e9).round() as u64)
            .collect();
        let n = cfg.bounds.len();
        let ops: Vec<OpSnapshot> = cfg
            .op_names
            .iter()
            .map(|name| OpSnapshot {
                name: name.clone(),
                ok: 0,
                errors: [0; ErrorKind::COUNT],
                rows: 0,
                bytes: 0,
                retries: 0,
                service: Buckets::new(n),
                response: Buckets::new(n),
            })
            .collect();
        let now = Instant::now();
        let first = Snapshot {
            elapsed: Duration::ZERO,
            gauges: gauges().0,
            cluster: ClusterGauges::default(),
            ops: ops.clone(),
            lag: Buckets::new(n),
            bounds: cfg.bounds.clone(),
            issued: 0,
            dropped_backlog: 0,
            dropped_draining: 0,
            in_flight: 0,
            peak_in_flight: 0,
            achieved_rate: 0.0,
            recent: Default::default(),
        };
        let (out, rx) = watch::channel(Arc::new(first));
        let agg = Aggregator {
            measured: Measured::new(cfg.op_names.len(), cfg.sigfig),
            interval: (0..cfg.op_names.len())
                .map(|_| histogram(cfg.sigfig))
                .collect(),
            bounds_ns,
            gauges,
            started: None,
            measure_from: None,
            ops,
            lag: Buckets::new(n),
            interval_start: now,
            recent: RecentWindow::new(cfg.op_names.len(), cfg.sigfig),
            issued: 0,
            dropped_backlog: 0,
            dropped_draining: 0,
            lanes: Vec::new(),
            peak_in_flight: 0,
            last_status: now,
            out,
            cfg,
        };
        (agg, rx)
    }

    /// Runs until every sender of `reports` is gone (all lanes finished), then returns the
    /// summary of the run.
    pub async fn run(mut self, mut reports: mpsc::UnboundedReceiver<Report>) -> Summary {
        let mut tick = tokio::time::interval(self.cfg.publish_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = reports.recv() => match r {
                    Some(r) => self.absorb(r),
                    None => break,
                },
                _ = tick.tick() => self.publish(),
            }
        }
        self.publish();
        self.finish()
    }

    fn absorb(&mut self, r: Report) {
        let r = match r {
            Report::Started { at, measure_from } => {
                self.started = Some(at);
                self.measure_from = Some(measure_from);
                self.measured.start(measure_from);
                return;
            }
            Report::Lane(r) => r,
        };
        if r.lane >= self.lanes.len() {
            self.lanes.resize_with(r.lane + 1, LaneState::default);
        }
        self.lanes[r.lane].absorb(&r);
        let s = &r.stats;
        self.issued += s.issued;
        self.dropped_backlog += s.dropped_backlog;
        self.dropped_draining += s.dropped_draining;
        self.lag.add_hdr(&s.lag, &self.bounds_ns);
        self.recent.add_lag(&s.lag);
        for (i, op) in s.ops.iter().enumerate() {
            let Some(op) = op else { continue };
            let snap = &mut self.ops[i];
            snap.ok += op.ok;
            for (total, n) in snap.errors.iter_mut().zip(op.errors) {
                *total += n;
            }
            snap.rows += op.rows;
            snap.bytes += op.bytes;
            snap.retries += op.retries;
            snap.service.add_hdr(&op.service, &self.bounds_ns);
            snap.response.add_hdr(&op.response, &self.bounds_ns);
            // Both histograms share bounds and precision: adding cannot fail.
            let _ = self.interval[i].add(&op.service);
            self.recent.add_op(i, op);
        }
        if !r.warmup {
            self.measured.add(&r.stats);
        }
    }

    fn publish(&mut self) {
        let now = Instant::now();
        let (gauges, cluster) = (self.gauges)();
        let achieved_rate = self.lanes.iter().map(|l| l.rate(now)).sum();
        let in_flight: u64 = self.lanes.iter().map(|l| l.in_flight as u64).sum();
        let peak_now: u64 = self.lanes.iter().map(|l| l.peak as u64).sum();
        self.peak_in_flight = self.peak_in_flight.max(peak_now);
        for l in &mut self.lanes {
            l.peak = l.in_flight;
        }
        let snapshot = Snapshot {
            elapsed: self
                .started
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
            gauges,
            cluster,
            ops: self.ops.clone(),
            lag: self.lag.clone(),
            bounds: self.cfg.bounds.clone(),
            issued: self.issued,
            dropped_backlog: self.dropped_backlog,
            dropped_draining: self.dropped_draining,
            in_flight,
            peak_in_flight: self.peak_in_flight,
            achieved_rate,
            recent: self
                .recent
                .publish(now.saturating_duration_since(self.interval_start)),
        };
        if let Some(log) = &mut self.cfg.hdr_log {
            log.write(self.interval_start, now, &self.cfg.op_names, &self.interval);
        }
        for h in &mut self.interval {
            h.reset();
        }
        self.interval_start = now;
        if !self.cfg.status_every.is_zero()
            && now.duration_since(self.last_status) >= self.cfg.status_every
            && gauges.phase != Phase::Starting
        {
            self.last_status = now;
            super::summary::status_line(&snapshot);
        }
        self.out.send_replace(Arc::new(snapshot));
    }

    fn finish(mut self) -> Summary {
        let end = Instant::now();
        let snapshot = self.out.borrow().clone();
        if let Some(log) = self.cfg.hdr_log.take() {
            log.close();
        }
        self.measured.finish(end);
        Summary::new(
            &self.cfg.workload,
            &self.cfg.model,
            &self.cfg.op_names,
            &self.measured,
            &snapshot,
        )
    }
}
