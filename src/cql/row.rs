//! Binds generated values straight into the request buffer, encoded for the column type the
//! server reported when the statement was prepared ([`super::encode`]). Nothing is allocated
//! per request: numbers are formatted on the stack, payloads are slices of the generator's
//! pool, composites are written part by part.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scylla::cluster::metadata::ColumnType;
use scylla::serialize::SerializationError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;

use super::cqltype::{column_stream, cql_type, default_generator};
use super::encode::{Place, check, write};
use crate::data::Generator;
use crate::plan::Plan;

/// What a bind marker binds: a generator, and the stream its values come from (the
/// generator's index in `[data]`, or the column's for a default generator).
#[derive(Debug, Clone)]
pub struct Arg {
    pub generator: Arc<Generator>,
    pub stream: u64,
    /// The generator's name in `[data]`; `None` for a default one.
    pub name: Option<String>,
}

/// The values of one op, generated while the driver serialises the request.
pub struct BoundRow<'a> {
    pub seed: u64,
    pub args: &'a [Arg],
    pub index: u64,
    /// Bytes of bound values written, for `payload_bytes_total`.
    pub bytes: AtomicUsize,
}

impl<'a> BoundRow<'a> {
    pub fn new(seed: u64, args: &'a [Arg], index: u64) -> BoundRow<'a> {
        BoundRow {
            seed,
            args,
            index,
            bytes: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("column `{column}` has type {typ}, which a {generator} generator cannot fill")]
struct Mismatch {
    column: String,
    typ: String,
    generator: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the statement has {columns} bind markers but the op binds {args}")]
struct CountMismatch {
    columns: usize,
    args: usize,
}

impl SerializeRow for BoundRow<'_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> Result<(), SerializationError> {
        let columns = ctx.columns();
        if columns.len() != self.args.len() {
            return Err(SerializationError::new(CountMismatch {
                columns: columns.len(),
                args: self.args.len(),
            }));
        }
        let mut bytes = 0;
        for (col, arg) in columns.iter().zip(self.args) {
            let g = &*arg.generator;
            bytes += write(
                g,
                self.seed,
                arg.stream,
                self.index,
                col.typ(),
                writer.make_cell_writer(),
            )
            .map_err(|_| {
                SerializationError::new(Mismatch {
                    column: col.name().to_string(),
                    typ: cql_type(col.typ()),
                    generator: g.describe(),
                })
            })?;
        }
        self.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// A bind marker as the server reported it: its name, its type, and the type of the column
/// of that name in the table's schema when known (the marker's own never says `frozen`).
pub struct Marker {
    pub name: String,
    pub typ: ColumnType<'static>,
    pub schema_typ: Option<ColumnType<'static>>,
}

/// The arguments of op `op_index` for its bind markers: the generators its `args` name, or
/// for an op that names none, the default of each column type. Checks before the run that
/// each generator can fill its column; the message names the op, the bind marker, the
/// column, its CQL type and the generator.
pub fn bind_args(
    plan: &Plan,
    op_index: usize,
    markers: &[Marker],
    now_ms: i64,
) -> Result<Vec<Arg>, String> {
    let op = &plan.ops[op_index];
    let defaults = op.args.is_empty();
    if !defaults && markers.len() != op.args.len() {
        return Err(format!(
            "ops[{op_index}] ({}).args: the server reports {} bind markers, the op binds {}",
            op.name,
            markers.len(),
            op.args.len()
        ));
    }
    let mut args = Vec::with_capacity(markers.len());
    for (j, m) in markers.iter().enumerate() {
        let arg = if defaults {
            Arg {
                generator: Arc::new(default_generator(&m.typ, plan.seed, now_ms)),
                stream: column_stream(&m.name),
                name: None,
            }
        } else {
            let g = op.args[j];
            Arg {
                generator: plan.generators[g].clone(),
                stream: g as u64,
                name: Some(op.arg_names[j].clone()),
            }
        };
        check(&arg.generator, plan.seed, &m.typ, Place::Marker).map_err(|reason| {
            let shown = m.schema_typ.as_ref().unwrap_or(&m.typ);
            let generator = match &arg.name {
                Some(n) => format!("generator `{n}` ({})", arg.generator.describe()),
                None => format!("the default generator ({})", arg.generator.describe()),
            };
            format!(
                "ops[{op_index}] ({}), bind marker {} (ops[{op_index}].args[{j}]): {generator} \
                 cannot fill column `{}` of type {}: {reason}",
                op.name,
                j + 1,
                m.name,
                cql_type(shown)
            )
        })?;
        args.push(arg);
    }
    Ok(args)
}
