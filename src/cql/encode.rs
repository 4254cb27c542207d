//! Writes a generator's value as a cell of a column type, straight into the request's buffer:
//! scalars are formatted on the stack, payloads are slices of the generator's pool, and a
//! collection, tuple, UDT or vector is written part by part through the driver's nested cell
//! writers (no value is built first). [`check`] proves before the run that a generator can
//! fill a type, so a request never meets a mismatch.

use std::io::Write;

use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType};
use scylla::serialize::writers::{CellValueBuilder, CellWriter};

use super::cqltype::cql_type;
use crate::data::compose::{element_index, element_stream, field_stream, number};
use crate::data::{Generator, Value};

/// Scratch space of one scalar: the longest is a hyphenated uuid as text (36 bytes).
type Scratch = [u8; 40];

/// A value that cannot be written as the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfit;

/// Writes the value of `g` at (stream, index) as a cell of type `typ`; returns the bytes of
/// values written, or `Err(Unfit)` when the value cannot be that type (which [`check`] rules
/// out before the run).
#[inline]
pub fn write(
    g: &Generator,
    seed: u64,
    stream: u64,
    index: u64,
    typ: &ColumnType<'_>,
    cell: CellWriter<'_>,
) -> Result<usize, Unfit> {
    match g.value(seed, stream, index) {
        Value::Null => {
            cell.set_null();
            Ok(0)
        }
        Value::Unset => {
            cell.set_unset();
            Ok(0)
        }
        Value::Composite => composite(g.unsparse(), seed, stream, index, typ, cell),
        v => {
            let ColumnType::Native(native) = typ else {
                return Err(Unfit);
            };
            let mut buf = [0u8; 40];
            let bytes = scalar(v, native, &mut buf).ok_or(Unfit)?;
            cell.set_value(bytes).map_err(|_| Unfit)?;
            Ok(bytes.len())
        }
    }
}

fn composite(
    g: &Generator,
    seed: u64,
    stream: u64,
    index: u64,
    typ: &ColumnType<'_>,
    cell: CellWriter<'_>,
) -> Result<usize, Unfit> {
    let mut b = cell.into_value_builder();
    let bytes = match (g, typ) {
        (Generator::List { .. } | Generator::Map { .. }, ColumnType::Collection { typ, .. }) => {
            collection(g, seed, stream, index, typ, &mut b)?
        }
        (Generator::Tuple { fields }, ColumnType::Tuple(types)) if fields.len() == types.len() => {
            let mut bytes = 0;
            for (f, (fg, t)) in fields.iter().zip(types).enumerate() {
                let s = field_stream(stream, f);
                bytes += write(fg, seed, s, index, t, b.make_sub_writer())?;
            }
            bytes
        }
        (Generator::Udt { fields }, ColumnType::UserDefinedType { definition, .. }) => {
            // In the type's order; `check` made sure every field has a generator.
            let mut bytes = 0;
            for (name, t) in &definition.field_types {
                let f = fields.iter().position(|(n, _)| n == name).ok_or(Unfit)?;
                let s = field_stream(stream, f);
                bytes += write(&fields[f].1, seed, s, index, t, b.make_sub_writer())?;
            }
            bytes
        }
        (
            Generator::Vector {
                element, dimension, ..
            },
            ColumnType::Vector { typ, dimensions },
        ) if dimension == dimensions => {
            let ColumnType::Native(native) = &**typ else {
                return Err(Unfit);
            };
            vector(g, element, seed, stream, index, native, &mut b)?
        }
        _ => return Err(Unfit),
    };
    b.finish().map_err(|_| Unfit)?;
    Ok(bytes)
}

/// A list, set or map: its number of elements, then each element (or key and value) as a
/// cell of its own.
fn collection(
    g: &Generator,
    seed: u64,
    stream: u64,
    index: u64,
    typ: &CollectionType<'_>,
    b: &mut CellValueBuilder<'_>,
) -> Result<usize, Unfit> {
    let n = g.count(seed, stream, index);
    b.append_bytes(&(n as i32).to_be_bytes());
    let (s0, s1) = (element_stream(stream, 0), element_stream(stream, 1));
    let mut bytes = 0;
    match (g, typ) {
        (Generator::List { element, .. }, CollectionType::List(t) | CollectionType::Set(t)) => {
            for i in (0..n).map(|j| element_index(index, j)) {
                bytes += write(element, seed, s0, i, t, b.make_sub_writer())?;
            }
        }
        (Generator::Map { key, value, .. }, CollectionType::Map(kt, vt)) => {
            for i in (0..n).map(|j| element_index(index, j)) {
                bytes += write(key, seed, s0, i, kt, b.make_sub_writer())?;
                bytes += write(value, seed, s1, i, vt, b.make_sub_writer())?;
            }
        }
        _ => return Err(Unfit),
    }
    Ok(bytes)
}

/// The elements of a vector: values of a fixed-size type back to back, others each after
/// its length as an unsigned vint (Cassandra 5.0's vector format).
fn vector(
    g: &Generator,
    element: &Generator,
    seed: u64,
    stream: u64,
    index: u64,
    native: &NativeType,
    b: &mut CellValueBuilder<'_>,
) -> Result<usize, Unfit> {
    let Generator::Vector { dimension, .. } = g else {
        return Err(Unfit);
    };
    let d = usize::from(*dimension);
    let scale = g.vector_scale(seed, stream, index, d);
    let fixed = native.type_size_for_vector().is_some();
    let es = element_stream(stream, 0);
    let mut bytes = 0;
    for j in 0..d {
        let mut v = element.value(seed, es, element_index(index, j));
        if scale != 1.0 {
            v = Value::Float(number(v) * scale);
        }
        let mut buf = [0u8; 40];
        let value = scalar(v, native, &mut buf).ok_or(Unfit)?;
        if !fixed {
            let mut len = [0u8; 9];
            b.append_bytes(unsigned_vint(value.len() as u64, &mut len));
        }
        b.append_bytes(value);
        bytes += value.len();
    }
    Ok(bytes)
}

/// A scalar value as the bytes of a native type, or `None` when it cannot be that type.
pub fn scalar<'b>(v: Value<'b>, native: &NativeType, buf: &'b mut Scratch) -> Option<&'b [u8]> {
    let put = |buf: &'b mut Scratch, b: &[u8]| -> &'b [u8] {
        buf[..b.len()].copy_from_slice(b);
        &buf[..b.len()]
    };
    const DAY_NS: i64 = 86_400_000_000_000;
    Some(match (v, native) {
        (
            Value::Int(x) | Value::Timestamp(x),
            NativeType::BigInt | NativeType::Counter | NativeType::Timestamp,
        ) => put(buf, &x.to_be_bytes()),
        (Value::Int(x), NativeType::Int) => put(buf, &(x as i32).to_be_bytes()),
        (Value::Int(x), NativeType::SmallInt) => put(buf, &(x as i16).to_be_bytes()),
        (Value::Int(x), NativeType::TinyInt) => put(buf, &[x as i8 as u8]),
        (Value::Int(x), NativeType::Boolean) => put(buf, &[(x & 1) as u8]),
        (Value::Int(x), NativeType::Double) => put(buf, &(x as f64).to_be_bytes()),
        (Value::Int(x), NativeType::Float) => put(buf, &(x as f32).to_be_bytes()),
        (Value::Float(x), NativeType::Double) => put(buf, &x.to_be_bytes()),
        (Value::Float(x), NativeType::Float) => put(buf, &(x as f32).to_be_bytes()),
        (Value::Int(x), NativeType::Varint) => varint(x, buf),
        (Value::Int(x), NativeType::Decimal) => decimal_number(x, 0, buf),
        // Six decimal places: a float's value to the micro-unit.
        (Value::Float(x), NativeType::Decimal) => decimal_number((x * 1e6).round() as i64, 6, buf),
        (Value::Int(x), NativeType::Blob) => put(buf, &x.to_be_bytes()),
        (Value::Int(x) | Value::Timestamp(x), NativeType::Text | NativeType::Ascii) => {
            decimal(x, buf)
        }
        // An integer is days since the epoch; a timestamp, the day it falls on.
        (Value::Int(days), NativeType::Date) => {
            put(buf, &((days + (1i64 << 31)) as u32).to_be_bytes())
        }
        (Value::Timestamp(ms), NativeType::Date) => {
            let days = ms.div_euclid(86_400_000) + (1i64 << 31);
            put(buf, &(days as u32).to_be_bytes())
        }
        // An integer is nanoseconds since midnight (modulo a day); a timestamp, its time of day.
        (Value::Int(ns), NativeType::Time) => put(buf, &ns.rem_euclid(DAY_NS).to_be_bytes()),
        (Value::Timestamp(ms), NativeType::Time) => {
            put(buf, &(ms.rem_euclid(86_400_000) * 1_000_000).to_be_bytes())
        }
        // An integer is that many nanoseconds (no months, no days).
        (Value::Int(ns), NativeType::Duration) => {
            buf[0] = 0; // months
            buf[1] = 0; // days
            let mut v = [0u8; 9];
            let n = unsigned_vint(((ns << 1) ^ (ns >> 63)) as u64, &mut v);
            buf[2..2 + n.len()].copy_from_slice(n);
            let len = 2 + n.len();
            &buf[..len]
        }
        // An integer is an IPv4 address (its low 32 bits); a uuid's bytes, an IPv6 address.
        (Value::Int(x), NativeType::Inet) => put(buf, &(x as u32).to_be_bytes()),
        (Value::Uuid(u), NativeType::Inet) => put(buf, &u),
        (Value::Bytes(b), NativeType::Text | NativeType::Ascii | NativeType::Blob) => b,
        (Value::Uuid(u), NativeType::Uuid) => put(buf, &u),
        (Value::Uuid(u), NativeType::Timeuuid) if u[6] >> 4 == 1 => put(buf, &u),
        (Value::Uuid(u), NativeType::Text | NativeType::Ascii) => hyphenated(u, buf),
        _ => return None,
    })
}

fn decimal(x: i64, buf: &mut Scratch) -> &[u8] {
    let mut cursor = &mut buf[..];
    let _ = write!(cursor, "{x}"); // 20 bytes at most: cannot fail
    let len = 40 - cursor.len();
    &buf[..len]
}

/// A CQL decimal: the scale, then the unscaled value as a varint.
fn decimal_number(unscaled: i64, scale: i32, buf: &mut Scratch) -> &[u8] {
    let mut v = [0u8; 40];
    let digits = varint(unscaled, &mut v);
    let len = 4 + digits.len();
    buf[..4].copy_from_slice(&scale.to_be_bytes());
    buf[4..len].copy_from_slice(digits);
    &buf[..len]
}

/// The shortest big-endian two's complement form, as CQL's varint wants.
fn varint(x: i64, buf: &mut Scratch) -> &[u8] {
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

/// Cassandra's unsigned vint: as many leading one bits in the first byte as bytes follow it.
fn unsigned_vint(v: u64, out: &mut [u8; 9]) -> &[u8] {
    let n = ((639 - 9 * v.leading_zeros()) >> 6).max(1) as usize;
    if n == 9 {
        out[0] = 0xff;
        out[1..].copy_from_slice(&v.to_be_bytes());
        return &out[..];
    }
    let extra = n - 1;
    let marked = v | (u64::from(!(0xffu8 >> extra)) << (8 * extra));
    out[..n].copy_from_slice(&marked.to_be_bytes()[8 - n..]);
    &out[..n]
}

fn hyphenated(u: [u8; 16], buf: &mut Scratch) -> &[u8] {
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

/// Where a value sits: a bind marker's own value, a field of a tuple or UDT, or an element
/// of a collection or vector (which cannot be null or unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Marker,
    Field,
    Element,
}

/// Whether `g` can fill `typ` at `place`; the reason when it cannot, types written as CQL.
pub fn check(g: &Generator, seed: u64, typ: &ColumnType<'_>, place: Place) -> Result<(), String> {
    let t = cql_type(typ);
    if let Generator::Sparse { inner, unset, .. } = g {
        return match place {
            Place::Element => Err(format!(
                "the elements of a {t} cannot be null (a sparse generator)"
            )),
            Place::Field if *unset => {
                Err(format!("a field of type {t} cannot be unset, only null"))
            }
            _ => check(inner, seed, typ, place),
        };
    }
    let elements = |e: &Generator, et: &ColumnType<'_>, what: &str| {
        check(e, seed, et, Place::Element).map_err(|m| format!("{what} of {t}: {m}"))
    };
    match (g, typ) {
        (
            Generator::List { element, .. },
            ColumnType::Collection {
                typ: CollectionType::List(et) | CollectionType::Set(et),
                ..
            },
        ) => elements(element, et, "the elements"),
        (
            Generator::Map { key, value, .. },
            ColumnType::Collection {
                typ: CollectionType::Map(kt, vt),
                ..
            },
        ) => {
            elements(key, kt, "the keys")?;
            elements(value, vt, "the values")
        }
        (Generator::Tuple { fields }, ColumnType::Tuple(types)) => {
            check_tuple(fields, seed, types, &t)
        }
        (Generator::Udt { fields }, ColumnType::UserDefinedType { definition, .. }) => {
            check_udt(fields, seed, definition, &t)
        }
        (
            Generator::Vector {
                element, dimension, ..
            },
            ColumnType::Vector {
                typ: et,
                dimensions,
            },
        ) => {
            if dimension != dimensions {
                return Err(format!(
                    "{t} has {dimensions} dimensions, the generator makes {dimension}"
                ));
            }
            check_vector(g, element, seed, et, &t)
        }
        (g, _) if g.value(seed, 0, 0) == Value::Composite => {
            Err(format!("a {} generator cannot make a {t}", g.kind().name()))
        }
        (g, ColumnType::Native(native)) => {
            let mut buf = [0u8; 40];
            match scalar(g.value(seed, 0, 0), native, &mut buf) {
                Some(_) => Ok(()),
                None => Err(format!("{} values do not convert to {t}", g.kind().name())),
            }
        }
        (g, _) => Err(format!(
            "a {} generator makes one value; a {t} needs a {} generator",
            g.kind().name(),
            composite_kind(typ)
        )),
    }
}

fn check_tuple(
    fields: &[std::sync::Arc<Generator>],
    seed: u64,
    types: &[ColumnType<'_>],
    t: &str,
) -> Result<(), String> {
    if fields.len() != types.len() {
        return Err(format!(
            "{t} has {} fields, the generator gives {}",
            types.len(),
            fields.len()
        ));
    }
    for (i, (fg, ft)) in fields.iter().zip(types).enumerate() {
        check(fg, seed, ft, Place::Field).map_err(|m| format!("field {} of {t}: {m}", i + 1))?;
    }
    Ok(())
}

fn check_udt(
    fields: &[(String, std::sync::Arc<Generator>)],
    seed: u64,
    definition: &scylla::cluster::metadata::UserDefinedType<'_>,
    t: &str,
) -> Result<(), String> {
    let names: Vec<&str> = definition.field_types.iter().map(|(n, _)| &**n).collect();
    for (name, _) in fields {
        if !names.contains(&name.as_str()) {
            return Err(format!(
                "{t} has no field `{name}`; its fields are {}",
                names.join(", ")
            ));
        }
    }
    for (name, ft) in &definition.field_types {
        let Some((_, fg)) = fields.iter().find(|(n, _)| n == name) else {
            return Err(format!("field `{name}` of {t} has no generator"));
        };
        check(fg, seed, ft, Place::Field).map_err(|m| format!("field `{name}` of {t}: {m}"))?;
    }
    Ok(())
}

fn check_vector(
    g: &Generator,
    element: &Generator,
    seed: u64,
    et: &ColumnType<'_>,
    t: &str,
) -> Result<(), String> {
    let ColumnType::Native(native) = et else {
        return Err(format!("{t}: cqlpulse fills vectors of native types only"));
    };
    check(element, seed, et, Place::Element).map_err(|m| format!("the elements of {t}: {m}"))?;
    if matches!(
        g,
        Generator::Vector {
            normalize: true,
            ..
        }
    ) && !matches!(native, NativeType::Float | NativeType::Double)
    {
        return Err(format!(
            "normalize needs float or double elements, not those of {t}"
        ));
    }
    Ok(())
}

/// The generator kind a composite type needs, for messages.
fn composite_kind(typ: &ColumnType<'_>) -> &'static str {
    match typ {
        ColumnType::Collection {
            typ: CollectionType::List(_),
            ..
        } => "list",
        ColumnType::Collection {
            typ: CollectionType::Set(_),
            ..
        } => "set",
        ColumnType::Collection { .. } => "map",
        ColumnType::Vector { .. } => "vector",
        ColumnType::UserDefinedType { .. } => "udt",
        ColumnType::Tuple(_) => "tuple",
        _ => "scalar",
    }
}

#[cfg(test)]
mod tests;
