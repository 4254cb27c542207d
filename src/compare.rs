//! `cqlpulse compare`: the python-driver benchmark experiment, against a real cluster. The
//! same workload runs under each model in turn, in a freshly recreated keyspace, and the
//! results are printed side by side.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::daemon::{self, Loaded, RunError, RunOptions};
use crate::plan::{self, Model, ShardEnv};
use crate::spec::{self, MODELS, OnBacklog, Override, SchemaMode, SpecError};

/// How [`render`] writes the rows (`--format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub model: String,
    /// The model's knob and its value, e.g. `workers=1`.
    pub knob: String,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub client_cpu_us_per_op: f64,
    /// Peak resident memory of the process by the end of this model's run.
    pub peak_rss_mib: f64,
}

pub struct CompareOptions {
    pub models: Vec<Model>,
    pub concurrency: u32,
    pub sync_workers: u32,
}

/// Runs the comparison; stops early (returning what finished) when `shutdown` is cancelled.
pub async fn compare(
    path: &Path,
    overrides: &[Override],
    opts: &CompareOptions,
    shutdown: &CancellationToken,
) -> Result<Vec<Row>, RunError> {
    let mut rows = Vec::new();
    for &model in &opts.models {
        if shutdown.is_cancelled() {
            break;
        }
        let (mut spec, source) = spec::load(path, overrides)?;
        if spec.load.ops.is_none() {
            return Err(SpecError::Override {
                origin: "cqlpulse compare".into(),
                field: "load.ops".into(),
                message: "compare needs an op count: pass --ops N".into(),
            }
            .into());
        }
        let l = &mut spec.load;
        l.model = model;
        for field in MODELS.iter().filter_map(|m| m.field) {
            (field.set)(l, None);
        }
        let row = model.row();
        let knob = match model {
            Model::Sync => opts.sync_workers,
            _ => opts.concurrency,
        };
        match row.field {
            Some(field) => {
                (field.set)(l, Some(knob));
                l.max_in_flight = l.max_in_flight.max(knob);
            }
            None => l.max_in_flight = knob,
        }
        (l.duration, l.rate, l.on_backlog) = (None, 0.0, OnBacklog::Queue);
        l.stages.clear();
        if spec.schema.mode != SchemaMode::Skip {
            spec.schema.mode = SchemaMode::Recreate;
        }
        let plan = plan::build(
            &spec,
            &source,
            &|k| std::env::var(k).ok(),
            &ShardEnv::from_process(),
            daemon::now_ms(),
        )?;
        tracing::info!("compare: model {} ({}={knob})", model.name(), model.knob());
        let loaded = Loaded {
            path: path.to_path_buf(),
            overrides: overrides.to_vec(),
            plan,
        };
        let opts = RunOptions {
            status_every: std::time::Duration::from_secs(5),
            ..RunOptions::default()
        };
        let summary = daemon::run(loaded, opts, shutdown.clone(), |_, _| async {}).await?;
        let service = summary.total.service_time.clone();
        let p = |f: fn(&crate::stats::Percentiles) -> f64| service.as_ref().map_or(0.0, f);
        rows.push(Row {
            model: model.name().to_string(),
            knob: format!("{}={knob}", model.knob()),
            ops: summary.total.count,
            errors: summary.total.errors,
            seconds: summary.duration_seconds,
            ops_per_second: summary.total.ops_per_second,
            p50_ms: p(|p| p.p50_ms),
            p99_ms: p(|p| p.p99_ms),
            p999_ms: p(|p| p.p999_ms),
            max_ms: p(|p| p.max_ms),
            client_cpu_us_per_op: summary.client_cpu_us_per_op,
            peak_rss_mib: summary.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        });
    }
    Ok(rows)
}

pub fn render(rows: &[Row], format: Format) -> String {
    if let Format::Json = format {
        return serde_json::to_string_pretty(rows).unwrap_or_default() + "\n";
    }
    let header = [
        "model",
        "knob",
        "ops",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "CPU us/op",
    ];
    let cells = |r: &Row| {
        [
            r.model.clone(),
            r.knob.clone(),
            r.ops.to_string(),
            r.errors.to_string(),
            format!("{:.1}", r.ops_per_second),
            format!("{:.2}", r.p50_ms),
            format!("{:.2}", r.p99_ms),
            format!("{:.2}", r.p999_ms),
            format!("{:.2}", r.max_ms),
            format!("{:.2}", r.client_cpu_us_per_op),
        ]
    };
    let mut out = String::new();
    if let Format::Markdown = format {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(header.len() - 2));
        for r in rows {
            let _ = writeln!(out, "| {} |", cells(r).join(" | "));
        }
        return out;
    }
    let widths = [10, 18, 9, 7, 11, 8, 8, 9, 8, 10];
    let line = |out: &mut String, cells: &[String]| {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let _ = if i < 2 {
                write!(out, "{c:<w$} ")
            } else {
                write!(out, "{c:>w$} ")
            };
        }
        out.pop();
        out.push('\n');
    };
    line(&mut out, &header.map(str::to_string));
    for r in rows {
        line(&mut out, &cells(r));
    }
    out
}
