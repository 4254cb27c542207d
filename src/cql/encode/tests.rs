use std::sync::Arc;

use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType, UserDefinedType};
use scylla::serialize::writers::RowWriter;

use super::*;
use crate::data::{Count, Generator};
use crate::spec::{GenSpec, SizeSpec};

fn enc(v: Value<'_>, t: NativeType) -> Option<Vec<u8>> {
    let mut buf = [0u8; 40];
    scalar(v, &t, &mut buf).map(<[u8]>::to_vec)
}

/// The cell `g` writes for op 0 into a fresh buffer, without its 4-byte length.
fn cell(g: &Generator, typ: &ColumnType<'_>) -> Result<Vec<u8>, Unfit> {
    let mut out = Vec::new();
    let mut row = RowWriter::new(&mut out);
    write(g, 1, 0, 0, typ, row.make_cell_writer())?;
    Ok(out[4..].to_vec())
}

fn native(n: NativeType) -> ColumnType<'static> {
    ColumnType::Native(n)
}

fn fixed(n: i64) -> Arc<Generator> {
    Arc::new(Generator::new(&GenSpec::Uniform { min: n, max: n }, 0, 0))
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
        enc(Value::Int(128), NativeType::Varint).unwrap(),
        vec![0, 128]
    );
    assert_eq!(enc(Value::Int(-1), NativeType::Varint).unwrap(), vec![0xff]);
    assert!(enc(Value::Int(1), NativeType::Uuid).is_none());
}

#[test]
fn the_other_native_types_have_their_wire_forms() {
    // decimal: scale then unscaled varint; 1.5 is 1500000 at scale 6
    assert_eq!(
        enc(Value::Int(5), NativeType::Decimal).unwrap(),
        vec![0, 0, 0, 0, 5]
    );
    assert_eq!(
        enc(Value::Float(1.5), NativeType::Decimal).unwrap(),
        vec![0, 0, 0, 6, 0x16, 0xe3, 0x60]
    );
    assert_eq!(
        enc(Value::Int(0x0a000001), NativeType::Inet).unwrap(),
        vec![10, 0, 0, 1]
    );
    // duration: months 0, days 0, nanoseconds zigzag vint (3 -> 6; 200 -> 400 = 0x81 0x90)
    assert_eq!(
        enc(Value::Int(3), NativeType::Duration).unwrap(),
        vec![0, 0, 6]
    );
    assert_eq!(
        enc(Value::Int(200), NativeType::Duration).unwrap(),
        vec![0, 0, 0x81, 0x90]
    );
    let day_ns = 86_400_000_000_000i64;
    assert_eq!(
        enc(Value::Int(day_ns + 5), NativeType::Time).unwrap(),
        5i64.to_be_bytes().to_vec()
    );
    assert_eq!(
        enc(Value::Timestamp(86_400_000 + 1), NativeType::Time).unwrap(),
        1_000_000i64.to_be_bytes().to_vec()
    );
    assert_eq!(
        enc(Value::Int(1), NativeType::Date).unwrap(),
        ((1u32 << 31) + 1).to_be_bytes().to_vec()
    );
    assert_eq!(
        enc(Value::Float(0.5), NativeType::Float).unwrap(),
        0.5f32.to_be_bytes().to_vec()
    );
    assert!(enc(Value::Float(0.5), NativeType::Int).is_none());
}

#[test]
fn vints_match_cassandras() {
    let mut b = [0u8; 9];
    assert_eq!(unsigned_vint(0, &mut b), &[0]);
    assert_eq!(unsigned_vint(127, &mut b), &[127]);
    assert_eq!(unsigned_vint(128, &mut b), &[0x80, 0x80]);
    assert_eq!(unsigned_vint(16_383, &mut b), &[0xbf, 0xff]);
    assert_eq!(unsigned_vint(16_384, &mut b), &[0xc0, 0x40, 0x00]);
    assert_eq!(unsigned_vint(u64::MAX, &mut b).len(), 9);
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

#[test]
fn a_list_is_its_count_then_each_element_as_a_cell() {
    let g = Generator::List {
        set: false,
        size: Count::Fixed(2),
        element: fixed(7),
    };
    let typ = ColumnType::Collection {
        frozen: false,
        typ: CollectionType::List(Box::new(native(NativeType::Int))),
    };
    assert_eq!(
        cell(&g, &typ).unwrap(),
        vec![0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 7]
    );
    assert!(cell(&g, &native(NativeType::Int)).is_err());
}

#[test]
fn a_float_vector_is_its_values_back_to_back_and_normalises() {
    let g = Generator::Vector {
        element: fixed(3),
        normalize: true,
        dimension: 4,
    };
    let typ = ColumnType::Vector {
        typ: Box::new(native(NativeType::Float)),
        dimensions: 4,
    };
    let bytes = cell(&g, &typ).unwrap();
    assert_eq!(bytes.len(), 16, "four floats, no lengths");
    assert_eq!(&bytes[..4], &0.5f32.to_be_bytes(), "3 / sqrt(4 * 9)");
    // a variable-size element type: each value after its vint length
    let text = ColumnType::Vector {
        typ: Box::new(native(NativeType::Text)),
        dimensions: 2,
    };
    let g = Generator::Vector {
        element: fixed(42),
        normalize: false,
        dimension: 2,
    };
    assert_eq!(cell(&g, &text).unwrap(), vec![2, b'4', b'2', 2, b'4', b'2']);
}

fn address() -> ColumnType<'static> {
    ColumnType::UserDefinedType {
        frozen: true,
        definition: Arc::new(UserDefinedType {
            name: "address".into(),
            keyspace: "ks".into(),
            field_types: vec![
                ("street".into(), native(NativeType::Text)),
                ("zip".into(), native(NativeType::Int)),
            ],
        }),
    }
}

#[test]
fn udt_fields_are_written_in_the_types_order_and_checked_by_name() {
    let g = Generator::Udt {
        fields: vec![("zip".into(), fixed(9)), ("street".into(), fixed(1))],
    };
    assert_eq!(
        cell(&g, &address()).unwrap(),
        vec![0, 0, 0, 1, b'1', 0, 0, 0, 4, 0, 0, 0, 9]
    );
    assert!(check(&g, 0, &address(), Place::Marker).is_ok());
    let missing = Generator::Udt {
        fields: vec![("zip".into(), fixed(9))],
    };
    let e = check(&missing, 0, &address(), Place::Marker).unwrap_err();
    assert_eq!(e, "field `street` of frozen<address> has no generator");
    let extra = Generator::Udt {
        fields: vec![
            ("zip".into(), fixed(9)),
            ("street".into(), fixed(1)),
            ("city".into(), fixed(1)),
        ],
    };
    let e = check(&extra, 0, &address(), Place::Marker).unwrap_err();
    assert!(
        e.contains("frozen<address> has no field `city`; its fields are street, zip"),
        "{e}"
    );
}

#[test]
fn mismatches_are_explained_in_cql() {
    let text = Arc::new(Generator::new(
        &GenSpec::Text {
            size: SizeSpec::Fixed(4),
        },
        0,
        0,
    ));
    let set_text = ColumnType::Collection {
        frozen: false,
        typ: CollectionType::Set(Box::new(native(NativeType::Text))),
    };
    let e = check(&text, 0, &set_text, Place::Marker).unwrap_err();
    assert_eq!(
        e,
        "a text generator makes one value; a set<text> needs a set generator"
    );
    let vector = Generator::Vector {
        element: fixed(1),
        normalize: false,
        dimension: 3,
    };
    let v8 = ColumnType::Vector {
        typ: Box::new(native(NativeType::Float)),
        dimensions: 8,
    };
    let e = check(&vector, 0, &v8, Place::Marker).unwrap_err();
    assert_eq!(
        e,
        "vector<float, 8> has 8 dimensions, the generator makes 3"
    );
    let sparse = Arc::new(Generator::Sparse {
        inner: text.clone(),
        nulls: 0.5,
        unset: false,
    });
    let list = Generator::List {
        set: true,
        size: Count::Fixed(1),
        element: sparse,
    };
    let e = check(&list, 0, &set_text, Place::Marker).unwrap_err();
    assert!(e.contains("cannot be null"), "{e}");
    let e = check(&text, 0, &native(NativeType::Int), Place::Marker).unwrap_err();
    assert_eq!(e, "text values do not convert to int");
}
