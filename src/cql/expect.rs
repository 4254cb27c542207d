//! Compares a returned cell with the value a generator makes for an op index: the expected
//! value is encoded exactly as the write encoded it ([`super::encode::write`]), into a scratch
//! buffer of the thread, and compared byte for byte. Where the server changes the form of
//! what it stored (it sorts and deduplicates sets and map keys, frozen or not, and returns an
//! empty non-frozen collection as null), both sides are put in one canonical form first: only
//! then is anything allocated.

use std::cell::RefCell;

use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType};
use scylla::serialize::writers::CellWriter;

use super::encode::write;
use super::row::Arg;

thread_local! {
    /// The expected cell, reused by every comparison on the thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether `returned` (`None`: null) is the value `arg` makes at `index` for a column of type
/// `typ`.
pub fn matches(
    arg: &Arg,
    seed: u64,
    index: u64,
    typ: &ColumnType<'_>,
    returned: Option<&[u8]>,
) -> bool {
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        let g = &*arg.generator;
        if write(g, seed, arg.stream, index, typ, CellWriter::new(buf)).is_err() {
            return false;
        }
        // The cell: its length (-1 null, -2 unset: a column left as it was, null for a row
        // that only this write made), then its bytes.
        let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let expected = (len >= 0).then(|| &buf[4..]);
        same(typ, expected, returned)
    })
}

/// Whether two values of type `typ` are the same as the server would store them.
fn same(typ: &ColumnType<'_>, expected: Option<&[u8]>, returned: Option<&[u8]>) -> bool {
    if expected == returned {
        return true;
    }
    if let (ColumnType::Native(n), Some(a), Some(b)) = (typ, expected, returned) {
        // Numbers of any length: equal when equal without redundant sign bytes.
        return match n {
            NativeType::Varint => minimal(a) == minimal(b),
            NativeType::Decimal if a.len() >= 4 && b.len() >= 4 => {
                a[..4] == b[..4] && minimal(&a[4..]) == minimal(&b[4..])
            }
            _ => false,
        };
    }
    if !reshaped(typ) {
        return false;
    }
    match (whole(typ, expected), whole(typ, returned)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The canonical form of a column's value: an empty non-frozen collection is null.
fn whole<'a>(typ: &ColumnType<'_>, v: Option<&'a [u8]>) -> Option<Canon<'a>> {
    let Some(b) = v else {
        return Some(Canon::Null);
    };
    let empty_is_null = matches!(typ, ColumnType::Collection { frozen: false, .. });
    Some(match canon(typ, b)? {
        Canon::Seq(v) if empty_is_null && v.is_empty() => Canon::Null,
        Canon::Pairs(v) if empty_is_null && v.is_empty() => Canon::Null,
        c => c,
    })
}

/// Whether the server may return a value of `typ` in another form than it was written.
fn reshaped(typ: &ColumnType<'_>) -> bool {
    match typ {
        ColumnType::Collection { typ, frozen } => match typ {
            CollectionType::Set(_) | CollectionType::Map(_, _) => true,
            CollectionType::List(t) => !frozen || reshaped(t),
            _ => false,
        },
        ColumnType::Tuple(ts) => ts.iter().any(reshaped),
        ColumnType::UserDefinedType { definition, .. } => {
            definition.field_types.iter().any(|(_, t)| reshaped(t))
        }
        _ => false,
    }
}

/// A value in a form that does not depend on element order where the server sorts.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Canon<'a> {
    Null,
    Raw(&'a [u8]),
    Seq(Vec<Canon<'a>>),
    Pairs(Vec<(Canon<'a>, Canon<'a>)>),
}

/// The canonical form of `b`, a value of `typ`; `None` when it is not well formed.
fn canon<'a>(typ: &ColumnType<'_>, mut b: &'a [u8]) -> Option<Canon<'a>> {
    Some(match typ {
        ColumnType::Collection { typ, .. } => {
            let n = take_i32(&mut b)?;
            match typ {
                CollectionType::List(t) | CollectionType::Set(t) => {
                    let mut v = (0..n)
                        .map(|_| cell(t, &mut b))
                        .collect::<Option<Vec<_>>>()?;
                    if matches!(typ, CollectionType::Set(_)) {
                        v.sort();
                        v.dedup();
                    }
                    Canon::Seq(v)
                }
                CollectionType::Map(kt, vt) => {
                    let mut v = (0..n)
                        .map(|_| Some((cell(kt, &mut b)?, cell(vt, &mut b)?)))
                        .collect::<Option<Vec<_>>>()?;
                    // A key written twice keeps its last value, as the server does.
                    v.reverse();
                    v.sort_by(|x, y| x.0.cmp(&y.0));
                    v.dedup_by(|x, y| x.0 == y.0);
                    Canon::Pairs(v)
                }
                _ => Canon::Raw(b),
            }
        }
        ColumnType::Tuple(ts) => fields(ts.iter(), b)?,
        ColumnType::UserDefinedType { definition, .. } => {
            fields(definition.field_types.iter().map(|(_, t)| t), b)?
        }
        _ => Canon::Raw(b),
    })
}

/// A tuple's or UDT's fields in order; fields missing at the end are null.
fn fields<'a, 't>(
    types: impl Iterator<Item = &'t ColumnType<'t>>,
    mut b: &'a [u8],
) -> Option<Canon<'a>> {
    let mut v = Vec::new();
    for t in types {
        v.push(if b.is_empty() {
            Canon::Null
        } else {
            cell(t, &mut b)?
        });
    }
    Some(Canon::Seq(v))
}

/// One length-prefixed part of a composite, advancing `b` past it.
fn cell<'a>(typ: &ColumnType<'_>, b: &mut &'a [u8]) -> Option<Canon<'a>> {
    let len = take_i32(b)?;
    if len < 0 {
        return Some(Canon::Null);
    }
    let len = len as usize;
    if b.len() < len {
        return None;
    }
    let (v, rest) = b.split_at(len);
    *b = rest;
    canon(typ, v)
}

/// Two's complement digits without redundant leading sign bytes (a varint's, a decimal's
/// unscaled value): what the server may store for the same number.
pub fn minimal(digits: &[u8]) -> &[u8] {
    let mut start = 0;
    while start + 1 < digits.len()
        && ((digits[start] == 0 && digits[start + 1] & 0x80 == 0)
            || (digits[start] == 0xff && digits[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    &digits[start..]
}

fn take_i32(b: &mut &[u8]) -> Option<i32> {
    let (n, rest) = b.split_first_chunk::<4>()?;
    *b = rest;
    Some(i32::from_be_bytes(*n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(typ: CollectionType<'static>, frozen: bool) -> ColumnType<'static> {
        ColumnType::Collection { frozen, typ }
    }

    fn int() -> ColumnType<'static> {
        ColumnType::Native(NativeType::Int)
    }

    /// A collection of `n` length-prefixed parts.
    fn parts(n: i32, items: &[&[u8]]) -> Vec<u8> {
        let mut out = n.to_be_bytes().to_vec();
        for i in items {
            out.extend((i.len() as i32).to_be_bytes());
            out.extend(*i);
        }
        out
    }

    #[test]
    fn scalars_compare_bytes() {
        assert!(same(&int(), Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 1])));
        assert!(!same(&int(), Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 2])));
        assert!(!same(&int(), Some(&[0, 0, 0, 1]), None), "a missing value");
        assert!(same(&int(), None, None));
        let varint = ColumnType::Native(NativeType::Varint);
        assert!(
            same(&varint, Some(&[0, 0, 5]), Some(&[5])),
            "redundant sign bytes"
        );
        assert!(same(&varint, Some(&[0xff, 0xff, 0x80]), Some(&[0x80])));
        assert!(
            !same(&varint, Some(&[0, 0x80]), Some(&[0x80])),
            "128 is not -128"
        );
    }

    #[test]
    fn sets_and_maps_compare_as_the_server_stores_them() {
        let set = coll(CollectionType::Set(Box::new(int())), false);
        let written = parts(3, &[&[0, 0, 0, 2], &[0, 0, 0, 1], &[0, 0, 0, 2]]);
        let stored = parts(2, &[&[0, 0, 0, 1], &[0, 0, 0, 2]]);
        assert!(
            same(&set, Some(&written), Some(&stored)),
            "sorted, deduplicated"
        );
        let other = parts(2, &[&[0, 0, 0, 1], &[0, 0, 0, 3]]);
        assert!(!same(&set, Some(&written), Some(&other)));
        // An empty non-frozen collection is no value at all.
        assert!(same(&set, Some(&parts(0, &[])), None));
        let frozen = coll(CollectionType::Set(Box::new(int())), true);
        assert!(!same(&frozen, Some(&parts(0, &[])), None));
        // A key written twice keeps its last value.
        let map = coll(CollectionType::Map(Box::new(int()), Box::new(int())), true);
        let written = parts(
            2,
            &[&[0, 0, 0, 5], b"\0\0\0\x01", &[0, 0, 0, 5], b"\0\0\0\x02"],
        );
        let stored = parts(1, &[&[0, 0, 0, 5], b"\0\0\0\x02"]);
        assert!(same(&map, Some(&written), Some(&stored)));
        let stale = parts(1, &[&[0, 0, 0, 5], b"\0\0\0\x01"]);
        assert!(!same(&map, Some(&written), Some(&stale)));
    }

    #[test]
    fn a_list_keeps_its_order_and_a_tuple_its_trailing_nulls() {
        let list = coll(CollectionType::List(Box::new(int())), false);
        let a = parts(2, &[&[0, 0, 0, 1], &[0, 0, 0, 2]]);
        let b = parts(2, &[&[0, 0, 0, 2], &[0, 0, 0, 1]]);
        assert!(!same(&list, Some(&a), Some(&b)));
        let tuple = ColumnType::Tuple(vec![
            int(),
            coll(CollectionType::Set(Box::new(int())), true),
        ]);
        let mut written = vec![0, 0, 0, 4, 0, 0, 0, 9];
        written.extend((-1i32).to_be_bytes());
        let short = vec![0, 0, 0, 4, 0, 0, 0, 9];
        assert!(same(&tuple, Some(&written), Some(&short)));
        assert!(!same(
            &tuple,
            Some(&written),
            Some(&[0, 0, 0, 4, 0, 0, 0, 8])
        ));
    }
}
