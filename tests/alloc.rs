//! Encoding a request's values allocates nothing: the scalar insert, the collection-heavy row
//! and the 128-float vector of the encoding benchmarks (BENCHMARKS.md, "Every column type")
//! are written, row after row, into a request buffer while a counting allocator watches.
//! The buffer is the driver's (one per request, grown by it); what is counted here is every
//! allocation of ours on top of it, which must be none.
//!
//! The count is process-wide, so this binary holds one test: nothing else allocates while
//! it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use scylla::cluster::metadata::{CollectionType, ColumnType, NativeType, UserDefinedType};
use scylla::serialize::writers::RowWriter;

use cqlpulse::cql::encode::write;
use cqlpulse::plan::ShardEnv;
use cqlpulse::spec::Source;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the counters are atomics
// and allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The generators of a spec's first op, with their streams (their index in `[data]`).
fn op_args(spec_path: &str) -> Vec<(Arc<cqlpulse::data::Generator>, u64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec_path);
    let source = Source::read(&path).unwrap_or_else(|e| panic!("{spec_path}: {e}"));
    let spec = cqlpulse::spec::parse(&source, &[]).unwrap_or_else(|e| panic!("{e}"));
    let shard = ShardEnv {
        pod_index: None,
        hostname: None,
    };
    let plan = cqlpulse::plan::build(&spec, &source, &|_| None, &shard, 0)
        .unwrap_or_else(|e| panic!("{e}"));
    plan.ops[0]
        .args
        .iter()
        .map(|&g| (plan.generators[g].clone(), g as u64))
        .collect()
}

fn native(n: NativeType) -> ColumnType<'static> {
    ColumnType::Native(n)
}

fn udt(name: &str, fields: Vec<(&str, ColumnType<'static>)>) -> ColumnType<'static> {
    ColumnType::UserDefinedType {
        frozen: true,
        definition: Arc::new(UserDefinedType {
            name: name.to_string().into(),
            keyspace: "cqlpulse_bench_types".into(),
            field_types: fields
                .into_iter()
                .map(|(n, t)| (n.to_string().into(), t))
                .collect(),
        }),
    }
}

/// The bind markers' types as Cassandra reports them for the three benchmark inserts.
fn column_types(spec: &str) -> Vec<ColumnType<'static>> {
    let text = || native(NativeType::Text);
    match spec {
        "config/bench-chains.toml" => vec![text(), text(), text()],
        "bench/types-collections.toml" => {
            let address = udt(
                "address",
                vec![
                    ("street", text()),
                    ("city", text()),
                    ("zip", native(NativeType::Int)),
                ],
            );
            vec![
                native(NativeType::BigInt),
                ColumnType::Collection {
                    frozen: false,
                    typ: CollectionType::Set(Box::new(text())),
                },
                ColumnType::Collection {
                    frozen: false,
                    typ: CollectionType::Map(Box::new(text()), Box::new(native(NativeType::Int))),
                },
                ColumnType::Collection {
                    frozen: false,
                    typ: CollectionType::List(Box::new(native(NativeType::Int))),
                },
                udt("contact", vec![("email", text()), ("home", address)]),
            ]
        }
        "bench/types-vector.toml" => vec![
            native(NativeType::BigInt),
            ColumnType::Vector {
                typ: Box::new(native(NativeType::Float)),
                dimensions: 128,
            },
        ],
        other => panic!("no column types for {other}"),
    }
}

/// Encodes `rows` rows of the spec's insert into one reused buffer (as large as the largest
/// row after the first pass); returns (allocations, bytes written).
fn encode_rows(spec: &str, rows: u64) -> (u64, usize) {
    let args = op_args(spec);
    let types = column_types(spec);
    assert_eq!(args.len(), types.len(), "{spec}: args and column types");
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut bytes = 0;
    let mut encode = |index: u64, buf: &mut Vec<u8>| {
        buf.clear();
        let mut row = RowWriter::new(buf);
        for ((g, stream), typ) in args.iter().zip(&types) {
            bytes += write(g, 1, *stream, index, typ, row.make_cell_writer())
                .unwrap_or_else(|_| panic!("{spec}: row {index} does not fit its types"));
        }
    };
    encode(0, &mut buf);
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for index in 1..=rows {
        encode(index, &mut buf);
    }
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCATIONS.load(Ordering::SeqCst), bytes)
}

#[test]
fn encoding_a_row_allocates_nothing() {
    // Proves that the counter counts: a boxed value while counting is one allocation.
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    COUNTING.store(false, Ordering::SeqCst);
    drop(boxed);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        1,
        "the counter missed a Box"
    );

    for spec in [
        "config/bench-chains.toml",
        "bench/types-collections.toml",
        "bench/types-vector.toml",
    ] {
        let rows = 10_000;
        let (allocations, bytes) = encode_rows(spec, rows);
        assert!(bytes > 0, "{spec}: nothing was written");
        assert_eq!(
            allocations, 0,
            "{spec}: {allocations} allocations in {rows} rows ({bytes} bytes of values)"
        );
    }
}
