//! Statistics: per-lane recording, the aggregator that merges lanes into snapshots, the
//! summary and the interval log. Knows no exporter: exporters read [`Snapshot`]s.

mod aggregate;
mod hdrlog;
mod lane;
mod recent;
mod snapshot;
mod summary;

pub use aggregate::{Aggregator, AggregatorConfig, GaugeSource, Report};
pub use hdrlog::HdrLog;
pub use lane::{LaneReport, LaneStats, OpStats, Sample};
pub use recent::{Recent, RecentLatency};
pub use snapshot::{Buckets, ClusterGauges, Gauges, OpSnapshot, Phase, Snapshot};
pub use summary::{OpSummary, Percentiles, Summary, quantile};
