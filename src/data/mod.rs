//! Value generators: pure functions of (seed, stream, op index).
//!
//! Any lane or instance can regenerate the value of any op, which is what makes sharding
//! without coordination and read-after-write workloads possible. Text and blob payloads are
//! slices of a pool generated once, so a request allocates nothing for its payload.
//! Composite generators (collections, tuples, UDTs, vectors, sparse columns) hold their parts
//! and say where each part takes its value ([`compose`]); the encoder walks them without
//! allocating, and [`Datum`] is the same value owned, for checks and tests.
//! This module imports nothing of the engine or the driver.

pub mod clustered;
pub mod compose;
mod dist;
mod hash;

pub use compose::{Count, Datum, build_all};
pub use hash::{mix, unit};

/// The most elements a collection generator makes (Cassandra's own limit is 65,535); element
/// `j` of op index `i` is drawn at index `i * MAX_ELEMENTS + j` (see [`compose`]).
pub const MAX_ELEMENTS: u32 = 65_535;

use std::sync::Arc;

use crate::spec::{CountSpec, GenSpec, SizeSpec};
use dist::Zipf;

/// One generated value, borrowed from the generator where it is bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    Float(f64),
    Bytes(&'a [u8]),
    Uuid([u8; 16]),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Null,
    /// No value: the column is left as it is.
    Unset,
    /// A composite generator's value: its parts come from [`compose`].
    Composite,
}

/// What a generator produces, used to check it against a column type before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Int,
    Float,
    Text,
    Blob,
    Uuid,
    Timeuuid,
    Timestamp,
    List,
    Set,
    Map,
    Tuple,
    Udt,
    Vector,
    Sparse,
}

impl ValueKind {
    /// The kind's name in messages: the `kind` of the spec that makes it.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Int => "integer",
            ValueKind::Float => "float",
            ValueKind::Text => "text",
            ValueKind::Blob => "blob",
            ValueKind::Uuid => "uuid",
            ValueKind::Timeuuid => "timeuuid",
            ValueKind::Timestamp => "timestamp",
            ValueKind::List => "list",
            ValueKind::Set => "set",
            ValueKind::Map => "map",
            ValueKind::Tuple => "tuple",
            ValueKind::Udt => "udt",
            ValueKind::Vector => "vector",
            ValueKind::Sparse => "sparse",
        }
    }
}

/// Size of the pre-generated pool behind text and blob values, beyond the largest value.
const POOL_SLACK: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub enum Generator {
    Sequence {
        start: i64,
    },
    Uniform {
        min: i64,
        span: u64,
    },
    Zipf {
        min: i64,
        zipf: Zipf,
    },
    Normal {
        mean: f64,
        stddev: f64,
        min: i64,
        max: i64,
    },
    Hotspot {
        min: i64,
        hot: u64,
        span: u64,
        hot_probability: f64,
    },
    Bytes {
        kind: ValueKind,
        min: usize,
        max: usize,
        pool: Box<[u8]>,
    },
    Uuid,
    Timeuuid {
        start_ms: i64,
        node: u64,
    },
    Timestamp {
        start_ms: i64,
        step_ms: i64,
    },
    /// `start + index / block`: `block` rows per partition, in op order.
    Partition {
        start: i64,
        block: u64,
    },
    /// The row of `index` in its partition: below `block`, and below the partition's size,
    /// drawn in `min..=block` from the partition number alone.
    Clustering {
        min: u64,
        block: u64,
    },
    Float {
        min: f64,
        span: f64,
    },
    Gaussian {
        mean: f64,
        stddev: f64,
    },
    /// A list or a set: `size` elements of `element`.
    List {
        set: bool,
        size: Count,
        element: Arc<Generator>,
    },
    Map {
        size: Count,
        key: Arc<Generator>,
        value: Arc<Generator>,
    },
    Tuple {
        fields: Vec<Arc<Generator>>,
    },
    /// Fields by name, in the order of the spec (the encoder follows the type's order).
    Udt {
        fields: Vec<(String, Arc<Generator>)>,
    },
    Vector {
        element: Arc<Generator>,
        normalize: bool,
        dimension: u16,
    },
    /// An element of a clustered vector ([`clustered`]): it finds its op index and position
    /// from its element index.
    ClusterElement(Arc<clustered::Shape>),
    /// `inner`'s values, except a share `nulls` of ops that get null (or unset).
    Sparse {
        inner: Arc<Generator>,
        nulls: f64,
        unset: bool,
    },
}

impl Generator {
    /// Builds a scalar generator (composites name others: [`build_all`] makes them).
    /// `spec` has been validated; `now_ms` is the default time origin.
    pub fn new(spec: &GenSpec, seed: u64, now_ms: i64) -> Generator {
        Self::scalar(spec, seed, now_ms).expect("Generator::new is only given scalar specs")
    }

    /// The generator of a scalar spec; `None` for a composite one.
    pub fn scalar(spec: &GenSpec, seed: u64, now_ms: i64) -> Option<Generator> {
        if let Some(g) = Self::integer(spec) {
            return Some(g);
        }
        Some(match *spec {
            GenSpec::Text { size } => Self::bytes(ValueKind::Text, size, seed),
            GenSpec::Blob { size } => Self::bytes(ValueKind::Blob, size, seed),
            GenSpec::Uuid {} => Generator::Uuid,
            GenSpec::Timeuuid { start_ms } => Generator::Timeuuid {
                start_ms: start_ms.unwrap_or(now_ms),
                node: mix(seed),
            },
            GenSpec::Timestamp { start_ms, step_ms } => Generator::Timestamp {
                start_ms: start_ms.unwrap_or(now_ms),
                step_ms,
            },
            GenSpec::Float { min, max } => Generator::Float {
                min,
                span: max - min,
            },
            GenSpec::Gaussian { mean, stddev } => Generator::Gaussian { mean, stddev },
            // Rows per partition from a fixed count or a range (a generator's count is refused
            // by the plan): a partition spans the largest size, a clustering key cycles within it.
            GenSpec::Partition { ref rows, start } => {
                let (_, max) = rows_bounds(rows)?;
                Generator::Partition {
                    start,
                    block: u64::from(max.max(1)),
                }
            }
            GenSpec::Clustering { ref rows } => {
                let (min, max) = rows_bounds(rows)?;
                Generator::Clustering {
                    min: u64::from(min.max(1)),
                    block: u64::from(max.max(1)),
                }
            }
            GenSpec::Sequence { .. }
            | GenSpec::Uniform { .. }
            | GenSpec::Zipf { .. }
            | GenSpec::Normal { .. }
            | GenSpec::Hotspot { .. }
            | GenSpec::List { .. }
            | GenSpec::Set { .. }
            | GenSpec::Map { .. }
            | GenSpec::Tuple { .. }
            | GenSpec::Udt { .. }
            | GenSpec::Vector { .. }
            | GenSpec::Clustered { .. }
            | GenSpec::Sparse { .. } => return None,
        })
    }

    /// The generator of an integer distribution; `None` for any other spec.
    fn integer(spec: &GenSpec) -> Option<Generator> {
        Some(match *spec {
            GenSpec::Sequence { start } => Generator::Sequence { start },
            GenSpec::Uniform { min, max } => Generator::Uniform {
                min,
                span: (max.wrapping_sub(min) as u64).wrapping_add(1),
            },
            GenSpec::Zipf {
                min,
                count,
                exponent,
            } => Generator::Zipf {
                min,
                zipf: Zipf::new(count, exponent),
            },
            GenSpec::Normal {
                mean,
                stddev,
                min,
                max,
            } => Generator::Normal {
                mean,
                stddev,
                min: min.unwrap_or(i64::MIN),
                max: max.unwrap_or(i64::MAX),
            },
            GenSpec::Hotspot {
                min,
                max,
                hot_fraction,
                hot_probability,
            } => {
                // The whole i64 range has 2^64 values, one more than a u64 holds: take 2^64 - 1.
                let span = (max.wrapping_sub(min) as u64).saturating_add(1);
                let hot = ((span as f64 * hot_fraction).round() as u64).clamp(1, span);
                Generator::Hotspot {
                    min,
                    hot,
                    span,
                    hot_probability,
                }
            }
            _ => return None,
        })
    }

    fn bytes(kind: ValueKind, size: SizeSpec, seed: u64) -> Generator {
        let (min, max) = match size {
            SizeSpec::Fixed(n) => (n as usize, n as usize),
            SizeSpec::Range { min, max } => (min as usize, max as usize),
        };
        let mut pool = vec![0u8; max + POOL_SLACK];
        const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (i, b) in pool.iter_mut().enumerate() {
            let h = mix(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            *b = match kind {
                ValueKind::Text => ALNUM[(h % 62) as usize],
                _ => h as u8,
            };
        }
        Generator::Bytes {
            kind,
            min,
            max,
            pool: pool.into_boxed_slice(),
        }
    }

    pub fn kind(&self) -> ValueKind {
        match self {
            Generator::Sequence { .. }
            | Generator::Uniform { .. }
            | Generator::Zipf { .. }
            | Generator::Normal { .. }
            | Generator::Hotspot { .. } => ValueKind::Int,
            Generator::Bytes { kind, .. } => *kind,
            Generator::Uuid => ValueKind::Uuid,
            Generator::Timeuuid { .. } => ValueKind::Timeuuid,
            Generator::Timestamp { .. } => ValueKind::Timestamp,
            Generator::Float { .. } | Generator::Gaussian { .. } | Generator::ClusterElement(_) => {
                ValueKind::Float
            }
            Generator::Partition { .. } | Generator::Clustering { .. } => ValueKind::Int,
            Generator::List { set: false, .. } => ValueKind::List,
            Generator::List { set: true, .. } => ValueKind::Set,
            Generator::Map { .. } => ValueKind::Map,
            Generator::Tuple { .. } => ValueKind::Tuple,
            Generator::Udt { .. } => ValueKind::Udt,
            Generator::Vector { .. } => ValueKind::Vector,
            Generator::Sparse { .. } => ValueKind::Sparse,
        }
    }

    /// What the generator makes, for messages: `integer`, `set of text`, `sparse float`.
    pub fn describe(&self) -> String {
        match self {
            Generator::List { element, .. } | Generator::Vector { element, .. } => {
                format!("{} of {}", self.kind().name(), element.describe())
            }
            Generator::Map { key, value, .. } => {
                format!("map of {} to {}", key.describe(), value.describe())
            }
            Generator::Sparse { inner, .. } => format!("sparse {}", inner.describe()),
            g => g.kind().name().to_string(),
        }
    }

    /// The generator whose value a sparse one binds when it binds one.
    pub fn unsparse(&self) -> &Generator {
        let mut g = self;
        while let Generator::Sparse { inner, .. } = g {
            g = inner;
        }
        g
    }

    /// The value for op `index`. `stream` separates generators that share a seed (one stream
    /// per bind marker), so two uniform arguments of one op are independent.
    /// A composite's value is [`Value::Composite`]: its parts come from [`compose`]; a sparse
    /// generator's is null, unset or its inner generator's.
    #[inline]
    pub fn value(&self, seed: u64, stream: u64, index: u64) -> Value<'_> {
        let h = hash3(seed, stream, index);
        match self {
            Generator::Sequence { start } => Value::Int(start.wrapping_add(index as i64)),
            Generator::Uniform { min, span } => {
                Value::Int(min.wrapping_add(bounded(h, *span) as i64))
            }
            Generator::Zipf { min, zipf } => {
                Value::Int(min.wrapping_add(zipf.sample(h) as i64 - 1))
            }
            Generator::Normal {
                mean,
                stddev,
                min,
                max,
            } => {
                let z = dist::standard_normal(h);
                let v = (mean + stddev * z).round();
                Value::Int((v as i64).clamp(*min, *max))
            }
            Generator::Hotspot {
                min,
                hot,
                span,
                hot_probability,
            } => Value::Int(min.wrapping_add(hotspot(h, *hot, *span, *hot_probability) as i64)),
            Generator::Bytes { min, max, pool, .. } => Value::Bytes(slice_of(h, *min, *max, pool)),
            Generator::Uuid => Value::Uuid(uuid_v4(h)),
            Generator::Timeuuid { start_ms, node } => {
                Value::Uuid(timeuuid(*start_ms, index, *node))
            }
            Generator::Timestamp { start_ms, step_ms } => {
                Value::Timestamp(start_ms.wrapping_add((index as i64).wrapping_mul(*step_ms)))
            }
            Generator::Partition { start, block } => {
                Value::Int(start.wrapping_add((index / block) as i64))
            }
            Generator::Clustering { min, block } => {
                let row = index % block;
                Value::Int((row % partition_rows(index / block, *min, *block)) as i64)
            }
            Generator::Float { min, span } => Value::Float(min + unit(h) * span),
            Generator::Gaussian { mean, stddev } => {
                Value::Float(mean + stddev * dist::standard_normal(h))
            }
            Generator::ClusterElement(shape) => {
                Value::Float(clustered::element(seed, stream, index, shape))
            }
            Generator::Sparse {
                inner,
                nulls,
                unset,
            } => {
                if unit(mix(h ^ compose::SPARSE)) < *nulls {
                    if *unset { Value::Unset } else { Value::Null }
                } else {
                    inner.value(seed, stream, index)
                }
            }
            Generator::List { .. }
            | Generator::Map { .. }
            | Generator::Tuple { .. }
            | Generator::Udt { .. }
            | Generator::Vector { .. } => Value::Composite,
        }
    }
}

/// A hotspot's offset: in the first `hot` of `span` values with `hot_probability`.
#[inline]
fn hotspot(h: u64, hot: u64, span: u64, hot_probability: f64) -> u64 {
    if unit(h) < hot_probability || hot == span {
        bounded(mix(h), hot)
    } else {
        hot + bounded(mix(h), span - hot)
    }
}

/// `min..=max` bytes of the pool, from a position drawn from `h`.
#[inline]
fn slice_of(h: u64, min: usize, max: usize, pool: &[u8]) -> &[u8] {
    let len = if max > min {
        min + bounded(h, (max - min + 1) as u64) as usize
    } else {
        min
    };
    let start = bounded(mix(h), (pool.len() - max) as u64) as usize;
    &pool[start..start + len]
}

/// A version 4 UUID of RFC 4122 made of `h`.
#[inline]
fn uuid_v4(h: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&h.to_be_bytes());
    b[8..].copy_from_slice(&mix(h).to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    b
}

/// The number of rows of partition `p` (of `block` op indices): `min..=block`, a pure
/// function of `p`, so every op and instance agrees on it.
#[inline]
pub fn partition_rows(p: u64, min: u64, block: u64) -> u64 {
    if min >= block {
        return block;
    }
    min + bounded(mix(p ^ 0x2545_F491_4F6C_DD1D), block - min + 1)
}

/// The hash behind the value of (seed, stream, index).
#[inline]
fn hash3(seed: u64, stream: u64, index: u64) -> u64 {
    mix(seed
        ^ mix(
            stream.wrapping_add(0x5851_F42D_4C95_7F2D) ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)
        ))
}

/// A value in `0..n` from a hash, by multiply-shift (no modulo bias worth measuring).
#[inline]
fn bounded(h: u64, n: u64) -> u64 {
    if n == 0 {
        return h; // the whole u64 range
    }
    ((h as u128 * n as u128) >> 64) as u64
}

/// A version-1 UUID whose time is `start_ms` plus `index` ticks of 100 ns, so that ids are
/// unique per op and sort by op index.
fn timeuuid(start_ms: i64, index: u64, node: u64) -> [u8; 16] {
    const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
    let t = (start_ms.max(0) as u64 * 10_000 + GREGORIAN_OFFSET).wrapping_add(index);
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&((t & 0xFFFF_FFFF) as u32).to_be_bytes());
    b[4..6].copy_from_slice(&(((t >> 32) & 0xFFFF) as u16).to_be_bytes());
    b[6..8].copy_from_slice(&((((t >> 48) & 0x0FFF) as u16) | 0x1000).to_be_bytes());
    b[8..16].copy_from_slice(&node.to_be_bytes());
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// The least and greatest rows of a fixed or ranged count; `None` for a generator's count.
fn rows_bounds(rows: &CountSpec) -> Option<(u32, u32)> {
    match *rows {
        CountSpec::Fixed(n) => Some((n, n)),
        CountSpec::Range { min, max } => Some((min, max)),
        CountSpec::Generator(_) => None,
    }
}

#[cfg(test)]
mod tests;
