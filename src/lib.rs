//! cqlpulse: a load generator for Apache Cassandra and ScyllaDB.
//!
//! Data flows one way: [`spec`] (the file) -> [`plan`] (validated, typed) -> [`engine`]
//! (scheduler, models, lanes) -> [`stats`] (per-lane histograms merged into snapshots) ->
//! exporters ([`metrics`], the summary). [`http`] serves the exporters and sends control
//! changes to the engine through a `watch` channel.

pub mod cli;
pub mod compare;
pub mod cql;
pub mod daemon;
pub mod data;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod plan;
pub mod process;
pub mod spec;
pub mod stats;
