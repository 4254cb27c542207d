//! What a verified read binds and compares, worked out once the statements are prepared: its
//! bind markers take the write's generators for the same columns (so the read finds the row
//! the write made at an op index), and each column it returns is compared with the write's
//! generator for that column. Refused with the reason when the read cannot be verified.

use scylla::cluster::metadata::ColumnType;
use scylla::statement::prepared::PreparedStatement;

use super::row::{Arg, Marker};
use crate::data::Generator;
use crate::plan::Plan;

/// A returned column and the write's argument that wrote it.
#[derive(Debug, Clone)]
pub struct Expected {
    pub column: String,
    pub typ: ColumnType<'static>,
    pub arg: Arg,
}

/// How a verified read reads back its write.
#[derive(Debug, Clone)]
pub struct VerifyRead {
    /// The write op (an index of the plan's ops).
    pub write: usize,
    /// Rows per op index of the write (its batch size, 1 unbatched): op index `i` wrote the
    /// rows `i * rows ..`.
    pub rows: u64,
    /// The read's bind markers, bound from the write's generators.
    pub key: Vec<Arg>,
    /// The key's columns, for the log.
    pub key_columns: Vec<String>,
    /// The returned columns in the order the server returns them.
    pub columns: Vec<Expected>,
}

/// The verified read of op `op`, whose write has arguments `write_args` for its bind markers
/// `write_markers`. The error names the op, the write and the reason.
pub fn verify_read(
    plan: &Plan,
    op: usize,
    read: &PreparedStatement,
    read_markers: &[Marker],
    write_markers: &[Marker],
    write_args: &[Arg],
) -> Result<Option<VerifyRead>, String> {
    let Some(write) = plan.ops[op].verify else {
        return Ok(None);
    };
    let (name, wname) = (&plan.ops[op].name, &plan.ops[write].name);
    let refuse = |why: String| format!("ops[{op}] ({name}).verify = \"{wname}\": {why}");
    let written = |column: &str| {
        write_markers
            .iter()
            .position(|m| m.name == column)
            .map(|j| write_args[j].clone())
    };
    let mut key = Vec::with_capacity(read_markers.len());
    for m in read_markers {
        key.push(written(&m.name).ok_or_else(|| {
            refuse(format!(
                "the read's bind marker `{}` is not a column {wname} binds from a generator, so \
                 the read cannot find the row {wname} wrote",
                m.name
            ))
        })?);
    }
    if !unique_per_index(&key) {
        let gens: Vec<String> = key.iter().map(|a| a.generator.describe()).collect();
        return Err(refuse(format!(
            "the key columns it binds ({}: {}) are not unique per op index, so a later write \
             may overwrite the row read back; use a sequence, uuid, timeuuid or timestamp \
             generator, or a partition and clustering pair with a fixed row count",
            read_markers
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            gens.join(", ")
        )));
    }
    let mut columns = Vec::new();
    let specs = read.get_current_result_set_col_specs();
    for c in specs.get().iter() {
        let arg = written(c.name()).ok_or_else(|| {
            refuse(format!(
                "it returns column `{}`, which {wname} does not bind from a generator: its \
                 value cannot be regenerated (select only the columns {wname} writes)",
                c.name()
            ))
        })?;
        columns.push(Expected {
            column: c.name().to_string(),
            typ: c.typ().clone().into_owned(),
            arg,
        });
    }
    if columns.is_empty() {
        return Err(refuse("it returns no column to compare".into()));
    }
    let rows = plan.ops[write].batch.map_or(1, |(size, _)| u64::from(size));
    Ok(Some(VerifyRead {
        write,
        rows,
        key,
        key_columns: read_markers.iter().map(|m| m.name.clone()).collect(),
        columns,
    }))
}

/// Whether the values of `key` at two different op indices always differ: one of them comes
/// from a generator that never repeats, or a partition and a clustering generator of the
/// same fixed rows per partition are both bound.
fn unique_per_index(key: &[Arg]) -> bool {
    let gens: Vec<&Generator> = key.iter().map(|a| &*a.generator).collect();
    let injective = gens.iter().any(|g| match g {
        Generator::Sequence { .. } | Generator::Uuid | Generator::Timeuuid { .. } => true,
        Generator::Timestamp { step_ms, .. } => *step_ms != 0,
        _ => false,
    });
    let pair = gens.iter().any(|p| {
        let Generator::Partition { block, .. } = p else {
            return false;
        };
        gens.iter()
            .any(|c| matches!(c, Generator::Clustering { min, block: b } if b == block && min >= b))
    });
    injective || pair
}
