//! Statistics: per-lane recording, the aggregator that merges lanes into snapshots, the
//! summary and the interval log. Knows no exporter: exporters read [`Snapshot`]s.

mod aggregate;
mod hdrlog;
mod lane;
mod nodes;
mod recall;
mod recent;
mod snapshot;
mod summary;
mod verdict;

pub use aggregate::{
    Aggregator, AggregatorConfig, GaugeSource, REPORTS_CAPACITY, Report, report_channel,
};
pub use hdrlog::{HdrLog, HdrLogResult};
pub use lane::{Failed, LaneReport, LaneStats, NodeStats, OpStats, Sample, Slowest, bounds_ns};
pub use recall::{RECALL_BOUNDS, RecallReport, RecallStats, RecallSummary, query_recall};
pub use recent::{Recent, RecentLatency};
pub use snapshot::{
    Buckets, ClusterGauges, Exemplar, Gauges, NATIVE_SCHEMA, NativeBuckets, NodeSnapshot,
    NodeState, OpSnapshot, Phase, RunPhase, Snapshot, native_index, native_upper_bound,
};
pub use summary::{OpSummary, Percentiles, Summary, quantile};
pub use verdict::{Verdict, Verified};
