//! The spec's types. Every struct refuses unknown keys; defaults are documented in the README
//! and mirrored here. Durations are written as text ("250ms", "1m30s").

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ModelName, Secret};

/// The longest duration a spec may give.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration written as human-readable text, e.g. `"30s"`, `"1m"`, `"250ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = humantime::parse_duration(text.trim())
            .map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))?;
        // Far beyond any run, and keeps `start + duration` arithmetic from overflowing.
        if parsed > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration `{text}` is longer than 10 years"
            )));
        }
        Ok(Dur(parsed))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The workload's name: the `workload` label of `cqlpulse_run_info`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of every generator: the same seed and op index always give the same values.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub schema: SchemaSpec,
    #[serde(default)]
    pub ops: Vec<OpSpec>,
    #[serde(default)]
    pub data: BTreeMap<String, GenSpec>,
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
    #[serde(default)]
    pub control: ControlSpec,
    #[serde(default)]
    pub shard: ShardSpec,
}

fn default_name() -> String {
    "workload".to_string()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub contact_points: Vec<String>,
    pub local_dc: Option<String>,
    pub consistency: String,
    pub serial_consistency: String,
    pub request_timeout: Dur,
    pub connect_timeout: Dur,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Name of an environment variable holding the password (kept out of the spec file).
    pub password_env: Option<String>,
    /// Retries of a failed idempotent request (timeouts, unavailable, overloaded, connection).
    pub retries: u32,
    pub retry_backoff: Dur,
    /// Connections per node (the driver's pool size).
    pub connections_per_node: u32,
    /// Off when absent: a second attempt of a slow idempotent request changes what latency
    /// means.
    pub speculative_execution: Option<SpeculativeSpec>,
    /// TLS to the nodes; absent: plain text.
    pub tls: Option<TlsSpec>,
    /// How long a node may be missing from the cluster's metadata before its per-node series
    /// are dropped and its slot reused.
    pub forget_nodes_after: Dur,
    /// How long the driver waits for the nodes to agree on the schema after a set-up statement
    /// (each wait; the set-up waits again a few times before it gives up).
    pub schema_agreement_timeout: Dur,
}

/// `[cluster.speculative_execution]`: after `delay` without a response, the driver sends an
/// idempotent request to the next node too, up to `max` extra times; the first answer wins.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpeculativeSpec {
    pub delay: Dur,
    #[serde(default = "one_extra")]
    pub max: u32,
}

fn one_extra() -> u32 {
    1
}

/// `[cluster.tls]`: the CA that signed the nodes' certificates and, for mutual TLS, the
/// client's certificate and key (PEM files; relative paths are from the current directory).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub ca_file: String,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Whether a node's certificate must name the address it was reached at. Turning it off
    /// (certificates that name hosts the driver does not dial) keeps the CA check.
    #[serde(default = "yes")]
    pub verify_server_name: bool,
}

fn yes() -> bool {
    true
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            contact_points: vec!["127.0.0.1:9042".to_string()],
            local_dc: None,
            consistency: "local_quorum".to_string(),
            serial_consistency: "local_serial".to_string(),
            request_timeout: Dur(Duration::from_secs(12)),
            connect_timeout: Dur(Duration::from_secs(5)),
            username: None,
            password: None,
            password_env: None,
            retries: 0,
            retry_backoff: Dur(Duration::from_millis(10)),
            connections_per_node: 1,
            speculative_execution: None,
            tls: None,
            forget_nodes_after: Dur(Duration::from_secs(300)),
            schema_agreement_timeout: Dur(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaSpec {
    pub keyspace: String,
    /// The replication map, as CQL: `{'class': 'SimpleStrategy', 'replication_factor': 1}`.
    pub replication: String,
    /// Statements run in order after the keyspace exists (`CREATE TABLE IF NOT EXISTS ...`).
    pub statements: Vec<String>,
    pub mode: SchemaMode,
}

impl Default for SchemaSpec {
    fn default() -> Self {
        SchemaSpec {
            keyspace: "cqlpulse".to_string(),
            replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".to_string(),
            statements: Vec::new(),
            mode: SchemaMode::CreateIfMissing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMode {
    CreateIfMissing,
    /// Drops the keyspace first.
    Recreate,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    pub name: String,
    pub cql: String,
    #[serde(default = "one")]
    pub weight: f64,
    /// Generator names from `[data]`, one per bind marker, in order.
    #[serde(default)]
    pub args: Vec<String>,
    pub consistency: Option<String>,
    pub serial_consistency: Option<String>,
    pub timeout: Option<Dur>,
    /// Whether the statement may be retried; inferred (false for LWT and counters) if absent.
    pub idempotent: Option<bool>,
    /// Send `batch.size` statements of this op as one CQL batch.
    pub batch: Option<BatchSpec>,
    /// Rows per page of a read (the driver's default, 5000, when absent); a read fetches all
    /// its pages.
    pub page_size: Option<u32>,
    /// A read that verifies: the name of the write op whose acknowledged rows it reads back
    /// and compares with the values regenerated for their op index.
    pub verify: Option<String>,
    /// For an ANN query (`ORDER BY v ANN OF ? LIMIT k`): check a share of its answers against
    /// the exact nearest neighbours of what the writer op wrote.
    pub recall: Option<RecallSpec>,
}

/// `[ops.recall]`: how an ANN query's answers are checked (README, "Vector search").
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecallSpec {
    /// The op that writes the rows searched.
    pub of: String,
    /// The writer's key generator (a `sequence`): the query's first selected column.
    pub key: String,
    /// The writer's vector generator: the stored vectors.
    pub vector: String,
    /// The query's vector argument; by default the op's only vector argument.
    pub query: Option<String>,
    /// The index's similarity function.
    pub similarity: SimilarityName,
    /// A generator bound by both ops (`WHERE f = ?` in the query): only written rows with the
    /// query's value are neighbours.
    pub filter: Option<String>,
    /// Share of the queries checked.
    #[serde(default = "one_percent")]
    pub sample: f64,
    /// CPU the checker may use, in cores; beyond it queries are skipped, and counted.
    #[serde(default = "half")]
    pub cpu: f64,
    /// Recall below which `CqlpulseRecallLow` fires (exported as `cqlpulse_recall_threshold`).
    pub alert_below: Option<f64>,
    /// Op indices `0..preloaded` of the writer were all written before this run (an ingest run
    /// of the writer alone): they count as written from the start.
    #[serde(default)]
    pub preloaded: u64,
}

fn one_percent() -> f64 {
    0.01
}
fn half() -> f64 {
    0.5
}

/// A vector index's similarity function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityName {
    Cosine,
    DotProduct,
    Euclidean,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    pub size: u32,
    #[serde(default)]
    pub kind: BatchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    Logged,
    #[default]
    Unlogged,
    Counter,
}

/// A size in bytes: fixed (`size = 100`) or ranged (`size = { min = 10, max = 1000 }`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    Fixed(u32),
    Range { min: u32, max: u32 },
}

/// A number of elements: fixed (`size = 3`), uniform in a range (`size = { min = 0, max = 8 }`)
/// or drawn from an integer generator of `[data]` (`size = "tag_count"`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CountSpec {
    Fixed(u32),
    Range { min: u32, max: u32 },
    Generator(String),
}

fn default_count() -> CountSpec {
    CountSpec::Range { min: 1, max: 5 }
}

/// A named value generator. Integers: sequence, uniform, zipf, normal, hotspot. Floats: float
/// (uniform), gaussian. Bytes: text, blob. Others: uuid, timeuuid, timestamp. Composites name
/// other generators of `[data]`: list, set, map (a size and elements), tuple (by position), udt
/// (by field name), vector (D elements), sparse (another generator with a share of nulls).
/// The column type decides how a value is encoded (an integer bound to a text column is sent
/// as its decimal digits).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GenSpec {
    Sequence {
        #[serde(default)]
        start: i64,
    },
    Uniform {
        min: i64,
        max: i64,
    },
    Zipf {
        #[serde(default)]
        min: i64,
        count: u64,
        #[serde(default = "one")]
        exponent: f64,
    },
    Normal {
        mean: f64,
        stddev: f64,
        min: Option<i64>,
        max: Option<i64>,
    },
    Hotspot {
        min: i64,
        max: i64,
        #[serde(default = "hot_fraction")]
        hot_fraction: f64,
        #[serde(default = "hot_probability")]
        hot_probability: f64,
    },
    Text {
        size: SizeSpec,
    },
    Blob {
        size: SizeSpec,
    },
    Uuid {},
    Timeuuid {
        /// Milliseconds since the epoch of op 0's time; the run's start time if absent.
        start_ms: Option<i64>,
    },
    Timestamp {
        /// Milliseconds since the epoch of op 0; the run's start time if absent.
        start_ms: Option<i64>,
        /// Milliseconds between consecutive ops.
        #[serde(default = "one_i64")]
        step_ms: i64,
    },
    /// The partition of op index i when each partition holds `rows` rows written in order:
    /// `start + i / rows` (with a range, `i / rows.max`).
    Partition {
        rows: CountSpec,
        #[serde(default)]
        start: i64,
    },
    /// The clustering value of op index i in its partition (see `partition`): `i % rows`;
    /// with a range, partition p holds a size drawn for p in it, and op indices beyond that
    /// size rewrite its rows.
    Clustering {
        rows: CountSpec,
    },
    /// Uniform in `[min, max)`.
    Float {
        #[serde(default)]
        min: f64,
        #[serde(default = "one")]
        max: f64,
    },
    Gaussian {
        #[serde(default)]
        mean: f64,
        #[serde(default = "one")]
        stddev: f64,
    },
    List {
        element: String,
        #[serde(default = "default_count")]
        size: CountSpec,
    },
    Set {
        element: String,
        #[serde(default = "default_count")]
        size: CountSpec,
    },
    Map {
        key: String,
        value: String,
        #[serde(default = "default_count")]
        size: CountSpec,
    },
    /// One generator per tuple field, in order.
    Tuple {
        fields: Vec<String>,
    },
    /// One generator per field of the user-defined type, by field name.
    Udt {
        fields: BTreeMap<String, String>,
    },
    /// `dimension` values of `element` (the column's dimension: checked against it);
    /// `normalize` scales each vector to unit length.
    Vector {
        element: String,
        dimension: u16,
        #[serde(default)]
        normalize: bool,
    },
    /// A vector of `dimension` floats around one of `centres` points: the centre's coordinates
    /// (standard normal, the same for every clustered generator of the seed) plus normal noise
    /// of standard deviation `spread`; `normalize` scales it to unit length.
    Clustered {
        dimension: u16,
        centres: u32,
        #[serde(default = "default_spread")]
        spread: f64,
        #[serde(default)]
        normalize: bool,
    },
    /// The values of `of`, except a share `nulls` (0 to 1) of ops that bind null, or leave the
    /// column unset (no tombstone) with `unset = true`.
    Sparse {
        of: String,
        nulls: f64,
        #[serde(default)]
        unset: bool,
    },
}

fn default_spread() -> f64 {
    0.2
}
fn hot_fraction() -> f64 {
    0.1
}
fn hot_probability() -> f64 {
    0.9
}
fn one_i64() -> i64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBacklog {
    #[default]
    Queue,
    Drop,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Dur,
    pub rate: f64,
    /// Ramp linearly from the previous stage's rate instead of stepping.
    #[serde(default)]
    pub ramp: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    pub model: ModelName,
    pub workers: Option<u32>,
    pub batch_size: Option<u32>,
    pub window: Option<u32>,
    pub chains: Option<u32>,
    /// Target ops/s; 0 = as fast as the model goes.
    pub rate: f64,
    pub stages: Vec<StageSpec>,
    pub max_in_flight: u32,
    pub on_backlog: OnBacklog,
    pub duration: Option<Dur>,
    pub ops: Option<u64>,
    pub warmup: Dur,
    /// Ops that fall due are sent together at most this often (0 = each the moment it is due).
    pub release_every: Dur,
    /// Tasks that issue requests; 0 = one per runtime worker thread.
    pub lanes: u32,
    pub drain_timeout: Dur,
    pub abort: AbortSpec,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            model: ModelName::Chains,
            workers: None,
            batch_size: None,
            window: None,
            chains: None,
            rate: 0.0,
            stages: Vec::new(),
            max_in_flight: 1024,
            on_backlog: OnBacklog::Queue,
            duration: None,
            ops: None,
            warmup: Dur(Duration::ZERO),
            release_every: Dur(Duration::from_millis(1)),
            lanes: 0,
            drain_timeout: Dur(Duration::from_secs(10)),
            abort: AbortSpec::default(),
        }
    }
}

/// Stop the run (exit status 3) when errors persist. Off by default, as soak runs want to
/// outlive a failing cluster.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbortSpec {
    /// Abort when the error ratio stays above this over `error_window`.
    pub error_ratio: Option<f64>,
    pub error_window: Option<Dur>,
    /// Abort after this many consecutive failed requests.
    pub consecutive_errors: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    pub listen: String,
    pub buckets: BucketSpec,
    pub hdr_significant_digits: u8,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            listen: "127.0.0.1:9464".to_string(),
            buckets: BucketSpec::default(),
            hdr_significant_digits: 3,
        }
    }
}

/// The classic latency bucket layout: exponential (`{ min, max, factor }`) or an explicit list
/// of upper bounds in seconds (`[0.001, 0.002, ...]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BucketSpec {
    Exponential(ExponentialBuckets),
    Bounds(Vec<f64>),
}

impl Default for BucketSpec {
    fn default() -> Self {
        BucketSpec::Exponential(ExponentialBuckets::default())
    }
}

// By hand rather than `untagged`, so a wrong key inside the table still gets its own error
// (an untagged enum would only say that no variant matched).
impl<'de> Deserialize<'de> for BucketSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Layout;
        impl<'de> serde::de::Visitor<'de> for Layout {
            type Value = BucketSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table { min, max, factor } or a list of upper bounds in seconds")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<BucketSpec, A::Error> {
                Vec::<f64>::deserialize(serde::de::value::SeqAccessDeserializer::new(a))
                    .map(BucketSpec::Bounds)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<BucketSpec, A::Error> {
                ExponentialBuckets::deserialize(serde::de::value::MapAccessDeserializer::new(a))
                    .map(BucketSpec::Exponential)
            }
        }
        d.deserialize_any(Layout)
    }
}

/// Exponential latency buckets from `min` to at least `max`, each `factor` times the last;
/// the request timeout is always added as a boundary. The default (100 us to 10 s by 1.15,
/// 84 bounds plus the timeout) keeps `histogram_quantile` within a few percent of the exact
/// percentiles, where a factor of 2 read them 25-37% high.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialBuckets {
    pub min: Dur,
    pub max: Dur,
    pub factor: f64,
}

impl Default for ExponentialBuckets {
    fn default() -> Self {
        ExponentialBuckets {
            min: Dur(Duration::from_micros(100)),
            max: Dur(Duration::from_secs(10)),
            factor: 1.15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSpec {
    /// Bearer token for mutating routes; prefer `token_env`.
    pub token: Option<Secret>,
    /// Environment variable holding the token (default `CQLPULSE_CONTROL_TOKEN`).
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ShardIndex {
    Index(u32),
    /// `"auto"`: the Kubernetes pod ordinal.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardSpec {
    pub index: ShardIndex,
    pub count: u32,
    /// RFC 3339 wall-clock time at which every instance starts issuing.
    pub start_at: Option<String>,
}

impl Default for ShardSpec {
    fn default() -> Self {
        ShardSpec {
            index: ShardIndex::Index(0),
            count: 1,
            start_at: None,
        }
    }
}
