//! The HTTP surface: `/metrics`, `/healthz`, `/readyz`, `/status`, the control routes, and
//! the live page (`/`, its assets and its feed `/api/history`). Handlers read published
//! snapshots and send changes through [`crate::engine::Control`]; none of them can block the
//! lanes.

mod control;
mod guard;
pub mod history;
mod page;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::daemon::Handle;
use crate::metrics::{self, RunIdentity, RunInfo};
use crate::stats::{RunPhase, Snapshot};

#[derive(Clone)]
pub struct App {
    pub handle: Handle,
    pub info: Arc<RunInfo>,
    /// Whether the listener is on a loopback address: without a token, control is only
    /// served there.
    pub loopback: bool,
    /// The live page's feed.
    pub history: Arc<history::History>,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/page/{asset}", get(page::asset))
        .route("/api/history", get(history::route))
        .route("/metrics", get(metrics_route))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/control/pause", post(control::pause))
        .route("/control/resume", post(control::resume))
        .route("/control/rate", put(control::rate))
        .route("/control/concurrency", put(control::concurrency))
        .route("/control/reload", post(control::reload))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::host,
        ))
        .with_state(app)
}

/// Serves until `stop` is cancelled, then finishes the requests under way.
pub async fn serve(listener: TcpListener, handle: Handle, stop: CancellationToken) {
    let local = listener.local_addr().ok();
    let plan = handle.shared.plan();
    let start_time = handle
        .shared
        .started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let info = RunInfo {
        workload: plan.name.clone(),
        model: plan.load.model.name().to_string(),
        shard: plan.shard.index,
        shard_count: plan.shard.count,
        version: env!("CARGO_PKG_VERSION"),
        start_time,
    };
    let history = Arc::new(history::History::new(history::CAPACITY));
    tokio::spawn(history::record(
        history.clone(),
        handle.clone(),
        stop.clone(),
    ));
    let app = App {
        handle,
        info: Arc::new(info),
        loopback: local.is_some_and(|a: SocketAddr| a.ip().is_loopback()),
        history,
    };
    server::serve(listener, router(app), stop).await;
}

/// `/metrics` in the format the scraper's `Accept` asks for (text when it names none that
/// cqlpulse serves). Rendering reads the published snapshot only.
async fn metrics_route(State(app): State<App>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = metrics::Format::negotiate(accept);
    let snapshot = app.handle.snapshot();
    let identity = run_identity(&app, &snapshot);
    let plan = app.handle.shared.plan();
    let key = move |op: usize, index: u64| metrics::key_text(&plan, op, index);
    match metrics::render(format, snapshot, app.info.clone(), identity, &key) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => {
            tracing::error!("/metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}

/// The run's identity at this moment: the spec digest and shard count of the plan in force
/// (a reload may have changed the digest), and the phase from the daemon's phase, the pause
/// and the warm-up.
fn run_identity(app: &App, s: &Snapshot) -> RunIdentity {
    let plan = app.handle.shared.plan();
    let g = &s.gauges;
    RunIdentity {
        run_id: app.handle.shared.run_id.clone(),
        spec_digest: plan.digest.clone(),
        phase: RunPhase::of(g.phase, g.paused, s.elapsed, plan.load.warmup),
        shard_count: plan.shard.count,
    }
}

async fn readyz(State(app): State<App>) -> Response {
    let g = app.handle.snapshot().gauges;
    let phase = g.phase;
    if g.ready {
        (
            StatusCode::OK,
            axum::Json(json!({"ready": true, "phase": phase.name()})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "phase": phase.name()})),
        )
            .into_response()
    }
}

pub fn status_json(app: &App) -> serde_json::Value {
    let shared = &app.handle.shared;
    let s = app.handle.snapshot();
    let plan = shared.plan();
    let gauges = &s.gauges;
    let errors_by_kind: serde_json::Map<String, serde_json::Value> = crate::cql::ErrorKind::ALL
        .iter()
        .map(|&k| (k.name().to_string(), json!(s.errors_of(k))))
        .filter(|(_, v)| v.as_u64() != Some(0))
        .collect();
    let identity = run_identity(app, &s);
    json!({
        "run_id": identity.run_id,
        "phase": gauges.phase.name(),
        "run_phase": identity.phase.name(),
        "ready": gauges.ready,
        "paused": gauges.paused,
        "workload": plan.name,
        "model": plan.load.model.name(),
        "shard": plan.shard.index,
        "shard_count": plan.shard.count,
        "uptime_seconds": shared.started.elapsed().map_or(0.0, |d| d.as_secs_f64()),
        "elapsed_seconds": s.elapsed.as_secs_f64(),
        "target_rate": gauges.target_rate,
        // The stage of load.stages in force (held while paused); null without one.
        "stage": gauges.stage.map(|(i, st)| json!({
            "index": i,
            "rate": st.rate,
            "ramp": st.ramp,
            "duration_seconds": st.duration.as_secs_f64(),
        })),
        "achieved_rate": s.achieved_rate,
        "in_flight": s.in_flight,
        "in_flight_limit": gauges.in_flight_limit,
        "concurrency": gauges.concurrency,
        "max_in_flight": gauges.max_in_flight,
        "peak_in_flight": s.peak_in_flight,
        "issued": s.issued,
        "ok": s.ok(),
        "errors": s.errors(),
        "errors_by_kind": errors_by_kind,
        "dropped": s.dropped_backlog,
        "not_sent_run_ended": s.not_sent_run_ended,
        "reloads": {"applied": gauges.reloads_applied, "rejected": gauges.reloads_rejected},
        "spec_digest": plan.digest,
        // Why this instance does not run, when its pod ordinal is beyond shard.count.
        "waiting": plan.shard.surplus.then(|| plan.shard.surplus_reason()),
        "spec_path": shared.spec_path().display().to_string(),
        "nodes": nodes_json(&s),
        "ops": ops_json(&s),
        // Verified reads of every op together: missing or mismatch above 0 is data lost.
        "verified": verified_total(&s),
        "recall": recall_json(&s),
    })
}

/// Per op: its requests, rows and pages, and its verified reads by result (for an op that
/// verifies).
fn ops_json(s: &crate::stats::Snapshot) -> serde_json::Value {
    s.ops
        .iter()
        .map(|o| {
            let mut op = json!({
                "name": o.name,
                "ok": o.ok,
                "errors": o.errors_total(),
                "rows": o.rows,
                "pages": o.pages,
                "mean_page_time_ms": (o.pages > 0).then(|| o.paged_seconds * 1e3 / o.pages as f64),
            });
            if !o.verified.is_empty() {
                op["verified"] = json!(o.verified);
            }
            op
        })
        .collect()
}

/// Per ANN op with `[ops.recall]`: its recall so far and of the latest checks, and the
/// samples checked and skipped (the `cqlpulse_recall*` metrics).
fn recall_json(s: &crate::stats::Snapshot) -> serde_json::Value {
    s.ops
        .iter()
        .filter_map(|o| {
            let r = o.recall.as_ref()?;
            Some(json!({
                "op": o.name,
                "recall": r.recall(),
                "recent_recall": r.recent_recall,
                "threshold": r.threshold,
                "checked": r.checked,
                "hits": r.hits,
                "expected": r.expected,
                "skipped_budget": r.skipped_budget,
                "skipped_queue": r.skipped_queue,
                "checker_cpu_seconds": r.cpu_seconds,
            }))
        })
        .collect()
}

fn verified_total(s: &crate::stats::Snapshot) -> serde_json::Value {
    let mut all = crate::stats::Verified::default();
    s.ops.iter().for_each(|o| all.add(&o.verified));
    json!(all)
}

/// Per coordinator node: the figures of the `cqlpulse_node_*` metrics, and the p99 of the
/// service time of its successes over the last 10 s.
fn nodes_json(s: &crate::stats::Snapshot) -> serde_json::Value {
    s.nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.node,
                "up": n.up,
                "in_flight": n.in_flight,
                "requests_ok": n.ok,
                "requests_error": n.errors,
                "p99_ms": n.recent_p99 * 1e3,
            })
        })
        .collect()
}

async fn status(State(app): State<App>) -> Response {
    axum::Json(status_json(&app)).into_response()
}
