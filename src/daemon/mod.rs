//! The daemon: the life of one run. Parse and validate, bind HTTP, connect (retrying with
//! backoff while `/readyz` says 503), set up the schema, prepare, run the engine, drain, and
//! flush the summary. Signals and HTTP control reach it through [`Shared`].

mod abort;
pub mod check;
mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use scylla::client::session::Session;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::cql;
use crate::engine::{self, Control, CqlExecutor};
use crate::output::WriteError;
use crate::plan::{self, Plan, ShardEnv};
use crate::recall::log::RecallLog;
use crate::spec::{self, Override, SpecError};
use crate::stats::{
    Aggregator, AggregatorConfig, ClusterGauges, Gauges, HdrLog, HdrLogResult, NodeState, Phase,
    Snapshot, Summary,
};
pub use reload::{ReloadError, Reloaded, structural_changes};

/// How a run failed; `main` turns each into an exit status.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit status 2.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Exit status 3: the abort policy stopped the run.
    #[error("aborted: {0}")]
    Aborted(String),
    /// Exit status 2: bad command-line arguments.
    #[error("{0}")]
    Usage(String),
    /// Exit status 1.
    #[error("cannot listen on {addr} (metrics.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// Exit status 1.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// Exit status 1: the run went to its end, but results could not be written.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Unwritten(Vec<WriteError>),
    /// Exit status 1.
    #[error("{0:#}")]
    Fatal(#[from] anyhow::Error),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Spec(_) | RunError::Usage(_) => 2,
            RunError::Aborted(_) => 3,
            RunError::Listen { .. }
            | RunError::Check(_)
            | RunError::Unwritten(_)
            | RunError::Fatal(_) => 1,
        }
    }
}

/// A spec file with its overrides, loaded and planned.
pub struct Loaded {
    pub path: PathBuf,
    pub overrides: Vec<Override>,
    pub plan: Plan,
}

impl Loaded {
    pub fn load(path: PathBuf, overrides: Vec<Override>) -> Result<Loaded, SpecError> {
        let (spec, source) = spec::load(&path, &overrides)?;
        let plan = plan::build(
            &spec,
            &source,
            &|k| std::env::var(k).ok(),
            &ShardEnv::from_process(),
            now_ms(),
        )?;
        Ok(Loaded {
            path,
            overrides,
            plan,
        })
    }
}

/// 16 hex digits from the clock (nanoseconds) and the process id: unique per start for all
/// practical purposes, without a random-number crate.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let pid = u64::from(std::process::id());
    format!("{:016x}", crate::data::mix(nanos ^ pid.rotate_left(40)))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub summary_json: Option<PathBuf>,
    pub hdr_log: Option<PathBuf>,
    /// Write each checked ANN query (and the acknowledgements it counted) here, as JSON lines
    /// (`recall::log`).
    pub recall_log: Option<PathBuf>,
    /// Seconds between status lines on stderr (zero = none).
    pub status_every: Duration,
    /// Keep serving HTTP this long after the run ends, for a last scrape.
    pub linger: Duration,
    /// Print the summary table on stdout.
    pub print_summary: bool,
    /// Notified to reload the spec (SIGHUP); HTTP reloads call [`Shared::reload`] directly.
    pub reload: Option<Arc<Notify>>,
}

/// What HTTP routes, signals and the gauges read and steer.
pub struct Shared {
    pub control: Arc<Control>,
    pub plan: RwLock<Arc<Plan>>,
    phase: watch::Sender<Phase>,
    ready: AtomicBool,
    /// Asks the aggregator for a snapshot with fresh gauges (see [`Handle::refresh`]).
    refresh: Arc<Notify>,
    pub reloads_applied: AtomicU64,
    pub reloads_rejected: AtomicU64,
    /// Held through a reload: a SIGHUP and an HTTP reload at once must not both diff against
    /// the plan in force before either applied (the later would apply onto a stale base).
    reloading: std::sync::Mutex<()>,
    pub session: OnceLock<Arc<Session>>,
    /// The session's node table and speculative-execution count.
    pub tracking: cql::Tracking,
    pub started: SystemTime,
    /// New at every start (`cqlpulse_run_info{run_id}`, `/status`): a restarted daemon is a
    /// new run even with the same spec.
    pub run_id: String,
    spec_path: PathBuf,
    overrides: Vec<Override>,
}

impl Shared {
    /// The spec file this run was loaded from (and reloads from).
    pub fn spec_path(&self) -> &std::path::Path {
        &self.spec_path
    }

    pub fn plan(&self) -> Arc<Plan> {
        self.plan
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn new(plan: Arc<Plan>, spec_path: PathBuf, overrides: Vec<Override>) -> Shared {
        let (phase, _) = watch::channel(Phase::Starting);
        Shared {
            control: Control::new(&plan.load, &plan.ops),
            plan: RwLock::new(plan),
            phase,
            ready: AtomicBool::new(false),
            refresh: Arc::new(Notify::new()),
            reloads_applied: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            reloading: std::sync::Mutex::new(()),
            session: OnceLock::new(),
            tracking: cql::Tracking::default(),
            started: SystemTime::now(),
            run_id: new_run_id(),
            spec_path,
            overrides,
        }
    }

    /// The engine's gauges, read by the aggregator into each snapshot (readers read them
    /// there, never here: the snapshot is the one source).
    fn gauges(&self) -> Gauges {
        let settings = self.control.settings();
        Gauges {
            phase: *self.phase.borrow(),
            ready: self.ready.load(Ordering::Relaxed),
            paused: settings.paused(),
            target_rate: self.control.target_rate(),
            stage: self.control.stage(),
            concurrency: settings.concurrency,
            max_in_flight: settings.max_in_flight,
            in_flight_limit: settings.in_flight_limit(self.control.model()) as u64,
            reloads_applied: self.reloads_applied.load(Ordering::Relaxed),
            reloads_rejected: self.reloads_rejected.load(Ordering::Relaxed),
        }
    }

    /// Moves the run to `phase` (ready only while running) and has the gauges republished.
    fn set_phase(&self, phase: Phase) {
        self.ready.store(phase == Phase::Running, Ordering::Relaxed);
        self.phase.send_replace(phase);
        self.gauges_changed();
    }

    /// Moves a running run to `draining`; nothing else (this may come after the run is done).
    fn drain(&self) {
        self.ready.store(false, Ordering::Relaxed);
        let moved = self.phase.send_if_modified(|p| {
            let running = *p == Phase::Running;
            if running {
                *p = Phase::Draining;
            }
            running
        });
        if moved {
            self.gauges_changed();
        }
    }

    /// Has the aggregator republish its snapshot with fresh gauges; to wait until it has,
    /// see [`Handle::refresh`].
    pub fn gauges_changed(&self) {
        self.refresh.notify_one();
    }

    /// The driver's view of the cluster; sampled by the aggregator with each snapshot. Every
    /// node the driver knows gets its index in the node table here, so a node shows (up or
    /// down) before it coordinates anything.
    pub fn cluster(&self) -> ClusterGauges {
        self.session.get().map_or_else(ClusterGauges::default, |s| {
            let state = s.get_cluster_state();
            let nodes = state.get_nodes_info();
            let table = &self.tracking.nodes;
            // Nodes that left the metadata a while ago give their slots back.
            let present: Vec<SocketAddr> = nodes
                .iter()
                .map(|n| SocketAddr::new(n.address.ip(), n.address.port()))
                .collect();
            let grace = self.plan().cluster.forget_nodes_after;
            for gone in table.forget_absent(&present, std::time::Instant::now(), grace) {
                tracing::info!(node = %gone, "node left the cluster's metadata: its series dropped");
            }
            let mut up = Vec::new();
            for n in nodes {
                let i = table.index(SocketAddr::new(n.address.ip(), n.address.port())) as usize;
                if i >= up.len() {
                    up.resize(i + 1, false);
                }
                up[i] |= n.is_connected();
            }
            let node_states = table
                .names()
                .into_iter()
                .enumerate()
                .map(|(i, node)| NodeState {
                    node,
                    up: up.get(i).copied().unwrap_or(false),
                })
                .collect();
            ClusterGauges {
                known_hosts: nodes.len() as u64,
                connected_hosts: nodes.iter().filter(|n| n.is_connected()).count() as u64,
                connections: s.get_metrics().get_total_connections(),
                speculative_executions: self.tracking.speculative.get(),
                nodes: node_states,
            }
        })
    }

    /// Re-reads the spec and applies its hot fields. The running spec stays on any error.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.try_reload();
        let counter = if result.is_ok() {
            &self.reloads_applied
        } else {
            &self.reloads_rejected
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.gauges_changed();
        match &result {
            Ok(r) => tracing::info!("reload {}: {r}", r.result()),
            Err(e) => tracing::warn!("reload rejected: {e}"),
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let loaded = Loaded::load(self.spec_path.clone(), self.overrides.clone())?;
        let current = self.plan();
        let fields = structural_changes(&current.spec, &loaded.plan.spec);
        if !fields.is_empty() {
            return Err(ReloadError::Structural {
                path: self.spec_path.clone(),
                fields,
            });
        }
        if loaded.plan.digest == current.digest {
            return Ok(Reloaded::Unchanged);
        }
        self.control
            .apply_reload(&current.load, &loaded.plan.load, &loaded.plan.ops);
        if let Ok(mut p) = self.plan.write() {
            *p = Arc::new(loaded.plan);
        }
        Ok(Reloaded::Applied)
    }
}

/// A run in progress: what the HTTP layer serves.
#[derive(Clone)]
pub struct Handle {
    pub shared: Arc<Shared>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl Handle {
    /// The snapshot in force; every reader renders from it alone.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Waits (at most a second) until a snapshot taken after this call is published, so a
    /// control route's answer and the next read show its change.
    pub async fn refresh(&self) {
        let mut rx = self.snapshots.clone();
        rx.mark_unchanged();
        self.shared.gauges_changed();
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    }
}

/// Runs `loaded` to its end, or until `shutdown` is cancelled (then drains). `serve` is given
/// the run's handle before connecting, to start HTTP; it returns a future that ends when
/// HTTP has stopped, and HTTP stops when the `CancellationToken` it is given is cancelled.
pub async fn run<S, F>(
    loaded: Loaded,
    opts: RunOptions,
    shutdown: CancellationToken,
    serve: S,
) -> Result<Summary, RunError>
where
    S: FnOnce(Handle, CancellationToken) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let plan = Arc::new(loaded.plan);
    let shared = Arc::new(Shared::new(plan.clone(), loaded.path, loaded.overrides));
    let (hdr_log, hdr_log_result) = create_log(&opts.hdr_log, HdrLog::create)?;
    let (recall_log, recall_log_result) = create_log(&opts.recall_log, RecallLog::create)?;
    let cfg = AggregatorConfig {
        status_every: opts.status_every,
        hdr_log,
        refresh: shared.refresh.clone(),
        ..AggregatorConfig::for_plan(&plan)
    };
    let s = shared.clone();
    let (aggregator, snapshots) = Aggregator::new(cfg, Box::new(move || (s.gauges(), s.cluster())));
    let (reports, reports_rx) = crate::stats::report_channel();
    let aggregation = tokio::spawn(aggregator.run(reports_rx));

    let http_stop = CancellationToken::new();
    let handle = Handle {
        shared: shared.clone(),
        snapshots: snapshots.clone(),
    };
    let http = tokio::spawn(serve(handle, http_stop.clone()));
    let reloader = opts
        .reload
        .clone()
        .map(|n| tokio::spawn(reload_on(n, shared.clone())));

    // The aggregator ends when the last report sender is gone: this one goes once the phase
    // is `done`, so the last snapshot says so.
    let outcome = connect_and_run(
        &shared,
        plan,
        reports.clone(),
        &shutdown,
        snapshots,
        recall_log,
    )
    .await;
    shared.set_phase(Phase::Done);
    drop(reports);
    let summary = aggregation.await.context("the aggregator failed")?;
    if let Some(r) = reloader {
        r.abort();
    }
    let mut unwritten = publish(&opts, &summary, hdr_log_result);
    unwritten.extend(recall_log_result.and_then(|r| r.result().err()));
    if !opts.linger.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(opts.linger) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    http_stop.cancel();
    let _ = http.await;
    outcome?;
    if !unwritten.is_empty() {
        return Err(RunError::Unwritten(unwritten));
    }
    Ok(summary)
}

/// Creates an output log at `path`, if asked for, before the run: a bad path fails now.
fn create_log<L, R>(
    path: &Option<PathBuf>,
    create: impl FnOnce(&std::path::Path) -> std::io::Result<(L, R)>,
) -> Result<(Option<L>, Option<R>), RunError> {
    let Some(p) = path else {
        return Ok((None, None));
    };
    let (log, result) = create(p).with_context(|| format!("cannot create {}", p.display()))?;
    Ok((Some(log), Some(result)))
}

/// Prints the summary and writes its JSON; what could not be written (the HDR log included)
/// is reported now and fails the run at its end, after the run's own outcome (an abort).
fn publish(
    opts: &RunOptions,
    summary: &Summary,
    hdr_log_result: Option<HdrLogResult>,
) -> Vec<WriteError> {
    if opts.print_summary && summary.sent > 0 {
        // Not println!, which panics when stdout cannot be written.
        let table = summary.table() + "\n";
        let _ = std::io::Write::write_all(&mut std::io::stdout(), table.as_bytes());
    }
    let mut unwritten: Vec<WriteError> = hdr_log_result
        .into_iter()
        .filter_map(|r| r.result().err())
        .collect();
    if let Some(path) = &opts.summary_json
        && let Err(e) = write_summary_json(path, summary)
    {
        tracing::error!("{e}");
        unwritten.push(e);
    }
    unwritten
}

/// Writes the summary as pretty JSON, with a final newline.
pub fn write_summary_json(path: &std::path::Path, summary: &Summary) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        what: "the summary JSON",
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_string_pretty(summary).map_err(|e| fail(e.into()))?;
    std::fs::write(path, json + "\n").map_err(fail)
}

async fn connect_and_run(
    shared: &Arc<Shared>,
    plan: Arc<Plan>,
    reports: tokio::sync::mpsc::Sender<crate::stats::Report>,
    shutdown: &CancellationToken,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    recall_log: Option<RecallLog>,
) -> Result<(), RunError> {
    if plan.shard.surplus {
        // Exiting would make the orchestrator restart the pod forever; waiting keeps /healthz
        // up, /readyz at 503 and the reason in the log and /status.
        tracing::error!("{}", plan.shard.surplus_reason());
        shutdown.cancelled().await;
        return Ok(());
    }
    shared.set_phase(Phase::Connecting);
    let Some(session) = connect_with_backoff(&plan, &shared.tracking, shutdown).await? else {
        return Ok(()); // stopped before connecting: nothing ran, nothing failed
    };
    let session = Arc::new(session);
    let _ = shared.session.set(session.clone());
    tracing::info!(
        "connected ({} nodes known): setting up the schema",
        session.get_cluster_state().get_nodes_info().len()
    );
    cql::setup_schema(&session, &plan).await?;
    let prepared = Arc::new(cql::prepare(&session, &plan, &shared.tracking).await?);
    shared.set_phase(Phase::Running);
    tracing::info!(
        "running workload `{}`: model {}, in-flight limit {}, target rate {}",
        plan.name,
        plan.load.model.name(),
        shared.control.in_flight_limit(),
        // The control's, not the spec's: a rate or reload applied while connecting holds.
        match shared.control.target_rate() {
            r if r > 0.0 => format!("{r} ops/s"),
            _ => "unthrottled or paused".into(),
        }
    );
    // The writes that verified reads and recall checks read back: recorded by the lanes, read
    // by the executor's verifier and the recall checker alike.
    let acked = engine::acked::trackers(&plan);
    // The recall checker's thread ends once the executor (its queue's sender) is gone; its
    // last reports reach the aggregator before the summary (it holds a report sender).
    let recall =
        engine::recall::Probe::start(&plan, &acked, reports.clone(), &shared.control, recall_log)
            .map(|(probe, _)| probe);
    let executor = Arc::new(CqlExecutor::new(
        plan.clone(),
        session,
        prepared,
        acked,
        recall,
    ));
    let stop = shutdown.child_token();
    let abort = tokio::spawn(abort::watch(plan.load.abort, snapshots, stop.clone()));
    let phase = shared.clone();
    let draining = stop.clone();
    tokio::spawn(async move {
        draining.cancelled().await;
        phase.drain();
    });
    engine::run(
        executor,
        plan,
        shared.control.clone(),
        reports,
        stop.clone(),
    )
    .await;
    stop.cancel();
    match abort.await {
        Ok(Some(reason)) => Err(RunError::Aborted(reason)),
        _ => Ok(()),
    }
}

/// Connects, retrying with exponential backoff (1 s to 30 s) until it works or `shutdown`.
/// A node that refuses us (login, TLS) ends the run at once: retrying would not change its
/// answer, and an operator must see it, not a daemon stuck in "connecting".
async fn connect_with_backoff(
    plan: &Plan,
    tracking: &cql::Tracking,
    shutdown: &CancellationToken,
) -> Result<Option<Session>, RunError> {
    let mut delay = Duration::from_secs(1);
    loop {
        tokio::select! {
            r = cql::connect(&plan.cluster, tracking) => match r {
                Ok(s) => return Ok(Some(s)),
                Err(e) if e.refused => return Err(RunError::Fatal(e.into())),
                Err(e) => tracing::warn!("{e}; retrying in {}s", delay.as_secs()),
            },
            _ = shutdown.cancelled() => return Ok(None),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn reload_on(requests: Arc<Notify>, shared: Arc<Shared>) {
    loop {
        requests.notified().await;
        // Reading and parsing a file: off the async workers.
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.reload()).await;
    }
}
