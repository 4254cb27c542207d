//! cqlpulse: a load generator for Apache Cassandra and ScyllaDB.
//!
//! Data flows one way:
//!
//! ```text
//!   spec ──> plan ──> engine ──> stats ──> metrics, the summary, the HDR log
//!   (TOML)  (checked)  (lanes)   (merged)       │
//!                        ▲                      ▼
//!                        └──── control ───── http (/metrics, /status, control routes)
//! ```
//!
//! and imports never go round in a circle: each module uses only modules listed before it
//! in spec, data, plan, cql, process, output, stats, engine, metrics, logging, daemon, http, compare,
//! cli (the engine hands its reports to stats types; stats knows no engine).
//!
//! - [`spec`]: the TOML file, its strict parsing, overrides, and error positions; the table of
//!   the concurrency models (`spec::MODELS`), the one place a model is described.
//! - [`plan`]: the validated, typed plan (TLS configuration included); the only thing the
//!   engine sees.
//! - [`data`]: value generators, pure functions of (seed, op index).
//! - [`cql`]: the driver session, schema, prepared statements, value binding, error kinds.
//! - [`engine`]: the schedule, the five models ([`engine::model`]), lanes and their requests;
//!   steered through [`engine::Control`], reporting to the stats aggregator.
//! - [`stats`]: per-lane statistics, the aggregator, snapshots, the summary, the HDR log.
//! - [`metrics`]: the Prometheus exposition of snapshots; [`http`]: its routes and control.
//! - [`daemon`]: a run from start to end (connect, run, drain, reload, `check`); [`compare`]
//!   runs the models in turn; [`cli`] and `main.rs` are the command line on top.
//! - [`process`]: this process's CPU, memory and I/O; [`logging`]: where log lines go;
//!   [`output`]: the error of a result that could not be written.

pub mod cli;
pub mod compare;
pub mod cql;
pub mod daemon;
pub mod data;
pub mod engine;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod process;
pub mod recall;
pub mod spec;
pub mod stats;
