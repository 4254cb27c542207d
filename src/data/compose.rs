//! Composite values: where each part of a collection, tuple, UDT or vector takes its value,
//! building composite generators from the names in `[data]`, and [`Datum`], a value owned.
//!
//! A part is another generator's value at a position of its own: field `f` of the value at
//! (stream, index) is at (`field_stream(stream, f)`, index), so a `sequence` field of a UDT
//! counts ops; element `j` of a collection is at (`element_stream(stream, slot)`,
//! `index * MAX_ELEMENTS + j`), so a `sequence` element makes elements that no other op or
//! element repeats. Every position is a pure function of the parent's: nothing is stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::hash::mix;
use super::{Generator, MAX_ELEMENTS, Value, bounded, hash3};
use crate::spec::{CountSpec, GenSpec};

/// Salts of the hashes that decide a part's position, a size, and a sparse column's nulls.
const FIELD: u64 = 0xA076_1D64_78BD_642F;
const ELEMENT: u64 = 0xE703_7ED1_A0B4_28DB;
const SIZE: u64 = 0x8EBC_6AF0_9C88_C6E3;
pub(super) const SPARSE: u64 = 0x5899_65CC_7537_4CC3;

/// A collection's number of elements.
#[derive(Debug, Clone)]
pub enum Count {
    Fixed(u32),
    Range {
        min: u32,
        max: u32,
    },
    /// An integer generator's value, clamped to `0..=MAX_ELEMENTS`.
    From(Arc<Generator>),
}

/// The stream of field (or tuple position) `f` of a value of stream `stream`.
#[inline]
pub fn field_stream(stream: u64, f: usize) -> u64 {
    mix(stream ^ FIELD.wrapping_mul(f as u64 + 1))
}

/// The stream of a collection's elements (`slot` 0) or a map's values (`slot` 1).
#[inline]
pub fn element_stream(stream: u64, slot: u64) -> u64 {
    mix(stream ^ ELEMENT.wrapping_mul(slot + 1))
}

/// The op index at which element `j` of the value at `index` takes its value.
#[inline]
pub fn element_index(index: u64, j: usize) -> u64 {
    index
        .wrapping_mul(u64::from(MAX_ELEMENTS))
        .wrapping_add(j as u64)
}

impl Generator {
    /// The number of elements of a list, set or map at (stream, index); 0 for other kinds.
    #[inline]
    pub fn count(&self, seed: u64, stream: u64, index: u64) -> usize {
        let size = match self {
            Generator::List { size, .. } | Generator::Map { size, .. } => size,
            _ => return 0,
        };
        let h = hash3(seed, stream ^ SIZE, index);
        match size {
            Count::Fixed(n) => *n as usize,
            Count::Range { min, max } => {
                *min as usize + bounded(h, u64::from(max - min) + 1) as usize
            }
            Count::From(g) => match g.value(seed, mix(stream ^ SIZE), index) {
                Value::Int(n) => n.clamp(0, i64::from(MAX_ELEMENTS)) as usize,
                _ => 0,
            },
        }
    }

    /// What each element of a vector at (stream, index) is multiplied by: one over the
    /// vector's length when it is normalised (and not all zero), else 1.
    pub fn vector_scale(&self, seed: u64, stream: u64, index: u64, dimension: usize) -> f64 {
        let Generator::Vector {
            element,
            normalize: true,
            ..
        } = self
        else {
            return 1.0;
        };
        let es = element_stream(stream, 0);
        let squares: f64 = (0..dimension)
            .map(|j| number(element.value(seed, es, element_index(index, j))).powi(2))
            .sum();
        if squares > 0.0 {
            1.0 / squares.sqrt()
        } else {
            1.0
        }
    }

    /// The value at (stream, index), owned: what the encoder writes, as a read returns it
    /// before the server sorts sets and map keys.
    pub fn datum(&self, seed: u64, stream: u64, index: u64) -> Datum {
        let g = match self.value(seed, stream, index) {
            Value::Composite => self.unsparse(),
            v => return Datum::from(v),
        };
        let n = g.count(seed, stream, index);
        match g {
            Generator::List { element, .. } => {
                let es = element_stream(stream, 0);
                Datum::List(
                    (0..n)
                        .map(|j| element.datum(seed, es, element_index(index, j)))
                        .collect(),
                )
            }
            Generator::Map { key, value, .. } => {
                let (ks, vs) = (element_stream(stream, 0), element_stream(stream, 1));
                Datum::Map(
                    (0..n)
                        .map(|j| {
                            let i = element_index(index, j);
                            (key.datum(seed, ks, i), value.datum(seed, vs, i))
                        })
                        .collect(),
                )
            }
            Generator::Tuple { fields } => Datum::List(
                fields
                    .iter()
                    .enumerate()
                    .map(|(f, g)| g.datum(seed, field_stream(stream, f), index))
                    .collect(),
            ),
            Generator::Udt { fields } => Datum::Udt(
                fields
                    .iter()
                    .enumerate()
                    .map(|(f, (name, g))| {
                        (name.clone(), g.datum(seed, field_stream(stream, f), index))
                    })
                    .collect(),
            ),
            Generator::Vector {
                element, dimension, ..
            } => {
                let d = usize::from(*dimension);
                let scale = g.vector_scale(seed, stream, index, d);
                let es = element_stream(stream, 0);
                Datum::List(
                    (0..d)
                        .map(|j| match element.value(seed, es, element_index(index, j)) {
                            v @ (Value::Int(_) | Value::Float(_)) if scale != 1.0 => {
                                Datum::Float(number(v) * scale)
                            }
                            v => Datum::from(v),
                        })
                        .collect(),
                )
            }
            _ => Datum::Null,
        }
    }
}

/// A number's value as a float (vectors are scaled as floats).
#[inline]
pub fn number(v: Value<'_>) -> f64 {
    match v {
        Value::Int(x) | Value::Timestamp(x) => x as f64,
        Value::Float(x) => x,
        _ => 0.0,
    }
}

/// A generated value, owned: what a read should find. Tuples and vectors are lists; a UDT
/// keeps its field names.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Unset,
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Uuid([u8; 16]),
    Timestamp(i64),
    List(Vec<Datum>),
    Map(Vec<(Datum, Datum)>),
    Udt(Vec<(String, Datum)>),
}

impl From<Value<'_>> for Datum {
    fn from(v: Value<'_>) -> Datum {
        match v {
            Value::Int(x) => Datum::Int(x),
            Value::Float(x) => Datum::Float(x),
            Value::Bytes(b) => Datum::Bytes(b.to_vec()),
            Value::Uuid(u) => Datum::Uuid(u),
            Value::Timestamp(t) => Datum::Timestamp(t),
            Value::Null | Value::Composite => Datum::Null,
            Value::Unset => Datum::Unset,
        }
    }
}

/// Why `[data]` could not be built: the generator, the field and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildError {
    pub name: String,
    pub field: &'static str,
    pub message: String,
}

/// Builds every generator of `[data]`, in name order (a generator's index is its stream),
/// resolving the names composites refer to. Refuses unknown names and cycles.
pub fn build_all(
    specs: &BTreeMap<String, GenSpec>,
    seed: u64,
    now_ms: i64,
) -> Result<Vec<(String, Arc<Generator>)>, BuildError> {
    let mut b = Builder {
        specs,
        seed,
        now_ms,
        done: HashMap::new(),
        visiting: Vec::new(),
    };
    specs
        .keys()
        .map(|name| Ok((name.clone(), b.get(name)?)))
        .collect()
}

struct Builder<'a> {
    specs: &'a BTreeMap<String, GenSpec>,
    seed: u64,
    now_ms: i64,
    done: HashMap<String, Arc<Generator>>,
    /// The names being built, outermost first: a name met again is a cycle.
    visiting: Vec<String>,
}

impl Builder<'_> {
    fn get(&mut self, name: &str) -> Result<Arc<Generator>, BuildError> {
        if let Some(g) = self.done.get(name) {
            return Ok(g.clone());
        }
        let spec = &self.specs[name];
        self.visiting.push(name.to_string());
        let g = Arc::new(self.make(name, spec)?);
        self.visiting.pop();
        self.done.insert(name.to_string(), g.clone());
        Ok(g)
    }

    /// The generator `field` of `owner` names.
    fn part(
        &mut self,
        owner: &str,
        field: &'static str,
        name: &str,
    ) -> Result<Arc<Generator>, BuildError> {
        let err = |message| BuildError {
            name: owner.to_string(),
            field,
            message,
        };
        if !self.specs.contains_key(name) {
            let known: Vec<&str> = self.specs.keys().map(String::as_str).collect();
            return Err(err(format!(
                "unknown generator `{name}`; [data] defines: {}",
                known.join(", ")
            )));
        }
        if let Some(at) = self.visiting.iter().position(|v| v == name) {
            let mut cycle = self.visiting[at..].to_vec();
            cycle.push(name.to_string());
            return Err(err(format!(
                "generators refer to each other in a cycle: {}",
                cycle.join(" -> ")
            )));
        }
        self.get(name)
    }

    fn make(&mut self, name: &str, spec: &GenSpec) -> Result<Generator, BuildError> {
        if let Some(g) = Generator::scalar(spec, self.seed, self.now_ms) {
            return Ok(g);
        }
        Ok(match spec {
            GenSpec::List { element, size } | GenSpec::Set { element, size } => Generator::List {
                set: matches!(spec, GenSpec::Set { .. }),
                size: self.count(name, size)?,
                element: self.part(name, "element", element)?,
            },
            GenSpec::Map { key, value, size } => Generator::Map {
                size: self.count(name, size)?,
                key: self.part(name, "key", key)?,
                value: self.part(name, "value", value)?,
            },
            GenSpec::Tuple { fields } => Generator::Tuple {
                fields: fields
                    .iter()
                    .map(|f| self.part(name, "fields", f))
                    .collect::<Result<_, _>>()?,
            },
            GenSpec::Udt { fields } => Generator::Udt {
                fields: fields
                    .iter()
                    .map(|(f, g)| Ok((f.clone(), self.part(name, "fields", g)?)))
                    .collect::<Result<_, _>>()?,
            },
            GenSpec::Vector {
                element,
                normalize,
                dimension,
            } => Generator::Vector {
                element: self.part(name, "element", element)?,
                normalize: *normalize,
                dimension: *dimension,
            },
            GenSpec::Clustered {
                dimension,
                centres,
                spread,
                normalize,
            } => Generator::Vector {
                element: Arc::new(Generator::ClusterElement(Arc::new(
                    super::clustered::Shape::new(
                        self.seed,
                        u64::from(*centres),
                        u64::from(*dimension),
                        *spread,
                    ),
                ))),
                normalize: *normalize,
                dimension: *dimension,
            },
            GenSpec::Sparse { of, nulls, unset } => Generator::Sparse {
                inner: self.part(name, "of", of)?,
                nulls: *nulls,
                unset: *unset,
            },
            _ => unreachable!("scalar specs are built above"),
        })
    }

    fn count(&mut self, name: &str, size: &CountSpec) -> Result<Count, BuildError> {
        Ok(match size {
            CountSpec::Fixed(n) => Count::Fixed(*n),
            CountSpec::Range { min, max } => Count::Range {
                min: *min,
                max: *max,
            },
            CountSpec::Generator(g) => {
                let g = self.part(name, "size", g)?;
                if !matches!(g.kind(), super::ValueKind::Int) {
                    return Err(BuildError {
                        name: name.to_string(),
                        field: "size",
                        message: format!(
                            "a size comes from an integer generator, not a {} one",
                            g.describe()
                        ),
                    });
                }
                Count::From(g)
            }
        })
    }
}

/// Whether a share (of nulls) is a probability.
pub fn is_share(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}
