//! Column types as CQL writes them (`set<text>`, `frozen<address>`, `vector<float, 8>`), and
//! the generator a bind marker gets from its column type when the op names none.

use std::sync::Arc;

use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType};

use crate::data::{Count, Generator, mix};
use crate::spec::{GenSpec, SizeSpec};

/// The type as CQL writes it.
pub fn cql_type(typ: &ColumnType<'_>) -> String {
    let frozen = |yes: bool, t: String| if yes { format!("frozen<{t}>") } else { t };
    match typ {
        ColumnType::Native(n) => native_name(n).to_string(),
        ColumnType::Collection { frozen: f, typ } => frozen(
            *f,
            match typ {
                CollectionType::List(e) => format!("list<{}>", cql_type(e)),
                CollectionType::Set(e) => format!("set<{}>", cql_type(e)),
                CollectionType::Map(k, v) => format!("map<{}, {}>", cql_type(k), cql_type(v)),
                _ => "unknown collection".to_string(),
            },
        ),
        ColumnType::Vector { typ, dimensions } => {
            format!("vector<{}, {dimensions}>", cql_type(typ))
        }
        ColumnType::UserDefinedType {
            frozen: f,
            definition,
        } => frozen(*f, definition.name.to_string()),
        ColumnType::Tuple(types) => format!(
            "tuple<{}>",
            types.iter().map(cql_type).collect::<Vec<_>>().join(", ")
        ),
        _ => "unknown".to_string(),
    }
}

pub fn native_name(n: &NativeType) -> &'static str {
    match n {
        NativeType::Ascii => "ascii",
        NativeType::Boolean => "boolean",
        NativeType::Blob => "blob",
        NativeType::Counter => "counter",
        NativeType::Date => "date",
        NativeType::Decimal => "decimal",
        NativeType::Double => "double",
        NativeType::Duration => "duration",
        NativeType::Float => "float",
        NativeType::Int => "int",
        NativeType::BigInt => "bigint",
        NativeType::Text => "text",
        NativeType::Timestamp => "timestamp",
        NativeType::Inet => "inet",
        NativeType::SmallInt => "smallint",
        NativeType::TinyInt => "tinyint",
        NativeType::Time => "time",
        NativeType::Timeuuid => "timeuuid",
        NativeType::Uuid => "uuid",
        NativeType::Varint => "varint",
        _ => "unknown",
    }
}

/// The stream of a default generator: one per column name, so an insert and a read by key
/// that both leave their arguments out bind the same key at the same op index.
pub fn column_stream(column: &str) -> u64 {
    // FNV-1a, then the generators' own mix.
    let h = column.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    mix(h)
}

/// The spec of the scalar generator a column of native type `n` gets by default, also
/// written by `cqlpulse init`.
pub fn default_spec(n: &NativeType) -> GenSpec {
    let uniform = |min: i64, max: i64| GenSpec::Uniform { min, max };
    match n {
        NativeType::Ascii | NativeType::Text => GenSpec::Text {
            size: SizeSpec::Range { min: 8, max: 24 },
        },
        NativeType::Blob => GenSpec::Blob {
            size: SizeSpec::Range { min: 16, max: 64 },
        },
        NativeType::Boolean => uniform(0, 1),
        NativeType::TinyInt => uniform(-128, 127),
        NativeType::SmallInt => uniform(-32_768, 32_767),
        NativeType::Int | NativeType::BigInt | NativeType::Varint => GenSpec::Sequence { start: 0 },
        NativeType::Counter => uniform(1, 10),
        NativeType::Decimal | NativeType::Double | NativeType::Float => GenSpec::Float {
            min: 0.0,
            max: 1000.0,
        },
        NativeType::Date | NativeType::Timestamp => GenSpec::Timestamp {
            start_ms: None,
            step_ms: 1000,
        },
        NativeType::Time => uniform(0, 86_399_999_999_999),
        NativeType::Duration => uniform(0, 3_600_000_000_000),
        NativeType::Inet => uniform(0, i64::from(u32::MAX)),
        NativeType::Timeuuid => GenSpec::Timeuuid { start_ms: None },
        _ => GenSpec::Uuid {},
    }
}

/// The generator a column of type `typ` gets when its op names none: a scalar one per
/// [`default_spec`], and composites of those (1 to 5 elements, every field, vectors of
/// standard normal floats).
pub fn default_generator(typ: &ColumnType<'_>, seed: u64, now_ms: i64) -> Generator {
    let part = |t: &ColumnType<'_>| Arc::new(default_generator(t, seed, now_ms));
    let size = Count::Range { min: 1, max: 5 };
    match typ {
        ColumnType::Native(n) => Generator::new(&default_spec(n), seed, now_ms),
        ColumnType::Collection {
            typ: CollectionType::Map(k, v),
            ..
        } => Generator::Map {
            size,
            key: part(k),
            value: part(v),
        },
        ColumnType::Collection {
            typ: CollectionType::List(e) | CollectionType::Set(e),
            ..
        } => Generator::List {
            set: matches!(
                typ,
                ColumnType::Collection {
                    typ: CollectionType::Set(_),
                    ..
                }
            ),
            size,
            element: part(e),
        },
        ColumnType::Tuple(types) => Generator::Tuple {
            fields: types.iter().map(part).collect(),
        },
        ColumnType::UserDefinedType { definition, .. } => Generator::Udt {
            fields: definition
                .field_types
                .iter()
                .map(|(n, t)| (n.to_string(), part(t)))
                .collect(),
        },
        ColumnType::Vector { typ, dimensions } => Generator::Vector {
            element: match &**typ {
                ColumnType::Native(NativeType::Float | NativeType::Double) => {
                    Arc::new(Generator::new(
                        &GenSpec::Gaussian {
                            mean: 0.0,
                            stddev: 1.0,
                        },
                        seed,
                        now_ms,
                    ))
                }
                t => part(t),
            },
            normalize: false,
            dimension: *dimensions,
        },
        _ => Generator::new(&GenSpec::Uuid {}, seed, now_ms),
    }
}
