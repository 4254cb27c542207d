//! `cqlpulse init --from keyspace.table`: a spec written from a live table's schema, that runs
//! as is: an insert of every column, a read by primary key, a partition slice, one generator
//! per column chosen from its type, and a comment on each line saying what to tune.
//!
//! Key columns take integers from a bounded range (bound to any key type but uuids, an integer
//! becomes that type: see the README), so inserts revisit a known set of partitions and rows
//! and the reads find rows that exist.

use std::fmt::Write;

use scylla::cluster::metadata::{CollectionType, ColumnKind, ColumnType, NativeType, Table};

use super::cqltype::{cql_type, default_spec};
use super::init::Access;
use crate::spec::{GenSpec, SizeSpec};

/// Partitions the key generators cover, and rows per partition of a clustered table.
const PARTITIONS: i64 = 100_000;
const ROWS_PER_PARTITION: i64 = 100;

/// The spec for `keyspace.table` as TOML, with `contact_points`.
pub fn render(keyspace: &str, name: &str, table: &Table, contact_points: &[String]) -> String {
    render_with(keyspace, name, table, contact_points, &Access::default())
}

/// [`render`], connecting with `access` (its login in `[cluster]`, its `[cluster.tls]`).
pub fn render_with(
    keyspace: &str,
    name: &str,
    table: &Table,
    contact_points: &[String],
    access: &Access,
) -> String {
    let mut out = String::new();
    let columns = ordered_columns(table);
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Written by `cqlpulse init --from {keyspace}.{name}`: runs as is; the comments say what to tune."
    );
    let _ = writeln!(
        w,
        "name = \"{}\"  # the `workload` label on every metric",
        label(keyspace, name)
    );
    let _ = writeln!(
        w,
        "seed = 1  # the same seed writes the same values; change it for another data set\n"
    );
    let points: Vec<String> = contact_points.iter().map(|p| format!("\"{p}\"")).collect();
    let _ = writeln!(w, "[cluster]");
    let _ = writeln!(
        w,
        "contact_points = [{}]  # the nodes to connect to",
        points.join(", ")
    );
    let _ = write!(w, "{}", access.cluster_lines());
    let _ = writeln!(
        w,
        "consistency = \"local_quorum\"  # every op's, unless the op sets its own\n"
    );
    let _ = writeln!(w, "[schema]");
    let _ = writeln!(w, "keyspace = \"{keyspace}\"  # the table's keyspace");
    let _ = writeln!(
        w,
        "mode = \"skip\"  # the table exists: nothing is created or dropped\n"
    );
    let mut names = Vec::new();
    for (column, typ, kind) in &columns {
        let g = generator_name(column);
        write_generator(
            w,
            &g,
            typ,
            kind,
            &format!("column {column} ({})", cql_type(typ)),
        );
        names.push(g);
    }
    write_ops(w, name, table, &columns, &names);
    let _ = writeln!(w, "[load]");
    let _ = writeln!(
        w,
        "model = \"chains\"  # requests in flight follow the node: see the README's models"
    );
    let _ = writeln!(w, "chains = 32  # concurrency: requests in flight at most");
    let _ = writeln!(
        w,
        "rate = 1000.0  # target ops/s; 0 runs as fast as the cluster answers"
    );
    let _ = writeln!(
        w,
        "ops = 60000  # how many ops (a minute at the rate); or duration = \"10m\" instead"
    );
    out += &access.tls_table();
    out
}

/// Partition key, clustering key (in order), then the other columns by name.
fn ordered_columns(table: &Table) -> Vec<(String, ColumnType<'static>, ColumnKind)> {
    let mut rest: Vec<&String> = table
        .columns
        .keys()
        .filter(|c| !table.partition_key.contains(c) && !table.clustering_key.contains(c))
        .collect();
    rest.sort();
    table
        .partition_key
        .iter()
        .chain(&table.clustering_key)
        .chain(rest)
        .filter_map(|c| {
            let col = table.columns.get(c)?;
            Some((c.clone(), col.typ.clone(), col.kind.clone()))
        })
        .collect()
}

fn label(keyspace: &str, table: &str) -> String {
    generator_name(&format!("{keyspace}_{table}"))
}

/// A generator name for a column: letters, digits, `_` (what `[data]` names allow).
fn generator_name(column: &str) -> String {
    let name: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if name.is_empty() {
        "c".to_string()
    } else {
        name
    }
}

/// A column name as CQL needs it: as is when plain lower case, else quoted.
fn quoted(column: &str) -> String {
    let plain = column
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && column.starts_with(|c: char| c.is_ascii_lowercase());
    if plain {
        column.to_string()
    } else {
        format!("\\\"{}\\\"", column.replace('"', "\"\""))
    }
}

/// Writes `[data.NAME]` for a column of type `typ` (and the generators its parts need, named
/// `NAME_element`, `NAME_key`, `NAME_FIELD`, ...).
fn write_generator(
    w: &mut String,
    name: &str,
    typ: &ColumnType<'_>,
    kind: &ColumnKind,
    what: &str,
) {
    let key = matches!(kind, ColumnKind::PartitionKey | ColumnKind::Clustering);
    let regular = ColumnKind::Regular;
    match typ {
        ColumnType::Native(n) if key && !matches!(n, NativeType::Uuid | NativeType::Timeuuid) => {
            write_key(w, name, n, kind, what)
        }
        ColumnType::Native(n) => {
            let _ = writeln!(w, "[data.{name}]  # {what}");
            write_scalar(w, &default_spec(n), key);
            let _ = writeln!(w);
        }
        ColumnType::Collection { typ: c, .. } => write_collection(w, name, c, what),
        ColumnType::Tuple(types) => {
            let gens: Vec<String> = (0..types.len()).map(|i| format!("{name}_{i}")).collect();
            let list: Vec<String> = gens.iter().map(|g| format!("\"{g}\"")).collect();
            let _ = writeln!(w, "[data.{name}]  # {what}\nkind = \"tuple\"");
            let _ = writeln!(
                w,
                "fields = [{}]  # one generator per field, in order\n",
                list.join(", ")
            );
            for (i, (g, t)) in gens.iter().zip(types).enumerate() {
                write_generator(w, g, t, &regular, &format!("field {} of {name}", i + 1));
            }
        }
        ColumnType::UserDefinedType { definition, .. } => {
            let gens: Vec<(String, String)> = definition
                .field_types
                .iter()
                .map(|(f, _)| (f.to_string(), format!("{name}_{}", generator_name(f))))
                .collect();
            let list: Vec<String> = gens.iter().map(|(f, g)| format!("{f} = \"{g}\"")).collect();
            let _ = writeln!(w, "[data.{name}]  # {what}\nkind = \"udt\"");
            let _ = writeln!(
                w,
                "fields = {{ {} }}  # one generator per field, by name\n",
                list.join(", ")
            );
            for ((f, g), (_, t)) in gens.iter().zip(&definition.field_types) {
                write_generator(w, g, t, &regular, &format!("field {f} of {name}"));
            }
        }
        ColumnType::Vector { typ: e, dimensions } => write_vector(w, name, e, *dimensions, what),
        _ => {
            let _ = writeln!(
                w,
                "[data.{name}]  # {what}: a type cqlpulse does not know; bound as uuids"
            );
            let _ = writeln!(w, "kind = \"uuid\"\n");
        }
    }
}

fn write_collection(w: &mut String, name: &str, c: &CollectionType<'_>, what: &str) {
    let regular = ColumnKind::Regular;
    let (kind, parts): (&str, Vec<(&str, &ColumnType<'_>)>) = match c {
        CollectionType::List(e) => ("list", vec![("element", e)]),
        CollectionType::Set(e) => ("set", vec![("element", e)]),
        CollectionType::Map(k, v) => ("map", vec![("key", k), ("value", v)]),
        _ => ("list", vec![]),
    };
    let _ = writeln!(w, "[data.{name}]  # {what}\nkind = \"{kind}\"");
    for (part, _) in &parts {
        let _ = writeln!(
            w,
            "{part} = \"{name}_{part}\"  # the generator of its {part}s"
        );
    }
    let _ = writeln!(
        w,
        "size = {{ min = 1, max = 5 }}  # elements: a range, a number or an integer generator's name\n"
    );
    for (part, t) in parts {
        write_generator(
            w,
            &format!("{name}_{part}"),
            t,
            &regular,
            &format!("{part}s of {name}"),
        );
    }
}

/// A key column: integers from a bounded range, written as the column's type.
fn write_key(w: &mut String, name: &str, n: &NativeType, kind: &ColumnKind, what: &str) {
    // The first partition key column sets the number of partitions; others multiply it.
    let first = !w.contains(&format!("max = {}  # partitions", PARTITIONS - 1));
    let (max, tune) = match kind {
        ColumnKind::PartitionKey if first => (
            PARTITIONS - 1,
            "partitions: raise for more data, lower for hotter keys",
        ),
        ColumnKind::PartitionKey => (9, "times the first key's values: partitions"),
        _ => (
            ROWS_PER_PARTITION - 1,
            "rows per partition: the partition's width",
        ),
    };
    let max = match n {
        NativeType::TinyInt => max.min(127),
        NativeType::Boolean => 1,
        _ => max,
    };
    let _ = writeln!(
        w,
        "[data.{name}]  # {what}, a key: integers, written as the column's type"
    );
    let _ = writeln!(
        w,
        "kind = \"uniform\"  # or zipf/hotspot to skew which keys are hit"
    );
    let _ = writeln!(w, "min = 0\nmax = {max}  # {tune}\n");
}

fn write_vector(w: &mut String, name: &str, e: &ColumnType<'_>, dimensions: u16, what: &str) {
    let _ = writeln!(w, "[data.{name}]  # {what}\nkind = \"vector\"");
    let _ = writeln!(
        w,
        "element = \"{name}_element\"  # the generator of each value"
    );
    let _ = writeln!(w, "dimension = {dimensions}  # must stay the column's");
    if matches!(
        e,
        ColumnType::Native(NativeType::Float | NativeType::Double)
    ) {
        let _ = writeln!(
            w,
            "normalize = true  # unit length, as embeddings usually are\n"
        );
        let _ = writeln!(w, "[data.{name}_element]  # values of {name}");
        let _ = writeln!(w, "kind = \"gaussian\"  # or float with min and max\n");
    } else {
        let _ = writeln!(w);
        let what = format!("values of {name}");
        write_generator(
            w,
            &format!("{name}_element"),
            e,
            &ColumnKind::Regular,
            &what,
        );
    }
}

/// The keys of a scalar generator, each line with what to tune.
fn write_scalar(w: &mut String, spec: &GenSpec, key: bool) {
    let size = |s: &SizeSpec| match s {
        SizeSpec::Fixed(n) => n.to_string(),
        SizeSpec::Range { min, max } => format!("{{ min = {min}, max = {max} }}"),
    };
    let _ = match spec {
        GenSpec::Sequence { start } => writeln!(
            w,
            "kind = \"sequence\"  # counts ops; uniform/zipf/normal for other shapes\nstart = {start}"
        ),
        GenSpec::Uniform { min, max } => writeln!(
            w,
            "kind = \"uniform\"\nmin = {min}  # the range of values\nmax = {max}"
        ),
        GenSpec::Text { size: s } => writeln!(
            w,
            "kind = \"text\"\nsize = {}  # bytes per value: the payload size",
            size(s)
        ),
        GenSpec::Blob { size: s } => writeln!(
            w,
            "kind = \"blob\"\nsize = {}  # bytes per value: the payload size",
            size(s)
        ),
        GenSpec::Float { min, max } => writeln!(
            w,
            "kind = \"float\"\nmin = {min:?}  # the range of values\nmax = {max:?}"
        ),
        GenSpec::Timestamp { step_ms, .. } => writeln!(
            w,
            "kind = \"timestamp\"  # from the run's start (start_ms to fix it)\nstep_ms = {step_ms}  # milliseconds between ops"
        ),
        GenSpec::Timeuuid { .. } if key => writeln!(
            w,
            "kind = \"timeuuid\"  # unique per op: reads by key find rows only by chance"
        ),
        GenSpec::Timeuuid { .. } => writeln!(w, "kind = \"timeuuid\"  # ordered by op"),
        GenSpec::Uuid {} if key => writeln!(
            w,
            "kind = \"uuid\"  # random: reads by key find rows only by chance"
        ),
        _ => writeln!(w, "kind = \"uuid\"  # random"),
    };
}

/// The insert (an increment for a counter table), the read by primary key and the slice.
fn write_ops(
    w: &mut String,
    table: &str,
    t: &Table,
    columns: &[(String, ColumnType<'static>, ColumnKind)],
    names: &[String],
) {
    let table = quoted(table);
    let args = |pick: &dyn Fn(&ColumnKind) -> bool| -> (Vec<String>, Vec<String>) {
        columns
            .iter()
            .zip(names)
            .filter(|((_, _, k), _)| pick(k))
            .map(|((c, _, _), g)| (quoted(c), format!("\"{g}\"")))
            .unzip()
    };
    let list = |v: &[String]| v.join(", ");
    let equal = |cols: &[String]| {
        cols.iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let is_key = |k: &ColumnKind| matches!(k, ColumnKind::PartitionKey | ColumnKind::Clustering);
    let (key_cols, key_args) = args(&is_key);
    let (pk_cols, pk_args) = args(&|k| matches!(k, ColumnKind::PartitionKey));
    let counter = columns
        .iter()
        .any(|(_, t, _)| matches!(t, ColumnType::Native(NativeType::Counter)));
    let (insert, insert_args) = if counter {
        let (cols, gens) = args(&|k| !is_key(k));
        let set: Vec<String> = cols.iter().map(|c| format!("{c} = {c} + ?")).collect();
        let cql = format!(
            "UPDATE {table} SET {} WHERE {}",
            set.join(", "),
            equal(&key_cols)
        );
        (cql, [gens, key_args.clone()].concat())
    } else {
        let (cols, gens) = args(&|_| true);
        let marks = vec!["?"; cols.len()].join(", ");
        (
            format!("INSERT INTO {table} ({}) VALUES ({marks})", list(&cols)),
            gens,
        )
    };
    let _ = writeln!(
        w,
        "[[ops]]\nname = \"{}\"",
        if counter { "increment" } else { "insert" }
    );
    let _ = writeln!(w, "cql = \"{insert}\"");
    let _ = writeln!(
        w,
        "args = [{}]  # one generator per bind marker",
        list(&insert_args)
    );
    let _ = writeln!(w, "weight = 8.0  # the share of writes among the ops\n");
    let read = equal(&key_cols);
    let slice = (!t.clustering_key.is_empty()).then(|| (equal(&pk_cols), list(&pk_args)));
    write_reads(w, &table, &read, &list(&key_args), slice);
}

/// The read by primary key and, for a clustered table, the partition slice.
fn write_reads(
    w: &mut String,
    table: &str,
    read: &str,
    read_args: &str,
    slice: Option<(String, String)>,
) {
    let _ = writeln!(w, "[[ops]]\nname = \"read\"");
    let _ = writeln!(w, "cql = \"SELECT * FROM {table} WHERE {read}\"");
    let _ = writeln!(
        w,
        "args = [{read_args}]  # the key generators of the insert: reads find its rows"
    );
    let _ = writeln!(w, "weight = 1.0  # the share of reads by primary key\n");
    if let Some((cond, args)) = slice {
        let _ = writeln!(w, "[[ops]]\nname = \"slice\"");
        let _ = writeln!(
            w,
            "cql = \"SELECT * FROM {table} WHERE {cond} LIMIT 100\"  # rows per slice"
        );
        let _ = writeln!(w, "args = [{args}]");
        let _ = writeln!(w, "weight = 1.0  # the share of partition slices\n");
    }
}

/// Connects to `contact_points`, reads `from` (`keyspace.table`) and renders its spec.
pub async fn from_table(contact_points: &[String], from: &str) -> Result<String, String> {
    from_table_with(contact_points, from, &Access::default()).await
}

/// [`from_table`] through a login and TLS, written into the spec too.
pub async fn from_table_with(
    contact_points: &[String],
    from: &str,
    access: &Access,
) -> Result<String, String> {
    let Some((keyspace, table)) = from.split_once('.') else {
        return Err(format!("--from `{from}`: expected keyspace.table"));
    };
    let session = access.connect(contact_points).await?;
    let state = session.get_cluster_state();
    let ks = state.get_keyspace(keyspace).ok_or_else(|| {
        let mut known: Vec<&str> = state.keyspaces_iter().map(|(k, _)| k).collect();
        known.sort();
        format!(
            "--from {from}: no keyspace `{keyspace}`; the cluster has {}",
            known.join(", ")
        )
    })?;
    let t = ks.tables.get(table).ok_or_else(|| {
        let mut known: Vec<&str> = ks.tables.keys().map(String::as_str).collect();
        known.sort();
        format!(
            "--from {from}: no table `{table}` in `{keyspace}`; it has {}",
            known.join(", ")
        )
    })?;
    Ok(render_with(keyspace, table, t, contact_points, access))
}
