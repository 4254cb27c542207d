//! Every type a Cassandra 5.0 column can have, round trip on the real node: cqlpulse writes
//! with its generators, the driver reads the rows back, and each stored value must equal the
//! value regenerated for the row's op index. Needs the node (`scripts/test`).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use std::sync::Arc;

use cqlpulse::cql::cqltype::{column_stream, default_generator};
use cqlpulse::cql::expect::minimal;
use cqlpulse::daemon::check;
use cqlpulse::data::{Datum, Generator};
use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType};
use scylla::value::{
    Counter, CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue,
    CqlVarint, Row,
};

use common::*;

const N: u64 = 300;

/// The schema: native types, collections (frozen, nested), tuples, UDTs (nested, frozen or
/// not), a vector, and a sparse column.
fn schema(ks: &str) -> String {
    format!(
        r#"
name = "types"
seed = 11
[schema]
keyspace = "{ks}"
mode = "recreate"
statements = [
  "CREATE TYPE IF NOT EXISTS address (street text, zip int)",
  "CREATE TYPE IF NOT EXISTS person (name text, home frozen<address>, tags frozen<set<text>>)",
  """CREATE TABLE IF NOT EXISTS native (id bigint PRIMARY KEY, a ascii, b blob, bo boolean,
     d date, de decimal, df decimal, db double, du duration, f float, ip inet, i int, si smallint,
     t text, tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid, vi varint, tx text)""",
  """CREATE TABLE IF NOT EXISTS composite (id bigint PRIMARY KEY, l list<int>, s set<text>,
     m map<text, int>, fl frozen<list<frozen<set<int>>>>, lm list<frozen<map<int, text>>>,
     tup tuple<int, text, frozen<list<int>>>, addr frozen<address>, who person,
     vec vector<float, 8>, vd vector<double, 3>, vt vector<text, 2>, sp text, su int)""",
  "CREATE TABLE IF NOT EXISTS counts (id bigint PRIMARY KEY, c counter)",
]
[data.id]
kind = "sequence"
[data.small]
kind = "uniform"
min = -100
max = 100
[data.wide]
kind = "uniform"
min = -9000000000000000000
max = 9000000000000000000
[data.word]
kind = "text"
size = {{ min = 1, max = 12 }}
[data.bytes]
kind = "blob"
size = {{ min = 0, max = 40 }}
[data.real]
kind = "float"
min = -1000.0
max = 1000.0
[data.z]
kind = "gaussian"
[data.when]
kind = "timestamp"
start_ms = 1700000000000
step_ms = 3600000
[data.tuid]
kind = "timeuuid"
start_ms = 1700000000000
[data.uid]
kind = "uuid"
[data.ns]
kind = "uniform"
min = 0
max = 90000000000000
[data.ints]
kind = "list"
element = "small"
size = {{ min = 1, max = 6 }}
[data.words]
kind = "set"
element = "word"
size = "nwords"
[data.nwords]
kind = "uniform"
min = 1
max = 4
[data.counts]
kind = "map"
key = "word"
value = "small"
size = 3
[data.seqset]
kind = "set"
element = "id"
size = {{ min = 1, max = 3 }}
[data.sets]
kind = "list"
element = "seqset"
size = 2
[data.imap]
kind = "map"
key = "id"
value = "word"
size = 2
[data.maps]
kind = "list"
element = "imap"
size = {{ min = 1, max = 3 }}
[data.tup]
kind = "tuple"
fields = ["small", "word", "ints"]
[data.addr]
kind = "udt"
fields = {{ street = "word", zip = "small" }}
[data.person]
kind = "udt"
fields = {{ name = "word", home = "addr", tags = "words" }}
[data.vec]
kind = "vector"
element = "z"
dimension = 8
normalize = true
[data.vd]
kind = "vector"
element = "real"
dimension = 3
[data.vt]
kind = "vector"
element = "word"
dimension = 2
[data.sparse]
kind = "sparse"
of = "word"
nulls = 0.3
[data.unset]
kind = "sparse"
of = "small"
nulls = 0.5
unset = true
[load]
model = "sync"
workers = 4
"#
    )
}

const NATIVE: &str = "INSERT INTO native (id, a, b, bo, d, de, df, db, du, f, ip, i, si, t, tm, ts, tu, ti, u, vi, tx) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const NATIVE_ARGS: &str = r#"["id", "word", "bytes", "small", "small", "wide", "real", "real", "ns", "real", "wide", "wide", "small", "word", "ns", "when", "tuid", "small", "uid", "wide", "uid"]"#;
const COMPOSITE: &str = "INSERT INTO composite (id, l, s, m, fl, lm, tup, addr, who, vec, vd, vt, sp, su) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const COMPOSITE_ARGS: &str = r#"["id", "ints", "words", "counts", "sets", "maps", "tup", "addr", "person", "vec", "vd", "vt", "sparse", "unset"]"#;

fn with_op(ks: &str, cql: &str, args: &str) -> String {
    format!(
        "{}\n[[ops]]\nname = \"write\"\ncql = \"{cql}\"\nargs = {args}\n",
        schema(ks)
    )
}

/// Runs one op `N` times, then checks every row of `table` against the regenerated values.
/// `names` are the columns the op binds, in the order of its arguments.
async fn round_trip(test: &str, table: &str, cql: &str, args: &str, names: &str) {
    let ks = keyspace("types");
    let path = spec_file(test, &with_op(&ks, cql, args));
    let summary = run(&path, vec![set("load.ops", &N.to_string())]).await;
    assert_eq!(summary.ok, N, "{}", summary.table());
    let plan = plan_of(&path);
    let op = &plan.ops[0];
    let named = |c: usize, _: &ColumnType<'_>| {
        let g = op.args[c];
        (plan.generators[g].clone(), g as u64)
    };
    let id = names.split(", ").position(|a| a == "id").unwrap();
    check_rows(&ks, table, names, id, plan.seed, &named).await;
}

type Source<'a> = dyn Fn(usize, &ColumnType<'_>) -> (Arc<Generator>, u64) + 'a;

/// Reads `names` of every row of `table` and compares each cell with the value `source`
/// gives the column (its generator and stream) at the row's op index, the `id` column's value.
async fn check_rows(ks: &str, table: &str, names: &str, id: usize, seed: u64, source: &Source<'_>) {
    let session = session().await;
    let rows = session
        .query_unpaged(format!("SELECT {names} FROM {ks}.{table}"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let types: Vec<ColumnType<'static>> = rows
        .column_specs()
        .iter()
        .map(|c| c.typ().clone().into_owned())
        .collect();
    let mut seen = 0;
    let mut checked_cells = 0;
    for row in rows.rows::<Row>().unwrap() {
        let row = row.unwrap();
        let Some(CqlValue::BigInt(key)) = row.columns[id] else {
            panic!("id: {:?}", row.columns[id])
        };
        let index = key as u64;
        for (c, cell) in row.columns.iter().enumerate() {
            let (g, stream) = source(c, &types[c]);
            let datum = g.datum(seed, stream, index);
            let want = match datum {
                // An unset column of a row written once is null.
                Datum::Null | Datum::Unset => None,
                d => Some(normal(expected(&d, &types[c]))),
            };
            assert_eq!(
                cell.clone().map(normal),
                want,
                "{table} op {index}, column {c} of {names}"
            );
            checked_cells += 1;
        }
        seen += 1;
    }
    assert_eq!(seen, N, "every op wrote its own row");
    assert_eq!(checked_cells, N as usize * types.len());
    drop_keyspace(&session, ks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_native_type_round_trips() {
    require_cassandra();
    let _serial = serial().await;
    let names = "id, a, b, bo, d, de, df, db, du, f, ip, i, si, t, tm, ts, tu, ti, u, vi, tx";
    round_trip("native", "native", NATIVE, NATIVE_ARGS, names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_tuples_udts_vectors_and_sparse_columns_round_trip() {
    require_cassandra();
    let _serial = serial().await;
    let names = "id, l, s, m, fl, lm, tup, addr, who, vec, vd, vt, sp, su";
    round_trip("composite", "composite", COMPOSITE, COMPOSITE_ARGS, names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_round_trip() {
    require_cassandra();
    let _serial = serial().await;
    round_trip(
        "counter",
        "counts",
        "UPDATE counts SET c = c + ? WHERE id = ?",
        r#"["small", "id"]"#,
        "c, id",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_without_args_get_a_generator_per_column_type() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("defaults");
    let names = "id, l, s, m, fl, lm, tup, addr, who, vec, vd, vt, sp, su";
    let text = format!(
        "{}\n[[ops]]\nname = \"write\"\ncql = \"{COMPOSITE}\"\n",
        schema(&ks)
    );
    let path = spec_file("defaults", &text);
    let summary = run(&path, vec![set("load.ops", &N.to_string())]).await;
    assert_eq!(summary.ok, N, "{}", summary.table());
    let columns: Vec<&str> = names.split(", ").collect();
    // The defaults take no time origin here (no time types), so 0 regenerates them.
    let defaults = |c: usize, typ: &ColumnType<'_>| {
        (
            Arc::new(default_generator(typ, 11, 0)),
            column_stream(columns[c]),
        )
    };
    check_rows(&ks, "composite", names, 0, 11, &defaults).await;
}

/// `check --connect` refuses a generator that cannot fill its column, naming the op, the
/// bind marker, the column, its CQL type and the generator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatches_are_refused_before_any_load_in_cql_terms() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("mismatch");
    let cases = [
        (
            r#"["id", "word"]"#,
            "id, s",
            "ops[0] (write), bind marker 2 (ops[0].args[1]): generator `word` (text) cannot fill \
             column `s` of type set<text>: a text generator makes one value; a set<text> needs a \
             set generator",
        ),
        (
            r#"["id", "vd"]"#,
            "id, vec",
            "cannot fill column `vec` of type vector<float, 8>: vector<float, 8> has 8 \
             dimensions, the generator makes 3",
        ),
        (
            r#"["id", "tup"]"#,
            "id, addr",
            "generator `tup` (tuple) cannot fill column `addr` of type frozen<address>: a tuple \
             generator cannot make a address",
        ),
        (
            r#"["id", "addr"]"#,
            "id, who",
            "generator `addr` (udt) cannot fill column `who` of type person: person has no field \
             `street`; its fields are name, home, tags",
        ),
        (r#"["id", "ints"]"#, "id, l", ""),
    ];
    for (i, (args, columns, want)) in cases.iter().enumerate() {
        let marks = vec!["?"; columns.split(", ").count()].join(", ");
        let cql = format!("INSERT INTO composite ({columns}) VALUES ({marks})");
        let mut text = with_op(&ks, &cql, args);
        if i > 0 {
            text = text.replace("mode = \"recreate\"", "mode = \"create_if_missing\"");
        }
        let path = spec_file(&format!("mismatch{i}"), &text);
        let plan = plan_of(&path);
        match check::connect(&plan).await {
            Ok(()) => assert!(want.is_empty(), "case {i} accepted, expected {want}"),
            Err(e) => {
                let e = e.to_string();
                assert!(!want.is_empty() && e.contains(want), "case {i}: {e}");
            }
        }
    }
    drop_keyspace(&session().await, &ks).await;
}

/// `cqlpulse init` on tables holding every type (a counter table, a clustered one): each spec
/// it writes runs clean as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_spec_that_runs_as_is_for_every_type() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("init");
    let text = with_op(&ks, NATIVE, NATIVE_ARGS).replace(
        "\"CREATE TABLE IF NOT EXISTS counts",
        "\"CREATE TABLE IF NOT EXISTS wide (p text, c int, v list<int>, w map<int, frozen<address>>, PRIMARY KEY (p, c))\",\n  \"CREATE TABLE IF NOT EXISTS counts",
    );
    let plan = plan_of(&spec_file("init-schema", &text));
    check::connect(&plan).await.unwrap();
    for table in ["native", "composite", "counts", "wide"] {
        let spec =
            cqlpulse::cql::template::from_table(&[NODE.to_string()], &format!("{ks}.{table}"))
                .await
                .unwrap();
        assert!(spec.contains("[[ops]]\nname = \"read\""), "{spec}");
        assert_eq!(
            spec.contains("name = \"slice\""),
            table == "wide",
            "a slice for the clustered table: {spec}"
        );
        let path = spec_file(&format!("init-{table}"), &spec);
        let summary = run(&path, vec![set("load.ops", "400"), set("load.rate", "0.0")]).await;
        assert_eq!(summary.ok, 400, "{table}: {}\n{spec}", summary.table());
    }
    drop_keyspace(&session().await, &ks).await;
}

/// What the driver returns for a generated value stored in a column of type `typ`, by the
/// rules the README gives for each type (written here independently of the encoder).
fn expected(d: &Datum, typ: &ColumnType<'_>) -> CqlValue {
    match (d, typ) {
        (
            Datum::List(xs),
            ColumnType::Collection {
                typ: CollectionType::List(t),
                ..
            },
        ) => CqlValue::List(xs.iter().map(|x| expected(x, t)).collect()),
        (
            Datum::List(xs),
            ColumnType::Collection {
                typ: CollectionType::Set(t),
                ..
            },
        ) => CqlValue::Set(xs.iter().map(|x| expected(x, t)).collect()),
        (
            Datum::Map(kv),
            ColumnType::Collection {
                typ: CollectionType::Map(kt, vt),
                ..
            },
        ) => CqlValue::Map(
            kv.iter()
                .map(|(k, v)| (expected(k, kt), expected(v, vt)))
                .collect(),
        ),
        (Datum::List(xs), ColumnType::Tuple(ts)) => CqlValue::Tuple(
            xs.iter()
                .zip(ts)
                .map(|(x, t)| Some(expected(x, t)))
                .collect(),
        ),
        (Datum::List(xs), ColumnType::Vector { typ, .. }) => {
            CqlValue::Vector(xs.iter().map(|x| expected(x, typ)).collect())
        }
        (Datum::Udt(fields), ColumnType::UserDefinedType { definition, .. }) => {
            CqlValue::UserDefinedType {
                keyspace: definition.keyspace.to_string(),
                name: definition.name.to_string(),
                fields: definition
                    .field_types
                    .iter()
                    .map(|(n, t)| {
                        let (_, d) = fields.iter().find(|(f, _)| f == n).unwrap();
                        (n.to_string(), Some(expected(d, t)))
                    })
                    .collect(),
            }
        }
        (d, ColumnType::Native(n)) => native(d, n),
        (d, t) => panic!("no expectation for {d:?} as {t:?}"),
    }
}

fn native(d: &Datum, n: &NativeType) -> CqlValue {
    const DAY_NS: i64 = 86_400_000_000_000;
    match (d, n) {
        (Datum::Int(x), NativeType::BigInt) => CqlValue::BigInt(*x),
        (Datum::Int(x), NativeType::Counter) => CqlValue::Counter(Counter(*x)),
        (Datum::Int(x), NativeType::Int) => CqlValue::Int(*x as i32),
        (Datum::Int(x), NativeType::SmallInt) => CqlValue::SmallInt(*x as i16),
        (Datum::Int(x), NativeType::TinyInt) => CqlValue::TinyInt(*x as i8),
        (Datum::Int(x), NativeType::Boolean) => CqlValue::Boolean(x & 1 == 1),
        (Datum::Int(x), NativeType::Varint) => {
            CqlValue::Varint(CqlVarint::from_signed_bytes_be(x.to_be_bytes().to_vec()))
        }
        (Datum::Int(x), NativeType::Decimal) => CqlValue::Decimal(
            CqlDecimal::from_signed_be_bytes_and_exponent(x.to_be_bytes().to_vec(), 0),
        ),
        (Datum::Int(x), NativeType::Text) => CqlValue::Text(x.to_string()),
        (Datum::Int(x), NativeType::Date) => CqlValue::Date(CqlDate((x + (1 << 31)) as u32)),
        (Datum::Int(x), NativeType::Time) => CqlValue::Time(CqlTime(x.rem_euclid(DAY_NS))),
        (Datum::Int(x), NativeType::Duration) => CqlValue::Duration(CqlDuration {
            months: 0,
            days: 0,
            nanoseconds: *x,
        }),
        (Datum::Int(x), NativeType::Inet) => CqlValue::Inet(IpAddr::V4(Ipv4Addr::from(*x as u32))),
        (Datum::Float(x), NativeType::Double) => CqlValue::Double(*x),
        (Datum::Float(x), NativeType::Float) => CqlValue::Float(*x as f32),
        (Datum::Float(x), NativeType::Decimal) => {
            CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
                ((x * 1e6).round() as i64).to_be_bytes().to_vec(),
                6,
            ))
        }
        (Datum::Bytes(b), NativeType::Text) => {
            CqlValue::Text(String::from_utf8(b.clone()).unwrap())
        }
        (Datum::Bytes(b), NativeType::Ascii) => {
            CqlValue::Ascii(String::from_utf8(b.clone()).unwrap())
        }
        (Datum::Bytes(b), NativeType::Blob) => CqlValue::Blob(b.clone()),
        (Datum::Uuid(u), NativeType::Uuid) => CqlValue::Uuid(uuid::Uuid::from_bytes(*u)),
        (Datum::Uuid(u), NativeType::Timeuuid) => CqlValue::Timeuuid(CqlTimeuuid::from_bytes(*u)),
        (Datum::Uuid(u), NativeType::Text) => {
            CqlValue::Text(uuid::Uuid::from_bytes(*u).hyphenated().to_string())
        }
        (Datum::Timestamp(ms), NativeType::Timestamp) => CqlValue::Timestamp(CqlTimestamp(*ms)),
        (d, n) => panic!("no expectation for {d:?} as {n:?}"),
    }
}

/// Sets and map keys as the server keeps them: distinct, in an order of their own. Both
/// sides are put in one order (of their debug form) before comparing.
fn normal(v: CqlValue) -> CqlValue {
    let key = |v: &CqlValue| format!("{v:?}");
    match v {
        CqlValue::Set(xs) => {
            let mut xs: Vec<CqlValue> = xs.into_iter().map(normal).collect();
            xs.sort_by_key(key);
            xs.dedup();
            CqlValue::Set(xs)
        }
        CqlValue::Map(kv) => {
            let mut kv: Vec<(CqlValue, CqlValue)> = kv
                .into_iter()
                .map(|(k, v)| (normal(k), normal(v)))
                .collect();
            kv.sort_by_key(|(k, _)| key(k));
            kv.dedup_by(|a, b| a.0 == b.0);
            CqlValue::Map(kv)
        }
        CqlValue::List(xs) => CqlValue::List(xs.into_iter().map(normal).collect()),
        CqlValue::Vector(xs) => CqlValue::Vector(xs.into_iter().map(normal).collect()),
        CqlValue::Tuple(xs) => CqlValue::Tuple(xs.into_iter().map(|x| x.map(normal)).collect()),
        CqlValue::UserDefinedType {
            keyspace,
            name,
            fields,
        } => CqlValue::UserDefinedType {
            keyspace,
            name,
            fields: fields
                .into_iter()
                .map(|(n, x)| (n, x.map(normal)))
                .collect(),
        },
        // Compared by value: the driver compares some numbers' bytes as they were sent.
        CqlValue::Decimal(d) => {
            let (digits, scale) = d.as_signed_be_bytes_slice_and_exponent();
            CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_slice_and_exponent(
                minimal(digits),
                scale,
            ))
        }
        CqlValue::Varint(v) => CqlValue::Varint(CqlVarint::from_signed_bytes_be_slice(minimal(
            v.as_signed_bytes_be_slice(),
        ))),
        v => v,
    }
}

/// Verified reads of every type family: a write and a read that verifies it, mixed; every
/// read finds its row with every column equal to the values regenerated for its op index
/// (sets and map keys as the server sorts them, empty collections as null, sparse nulls and
/// unset columns), so none is missing or mismatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_reads_of_every_type_find_every_row_equal() {
    require_cassandra();
    let _serial = serial().await;
    let ks = keyspace("typesverify");
    for (table, cql, args, columns) in [
        (
            "native",
            NATIVE,
            NATIVE_ARGS,
            "id, a, b, bo, d, de, df, db, du, f, ip, i, si, t, tm, ts, tu, ti, u, vi, tx",
        ),
        ("composite", COMPOSITE, COMPOSITE_ARGS, "*"),
    ] {
        let text = format!(
            "{}[[ops]]\nname = \"read\"\ncql = \"SELECT {columns} FROM {table} WHERE id = ?\"\nverify = \"write\"\n",
            with_op(&ks, cql, args)
        );
        let path = spec_file(&format!("verify-{table}"), &text);
        let summary = run(&path, vec![set("load.ops", "3000")]).await;
        assert_eq!(summary.failed, 0, "{}", summary.table());
        let v = summary.ops[1]
            .verified
            .unwrap_or_else(|| panic!("{table}: no verdicts\n{}", summary.table()));
        eprintln!("{table}: {v:?}");
        assert_eq!(
            (v.missing, v.mismatch),
            (0, 0),
            "{table}: {}",
            summary.table()
        );
        assert!(v.ok >= 1000, "{table}: {v:?}");
        assert_eq!(
            v.ok + v.skipped,
            summary.ops[1].ok,
            "{table}: every successful verified read has a verdict"
        );
        assert_eq!(summary.total.verified, Some(v));
    }
    drop_keyspace(&session().await, &ks).await;
}
