//! Statistics: per-lane recording, the aggregator that merges lanes into snapshots, the
//! summary and the interval log. Knows no exporter: exporters read [`Snapshot`]s.

mod aggregate;
mod hdrlog;
mod lane;
mod nodes;
mod snapshot;
mod summary;

pub use aggregate::{Aggregator, AggregatorConfig, GaugeSource, Report};
pub use hdrlog::HdrLog;
pub use lane::{LaneReport, LaneStats, NodeStats, OpStats, Sample, bounds_ns};
pub use snapshot::{
    Buckets, ClusterGauges, Gauges, NodeSnapshot, NodeState, OpSnapshot, Phase, Snapshot,
};
pub use summary::{OpSummary, Percentiles, Summary, quantile};
