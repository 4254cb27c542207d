//! The aggregator: the one task that merges lane reports. It keeps cumulative Prometheus
//! buckets and counters, the post-warm-up histograms behind the summary, and publishes a
//! [`Snapshot`] twice a second. Lanes never wait for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::{Notify, mpsc, watch};

use super::hdrlog::HdrLog;
use super::lane::{LaneReport, Slowest, histogram};
use super::nodes::NodeTotals;
use super::recall::RecallStats;
use super::recent::RecentWindow;
use super::snapshot::{Buckets, ClusterGauges, Exemplar, Gauges, OpSnapshot, Phase, Snapshot};
use super::summary::{Measured, Summary};

/// The achieved rate is averaged over about this long: short enough to follow a rate change
/// within two seconds, long enough to smooth lane reports arriving at their own times.
const ACHIEVED_WINDOW: Duration = Duration::from_millis(1500);

/// Reports the channel to the aggregator holds. Bounded: a report carries a lane's interval
/// histograms (a few hundred KB), so a slow aggregator must not let them pile up. A lane that
/// finds it full keeps its interval and sends it with the next one (coalesced: counts are
/// never lost, the request path never waits); only a lane's last report waits for room.
pub const REPORTS_CAPACITY: usize = 32;

/// The channel from the engine to the aggregator, [`REPORTS_CAPACITY`] deep.
pub fn report_channel() -> (mpsc::Sender<Report>, mpsc::Receiver<Report>) {
    mpsc::channel(REPORTS_CAPACITY)
}

/// What reaches the aggregator.
#[derive(Debug)]
pub enum Report {
    /// The run starts issuing at `at`; the summary counts from `measure_from` (after warm-up).
    Started {
        at: Instant,
        measure_from: Instant,
    },
    Lane(LaneReport),
    /// The recall checker's result for one sampled ANN query (or queries it skipped).
    Recall(super::RecallReport),
    /// The run has ended: `scheduled` ops were due in its window (from the schedule; without
    /// a rate, the ops handed out), `not_sent` of them were never sent.
    Ended {
        scheduled: u64,
        not_sent: u64,
    },
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
    /// Notified when a gauge changed (a pause, a rate, a reload, the phase): the aggregator
    /// then publishes the last snapshot again with fresh gauges, so that every reader, who
    /// reads snapshots only, sees the change at once.
    pub refresh: Arc<Notify>,
    /// Per op: its recall threshold when its recall is checked (`[ops.recall]`), else `None`.
    pub recall: Vec<Option<Option<f64>>>,
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
            refresh: Arc::new(Notify::new()),
            recall: plan
                .ops
                .iter()
                .map(|o| o.recall.as_ref().map(|r| r.alert_below))
                .collect(),
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
    /// The slowest success per op since the last snapshot, for the exemplars.
    slowest: Vec<Option<Slowest>>,
    interval_start: Instant,
    /// Exact percentiles of the last second, for the snapshot (the live page).
    recent: RecentWindow,
    issued: u64,
    dropped_backlog: u64,
    not_sent_run_ended: u64,
    lanes: Vec<LaneState>,
    peak_in_flight: u64,
    nodes: NodeTotals,
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
        self.completed += r.stats.completed();
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
            .enumerate()
            .map(|(i, name)| OpSnapshot {
                recall: cfg.recall.get(i).copied().flatten().map(RecallStats::new),
                ..OpSnapshot::empty(name, n)
            })
            .collect();
        let now = Instant::now();
        let first = Snapshot {
            elapsed: Duration::ZERO,
            gauges: gauges().0,
            cluster: ClusterGauges::default(),
            ops: ops.clone(),
            nodes: Vec::new(),
            lag: Buckets::new(n),
            bounds: cfg.bounds.clone(),
            issued: 0,
            dropped_backlog: 0,
            not_sent_run_ended: 0,
            in_flight: 0,
            peak_in_flight: 0,
            achieved_rate: 0.0,
            recent: Default::default(),
            process: crate::process::read(),
        };
        let (out, rx) = watch::channel(Arc::new(first));
        let agg = Aggregator {
            measured: Measured::new(cfg.op_names.len(), cfg.sigfig),
            interval: (0..cfg.op_names.len())
                .map(|_| histogram(cfg.sigfig))
                .collect(),
            slowest: vec![None; cfg.op_names.len()],
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
            not_sent_run_ended: 0,
            lanes: Vec::new(),
            peak_in_flight: 0,
            nodes: NodeTotals::new(n),
            last_status: now,
            out,
            cfg,
        };
        (agg, rx)
    }

    /// Runs until every sender of `reports` is gone (all lanes finished), then returns the
    /// summary of the run.
    pub async fn run(mut self, mut reports: mpsc::Receiver<Report>) -> Summary {
        let mut tick = tokio::time::interval(self.cfg.publish_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let refresh = self.cfg.refresh.clone();
        loop {
            tokio::select! {
                r = reports.recv() => match r {
                    Some(r) => self.absorb(r),
                    None => break,
                },
                _ = tick.tick() => self.publish(),
                _ = refresh.notified() => self.republish(),
            }
        }
        self.publish();
        self.finish()
    }

    /// The last snapshot again, with the gauges read now: counts and histograms are left as
    /// they were, so no interval is cut short.
    fn republish(&mut self) {
        let mut s = Snapshot::clone(&self.out.borrow());
        (s.gauges, s.cluster) = (self.gauges)();
        self.out.send_replace(Arc::new(s));
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
            Report::Recall(r) => {
                if let Some(op) = self.ops.get_mut(r.op) {
                    op.recall
                        .get_or_insert_with(|| RecallStats::new(None))
                        .absorb(&r);
                }
                return;
            }
            Report::Ended {
                scheduled,
                not_sent,
            } => {
                self.measured.scheduled += scheduled;
                self.not_sent_run_ended += not_sent;
                return;
            }
        };
        if r.lane >= self.lanes.len() {
            self.lanes.resize_with(r.lane + 1, LaneState::default);
        }
        self.lanes[r.lane].absorb(&r);
        self.nodes.absorb(&r);
        let s = &r.stats;
        self.issued += s.issued;
        self.dropped_backlog += s.dropped_backlog;
        self.measured.abandoned += s.abandoned;
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
            snap.pages += op.pages;
            snap.paged_seconds += op.paged_ns as f64 / 1e9;
            snap.verified.add(&op.verified);
            snap.bytes += op.bytes;
            snap.retries += op.retries;
            snap.service.add_hdr(&op.service, &self.bounds_ns);
            snap.response.add_hdr(&op.response, &self.bounds_ns);
            if let Some(failed) = &op.failed {
                for (k, h) in failed.service.iter().enumerate() {
                    if let Some(h) = h {
                        snap.failed_by_kind[k].add_hdr(h.as_ref(), &self.bounds_ns);
                        snap.failed_service.add_hdr(h.as_ref(), &self.bounds_ns);
                    }
                }
                snap.failed_response
                    .add_hdr(&failed.response, &self.bounds_ns);
            }
            if let Some(w) = op.slowest
                && self.slowest[i].is_none_or(|s| w.service_ns > s.service_ns)
            {
                self.slowest[i] = Some(w);
            }
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
        let nodes = self.nodes.snapshot(&cluster, &self.cfg.bounds, now);
        // Instants become wall-clock time here, once per snapshot, never on the lanes.
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for (op, slowest) in self.ops.iter_mut().zip(&mut self.slowest) {
            if let Some(w) = slowest.take() {
                op.exemplar = Some(Exemplar {
                    index: w.index,
                    seconds: w.service_ns as f64 / 1e9,
                    unix_time: wall - now.saturating_duration_since(w.done).as_secs_f64(),
                });
            }
        }
        let snapshot = Snapshot {
            nodes,
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
            not_sent_run_ended: self.not_sent_run_ended,
            in_flight,
            peak_in_flight: self.peak_in_flight,
            achieved_rate,
            recent: self
                .recent
                .publish(now.saturating_duration_since(self.interval_start)),
            process: crate::process::read(),
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
