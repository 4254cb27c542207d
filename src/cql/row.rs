//! Binds generated values straight into the request buffer, encoded for the column type the
//! server reported when the statement was prepared. Nothing is allocated per request: numbers
//! are formatted on the stack and payloads are slices of the generator's pool.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use scylla::cluster::metadata::{ColumnType, NativeType};
use scylla::serialize::SerializationError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::{CellWriter, RowWriter};

use crate::data::{Generator, Value, ValueKind};
use crate::plan::{OpPlan, Plan};

/// The values of one op, generated while the driver serialises the request.
pub struct BoundRow<'a> {
    pub plan: &'a Plan,
    pub op: &'a OpPlan,
    pub index: u64,
    /// Bytes of bound values written, for `payload_bytes_total`.
    pub bytes: AtomicUsize,
}

impl<'a> BoundRow<'a> {
    pub fn new(plan: &'a Plan, op: &'a OpPlan, index: u64) -> BoundRow<'a> {
        BoundRow {
            plan,
            op,
            index,
            bytes: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("column `{column}` has type {typ}, which a {kind:?} generator cannot fill")]
struct Mismatch {
    column: String,
    typ: String,
    kind: ValueKind,
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
        if columns.len() != self.op.args.len() {
            return Err(SerializationError::new(CountMismatch {
                columns: columns.len(),
                args: self.op.args.len(),
            }));
        }
        let mut bytes = 0;
        for (col, &g) in columns.iter().zip(&self.op.args) {
            let generator: &Generator = &self.plan.generators[g];
            let value = generator.value(self.plan.seed, g as u64, self.index);
            bytes += encode(value, col.typ(), writer.make_cell_writer()).map_err(|()| {
                SerializationError::new(Mismatch {
                    column: col.name().to_string(),
                    typ: format!("{:?}", col.typ()),
                    kind: generator.kind(),
                })
            })?;
        }
        self.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.op.args.is_empty()
    }
}

/// Writes `value` as a cell of type `typ`; returns the bytes written, or `Err(())` when the
/// value cannot be that type.
fn encode(value: Value<'_>, typ: &ColumnType<'_>, w: CellWriter<'_>) -> Result<usize, ()> {
    let ColumnType::Native(native) = typ else {
        return Err(());
    };
    let mut buf = [0u8; 40];
    let bytes: &[u8] = match (value, native) {
        (
            Value::Int(x) | Value::Timestamp(x),
            NativeType::BigInt | NativeType::Counter | NativeType::Timestamp,
        ) => {
            buf[..8].copy_from_slice(&x.to_be_bytes());
            &buf[..8]
        }
        (Value::Int(x), NativeType::Int) => {
            buf[..4].copy_from_slice(&(x as i32).to_be_bytes());
            &buf[..4]
        }
        (Value::Int(x), NativeType::SmallInt) => {
            buf[..2].copy_from_slice(&(x as i16).to_be_bytes());
            &buf[..2]
        }
        (Value::Int(x), NativeType::TinyInt) => {
            buf[0] = x as i8 as u8;
            &buf[..1]
        }
        (Value::Int(x), NativeType::Boolean) => {
            buf[0] = (x & 1) as u8;
            &buf[..1]
        }
        (Value::Int(x), NativeType::Double) => {
            buf[..8].copy_from_slice(&(x as f64).to_be_bytes());
            &buf[..8]
        }
        (Value::Int(x), NativeType::Float) => {
            buf[..4].copy_from_slice(&(x as f32).to_be_bytes());
            &buf[..4]
        }
        (Value::Int(x), NativeType::Varint) => varint(x, &mut buf),
        (Value::Int(x), NativeType::Blob) => {
            buf[..8].copy_from_slice(&x.to_be_bytes());
            &buf[..8]
        }
        (Value::Int(x) | Value::Timestamp(x), NativeType::Text | NativeType::Ascii) => {
            decimal(x, &mut buf)
        }
        (Value::Timestamp(ms), NativeType::Date) => {
            let days = ms.div_euclid(86_400_000) + (1i64 << 31);
            buf[..4].copy_from_slice(&(days as u32).to_be_bytes());
            &buf[..4]
        }
        (Value::Bytes(b), NativeType::Text | NativeType::Ascii | NativeType::Blob) => b,
        (Value::Uuid(u), NativeType::Uuid) => {
            buf[..16].copy_from_slice(&u);
            &buf[..16]
        }
        (Value::Uuid(u), NativeType::Timeuuid) if u[6] >> 4 == 1 => {
            buf[..16].copy_from_slice(&u);
            &buf[..16]
        }
        (Value::Uuid(u), NativeType::Text | NativeType::Ascii) => hyphenated(u, &mut buf),
        _ => return Err(()),
    };
    w.set_value(bytes).map_err(|_| ())?;
    Ok(bytes.len())
}

fn decimal(x: i64, buf: &mut [u8; 40]) -> &[u8] {
    let mut cursor = &mut buf[..];
    let _ = write!(cursor, "{x}"); // 20 bytes at most: cannot fail
    let len = 40 - cursor.len();
    &buf[..len]
}

/// The shortest big-endian two's complement form, as CQL's varint wants.
fn varint(x: i64, buf: &mut [u8; 40]) -> &[u8] {
    let b = x.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let redundant = (b[start] == 0 && b[start + 1] & 0x80 == 0)
            || (b[start] == 0xff && b[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    let len = 8 - start;
    buf[..len].copy_from_slice(&b[start..]);
    &buf[..len]
}

fn hyphenated(u: [u8; 16], buf: &mut [u8; 40]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut j = 0;
    for (i, byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[j] = b'-';
            j += 1;
        }
        buf[j] = HEX[(byte >> 4) as usize];
        buf[j + 1] = HEX[(byte & 0xf) as usize];
        j += 2;
    }
    &buf[..36]
}

/// Checks before the run that every generator can fill its column. Returns the message for
/// the first argument that cannot, naming it as `ops[i].args[j]`.
pub fn check_types(
    plan: &Plan,
    op_index: usize,
    columns: &[(String, ColumnType<'static>)],
) -> Result<(), String> {
    let op = &plan.ops[op_index];
    if columns.len() != op.args.len() {
        return Err(format!(
            "ops[{op_index}].args: the server reports {} bind markers, the op binds {}",
            columns.len(),
            op.args.len()
        ));
    }
    for (j, ((name, typ), &g)) in columns.iter().zip(&op.args).enumerate() {
        let generator = &plan.generators[g];
        let probe = generator.value(plan.seed, g as u64, 0);
        let mut scratch = Vec::new();
        let mut row = RowWriter::new(&mut scratch);
        if encode(probe, typ, row.make_cell_writer()).is_err() {
            return Err(format!(
                "ops[{op_index}].args[{j}]: generator `{}` ({:?}) cannot fill column `{name}` of type {typ:?}",
                op.arg_names[j],
                generator.kind()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: Value<'_>, t: NativeType) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut row = RowWriter::new(&mut out);
        encode(v, &ColumnType::Native(t), row.make_cell_writer()).ok()?;
        Some(out[4..].to_vec()) // drop the 4-byte length prefix
    }

    #[test]
    fn integers_follow_the_column_type() {
        assert_eq!(enc(Value::Int(42), NativeType::Text).unwrap(), b"42");
        assert_eq!(enc(Value::Int(-7), NativeType::Text).unwrap(), b"-7");
        assert_eq!(
            enc(Value::Int(1), NativeType::Int).unwrap(),
            vec![0, 0, 0, 1]
        );
        assert_eq!(
            enc(Value::Int(1), NativeType::BigInt).unwrap(),
            vec![0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            enc(Value::Int(128), NativeType::Varint).unwrap(),
            vec![0, 128]
        );
        assert_eq!(enc(Value::Int(-1), NativeType::Varint).unwrap(), vec![0xff]);
        assert!(enc(Value::Int(1), NativeType::Uuid).is_none());
    }

    #[test]
    fn bytes_and_uuids_encode_or_refuse() {
        assert_eq!(enc(Value::Bytes(b"abc"), NativeType::Blob).unwrap(), b"abc");
        assert!(enc(Value::Bytes(b"abc"), NativeType::Int).is_none());
        let u = [0x42u8; 16];
        let text = enc(Value::Uuid(u), NativeType::Text).unwrap();
        assert_eq!(text, b"42424242-4242-4242-4242-424242424242");
        assert!(
            enc(Value::Uuid(u), NativeType::Timeuuid).is_none(),
            "a v4-looking uuid is no timeuuid"
        );
    }
}
