//! The validated plan: what the engine runs. Built from a [`Spec`] by checking every rule the
//! type system cannot (ranges, cross-field constraints, names), and by resolving text into
//! typed values (durations, consistencies, socket addresses, generators, the shard's slice).
//! Only a `Plan` reaches the engine.

mod build;
mod load;
pub mod ops;
mod recall;
mod shard;
pub mod tls;
mod workload;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use scylla::statement::{Consistency, SerialConsistency};

use crate::data::Generator;
use crate::spec::{BatchKind, SchemaSpec, Secret, Spec, SpecError};
pub use build::build;
pub use load::MAX_RELEASE_EVERY;
pub use ops::OpKind;
pub use recall::{RecallPlan, Similarity, ann_limit};
pub use shard::{IndexMap, ShardEnv};

/// Builds the error about a spec field, located in the file (`build` makes one per source);
/// every check of the plan reports through it.
type ErrorAt<'a> = dyn Fn(&str, String) -> SpecError + 'a;

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub seed: u64,
    pub cluster: ClusterPlan,
    pub schema: SchemaSpec,
    pub ops: Vec<OpPlan>,
    pub generators: Vec<Arc<Generator>>,
    pub load: LoadPlan,
    pub metrics: MetricsPlan,
    pub control_token: Option<Secret>,
    pub shard: ShardPlan,
    /// The spec this plan came from, kept to diff against on reload.
    pub spec: Spec,
    /// A short digest of the spec with its secrets left out, shown without authentication in
    /// `/status` and `/metrics`.
    pub digest: String,
}

#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub contact_points: Vec<String>,
    pub local_dc: Option<String>,
    pub consistency: Consistency,
    pub serial_consistency: SerialConsistency,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a node may be missing from the metadata before it is forgotten (`cql::nodes`).
    pub forget_nodes_after: Duration,
    /// Each of the driver's waits for schema agreement during the set-up (`cql::agreement`).
    pub schema_agreement_timeout: Duration,
    pub credentials: Option<Credentials>,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub connections_per_node: u32,
    pub speculative_execution: Option<Speculative>,
    /// `[cluster.tls]`, its files read and checked; `None`: plain text.
    pub tls: Option<TlsPlan>,
}

/// Speculative execution: up to `max` extra attempts, each after `delay` without a response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speculative {
    pub max: u32,
    pub delay: Duration,
}

/// A login. The password is only handed to the driver: it is a [`Secret`], so no log line or
/// error that formats the plan can show it.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    password: Secret,
}

impl Credentials {
    pub fn new(username: String, password: Secret) -> Credentials {
        Credentials { username, password }
    }

    /// For the driver's authenticator, and nothing else.
    pub fn password(&self) -> &str {
        self.password.expose()
    }
}

#[derive(Debug, Clone)]
pub struct TlsPlan {
    pub config: Arc<rustls::ClientConfig>,
    /// For messages: which CA the nodes' certificates must lead to.
    pub ca_file: String,
    pub verify_server_name: bool,
}

#[derive(Debug, Clone)]
pub struct OpPlan {
    pub name: String,
    pub cql: String,
    pub kind: OpKind,
    pub weight: f64,
    /// Indices into [`Plan::generators`], one per bind marker.
    pub args: Vec<usize>,
    pub arg_names: Vec<String>,
    pub consistency: Consistency,
    pub serial_consistency: SerialConsistency,
    pub timeout: Duration,
    pub idempotent: bool,
    pub batch: Option<(u32, BatchKind)>,
    /// Rows per page of a read; `None`: the driver's default.
    pub page_size: Option<u32>,
    /// The write op (an index of [`Plan::ops`]) a verified read reads back.
    pub verify: Option<usize>,
    /// An ANN query whose answers are checked (`[ops.recall]`).
    pub recall: Option<RecallPlan>,
}

/// The concurrency model: the spec's own enum, with its names and knobs.
// Spec types a plan carries as they are: the engine takes them from here, never from `spec`.
pub use crate::spec::{MAX_DURATION, ModelName as Model, OnBacklog};

/// Rates outside this range (other than 0, unthrottled) are refused: below it an op would be
/// due centuries from now, above it no client could keep up.
pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.01..=100_000_000.0;

/// Why no rate is refused under `on_backlog = "drop"`.
pub const DROP_NEEDS_RATE: &str = "\"drop\" needs a target rate (load.rate or load.stages): without a schedule nothing is ever late";

/// The rate rule, one for the spec (`load.rate`) and for live changes (`PUT /control/rate`):
/// 0 (unthrottled) or within [`RATE_RANGE`], and never 0 while late ops are dropped.
pub fn check_rate(rate: f64, on_backlog: OnBacklog) -> Result<(), String> {
    if !(rate == 0.0 || RATE_RANGE.contains(&rate)) {
        return Err(format!(
            "must be 0 (unthrottled) or between 0.01 and 1e8 ops/s, not {rate}"
        ));
    }
    if rate == 0.0 && on_backlog == OnBacklog::Drop {
        return Err(format!(
            "0 (unthrottled) is refused: on_backlog {DROP_NEEDS_RATE}"
        ));
    }
    Ok(())
}

/// A piece of the rate schedule: `rate` for `duration`, reached by a linear ramp if `ramp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub rate: f64,
    pub ramp: bool,
}

/// How much to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// This many ops (this shard's share).
    Ops(u64),
    Duration(Duration),
    Forever,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub model: Model,
    /// The value of the model's knob (workers, batch_size, window, chains or max_in_flight).
    pub concurrency: u32,
    /// Ops/s of this shard after the stages (0 = unthrottled).
    pub rate: f64,
    pub stages: Vec<Stage>,
    pub max_in_flight: u32,
    pub on_backlog: OnBacklog,
    pub end: End,
    pub warmup: Duration,
    /// Ops that fall due wait for the next release, at most this long (see `engine::lane`).
    pub release_every: Duration,
    /// Number of lanes, every model alike (`sync` splits its workers between them); 0 = runtime threads.
    pub lanes: u32,
    pub drain_timeout: Duration,
    pub abort: AbortPlan,
    /// Maps this shard's op numbers to the workload's op indices.
    pub index_map: IndexMap,
}

impl LoadPlan {
    pub fn is_throttled(&self) -> bool {
        self.rate > 0.0 || !self.stages.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AbortPlan {
    pub error_ratio: Option<(f64, Duration)>,
    pub consecutive_errors: Option<u64>,
}

/// The most classic bucket bounds a histogram may have: each is one series per op and
/// outcome, so a layout beyond this is refused rather than silently truncated.
pub const MAX_BUCKETS: usize = 200;

#[derive(Debug, Clone)]
pub struct MetricsPlan {
    pub listen: SocketAddr,
    /// Histogram bucket upper bounds in seconds, ascending.
    pub buckets: Vec<f64>,
    pub hdr_significant_digits: u8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardPlan {
    pub index: u32,
    pub count: u32,
    pub start_at: Option<SystemTime>,
    /// `index = "auto"` found a pod ordinal at or above `count`: this instance has no shard.
    /// The daemon serves HTTP (not ready) and waits instead of running or exiting.
    pub surplus: bool,
}

impl ShardPlan {
    /// Why a surplus instance waits, for its log and `/status`.
    pub fn surplus_reason(&self) -> String {
        format!(
            "pod ordinal {} is not below shard.count ({}): this instance has no shard and \
             waits without issuing. Raise shard.count (CQLPULSE__SHARD__COUNT) to the number of \
             replicas, or scale back to {} replicas",
            self.index, self.count, self.count
        )
    }
}
