//! Statistics: per-lane recording, the aggregator that merges lanes into snapshots, the
//! summary and the interval log. Knows no exporter: exporters read [`Snapshot`]s.

mod aggregate;
mod hdrlog;
mod lane;
mod snapshot;
mod summary;

pub use aggregate::{Aggregator, AggregatorConfig, GaugeSource, Report};
pub use hdrlog::HdrLog;
pub use lane::{Failed, LaneReport, LaneStats, OpStats, Sample, Slowest};
pub use snapshot::{
    Buckets, ClusterGauges, Exemplar, Gauges, NATIVE_SCHEMA, NativeBuckets, OpSnapshot, Phase,
    Snapshot, native_index, native_upper_bound,
};
pub use summary::{OpSummary, Percentiles, Summary, quantile};
