//! The workload part of the plan: generators and operations.

use std::collections::HashMap;
use std::sync::Arc;

use super::ops::{self, CONSISTENCY_NAMES, OpKind};
use super::{ClusterPlan, ErrorAt, OpPlan};
use crate::data::{Generator, MAX_ELEMENTS, build_all};
use crate::spec::{BatchKind, CountSpec, GenSpec, OpSpec, SizeSpec, Spec, SpecError};

/// Largest text or blob value; beyond this a request would not fit the native protocol's
/// default frame limits anyway.
const MAX_VALUE_BYTES: u32 = 16 * 1024 * 1024;

/// The generators in order, and each name's index among them.
pub(super) type Generators = (Vec<Arc<Generator>>, HashMap<String, usize>);

fn size_ok(size: &SizeSpec) -> Result<(), String> {
    let (min, max) = match *size {
        SizeSpec::Fixed(n) => (n, n),
        SizeSpec::Range { min, max } => (min, max),
    };
    if min > max {
        return Err(format!("size.min ({min}) is above size.max ({max})"));
    }
    if max > MAX_VALUE_BYTES {
        return Err(format!(
            "size {max} is above the limit of {MAX_VALUE_BYTES} bytes"
        ));
    }
    Ok(())
}

fn check_generator(g: &GenSpec) -> Result<(), String> {
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    match *g {
        GenSpec::Uniform { min, max } | GenSpec::Hotspot { min, max, .. } if min > max => {
            Err(format!("min ({min}) is above max ({max})"))
        }
        GenSpec::Hotspot {
            hot_fraction,
            hot_probability,
            ..
        } if !unit(hot_fraction) || !unit(hot_probability) => {
            Err("hot_fraction and hot_probability must be between 0 and 1".into())
        }
        GenSpec::Zipf { count: 0, .. } => Err("count must be at least 1".into()),
        GenSpec::Zipf { exponent, .. } if !(exponent > 0.0 && exponent.is_finite()) => Err(
            format!("exponent must be a positive number, not {exponent}"),
        ),
        GenSpec::Normal { stddev, mean, .. }
            if !(stddev >= 0.0 && stddev.is_finite() && mean.is_finite()) =>
        {
            Err("mean must be finite and stddev a non-negative number".into())
        }
        GenSpec::Normal {
            min: Some(lo),
            max: Some(hi),
            ..
        } if lo > hi => Err(format!("min ({lo}) is above max ({hi})")),
        GenSpec::Text { ref size } | GenSpec::Blob { ref size } => size_ok(size),
        GenSpec::Float { min, max } if !(min.is_finite() && max.is_finite() && min <= max) => Err(
            format!("min ({min}) and max ({max}) must be finite, min at most max"),
        ),
        GenSpec::Gaussian { mean, stddev }
            if !(stddev >= 0.0 && stddev.is_finite() && mean.is_finite()) =>
        {
            Err("mean must be finite and stddev a non-negative number".into())
        }
        GenSpec::List { ref size, .. }
        | GenSpec::Set { ref size, .. }
        | GenSpec::Map { ref size, .. } => count_ok(size),
        GenSpec::Tuple { ref fields } if fields.is_empty() => {
            Err("fields: a tuple has at least one field".into())
        }
        GenSpec::Udt { ref fields } if fields.is_empty() => {
            Err("fields: a udt has at least one field".into())
        }
        GenSpec::Vector { dimension: 0, .. } | GenSpec::Clustered { dimension: 0, .. } => {
            Err("dimension must be at least 1".into())
        }
        GenSpec::Clustered { centres: 0, .. } => Err("centres must be at least 1".into()),
        GenSpec::Clustered { spread, .. } if !(spread >= 0.0 && spread.is_finite()) => Err(
            format!("spread must be a non-negative number, not {spread}"),
        ),
        GenSpec::Partition { ref rows, .. } | GenSpec::Clustering { ref rows } => match *rows {
            CountSpec::Generator(_) => Err(
                "rows is a number or a { min, max } range: partitions are laid out in op order"
                    .into(),
            ),
            CountSpec::Fixed(0) | CountSpec::Range { min: 0, .. } => {
                Err("rows must be at least 1".into())
            }
            CountSpec::Range { min, max } if min > max => {
                Err(format!("rows.min ({min}) is above rows.max ({max})"))
            }
            _ => Ok(()),
        },
        GenSpec::Sparse { nulls, .. } if !(0.0..=1.0).contains(&nulls) => Err(format!(
            "nulls is the share of null values, between 0 and 1, not {nulls}"
        )),
        _ => Ok(()),
    }
}

fn count_ok(size: &CountSpec) -> Result<(), String> {
    match *size {
        CountSpec::Range { min, max } if min > max => {
            Err(format!("size.min ({min}) is above size.max ({max})"))
        }
        CountSpec::Fixed(n) | CountSpec::Range { max: n, .. } if n > MAX_ELEMENTS => Err(format!(
            "size {n} is above the limit of {MAX_ELEMENTS} elements"
        )),
        _ => Ok(()),
    }
}

pub(super) fn generators(spec: &Spec, now_ms: i64, err: &ErrorAt) -> Result<Generators, SpecError> {
    for (name, g) in &spec.data {
        let field = format!("data.{name}");
        if !ops::is_valid_name(name) {
            return Err(err(
                &field,
                "generator names are letters, digits, `_` or `-`".into(),
            ));
        }
        check_generator(g).map_err(|m| err(&field, m))?;
    }
    // In name order: a generator's index is the stream of its values.
    let built = build_all(&spec.data, spec.seed, now_ms)
        .map_err(|e| err(&format!("data.{}.{}", e.name, e.field), e.message))?;
    let by_name = built
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), i))
        .collect();
    Ok((built.into_iter().map(|(_, g)| g).collect(), by_name))
}

pub(super) fn operations(
    spec: &Spec,
    cluster: &ClusterPlan,
    by_name: &HashMap<String, usize>,
    generators: &[Arc<Generator>],
    err: &ErrorAt,
) -> Result<Vec<OpPlan>, SpecError> {
    if spec.ops.is_empty() {
        return Err(err("ops", "at least one [[ops]] is required".into()));
    }
    let mut out: Vec<OpPlan> = Vec::new();
    for (i, o) in spec.ops.iter().enumerate() {
        let op = operation(i, o, cluster, by_name, err)?;
        if out.iter().any(|p| p.name == o.name) {
            return Err(err(
                &format!("ops[{i}].name"),
                format!("`{}` is used by an earlier op", o.name),
            ));
        }
        debug_assert!(op.args.iter().all(|&g| g < generators.len()));
        out.push(op);
    }
    if out.iter().map(|o| o.weight).sum::<f64>() <= 0.0 {
        return Err(err("ops", "the weights of all ops sum to zero".into()));
    }
    resolve_verify(spec, &mut out, err)?;
    Ok(out)
}

/// `ops[i]` checked and typed, on its own (what links ops is resolved afterwards).
fn operation(
    i: usize,
    o: &OpSpec,
    cluster: &ClusterPlan,
    by_name: &HashMap<String, usize>,
    err: &ErrorAt,
) -> Result<OpPlan, SpecError> {
    let f = |k: &str| format!("ops[{i}].{k}");
    if !ops::is_valid_name(&o.name) {
        return Err(err(
            &f("name"),
            format!("`{}` must be 1-64 letters, digits, `_` or `-`", o.name),
        ));
    }
    if o.cql.trim().is_empty() {
        return Err(err(&f("cql"), "is empty".into()));
    }
    if !(o.weight >= 0.0 && o.weight.is_finite()) {
        return Err(err(
            &f("weight"),
            format!("must be a non-negative number, not {}", o.weight),
        ));
    }
    let args = op_args(i, o, by_name, err)?;
    let consistency = match &o.consistency {
        Some(c) => ops::parse_consistency(c).ok_or_else(|| {
            err(
                &f("consistency"),
                format!("unknown consistency `{c}`; expected one of {CONSISTENCY_NAMES}"),
            )
        })?,
        None => cluster.consistency,
    };
    let serial_consistency = match &o.serial_consistency {
        Some(c) => ops::parse_serial_consistency(c).ok_or_else(|| {
            err(
                &f("serial_consistency"),
                format!("`{c}` is not serial or local_serial"),
            )
        })?,
        None => cluster.serial_consistency,
    };
    let timeout = o.timeout.map_or(cluster.request_timeout, |d| d.0);
    if timeout.is_zero() {
        return Err(err(&f("timeout"), "must be greater than zero".into()));
    }
    let kind = ops::classify(&o.cql);
    let (batch, page_size) = batch_and_pages(o, kind, &f, err)?;
    Ok(OpPlan {
        name: o.name.clone(),
        cql: o.cql.clone(),
        kind,
        weight: o.weight,
        args,
        arg_names: o.args.clone(),
        consistency,
        serial_consistency,
        timeout,
        idempotent: o
            .idempotent
            .unwrap_or(matches!(kind, OpKind::Read | OpKind::Write)),
        batch,
        page_size,
        verify: None,
        recall: None,
    })
}

/// The generators of an op's bind markers, one per marker. No `args`: each marker gets a
/// default generator for its column type, once the statement is prepared.
fn op_args(
    i: usize,
    o: &OpSpec,
    by_name: &HashMap<String, usize>,
    err: &ErrorAt,
) -> Result<Vec<usize>, SpecError> {
    let markers = ops::count_bind_markers(&o.cql);
    if !o.args.is_empty() && markers != o.args.len() {
        return Err(err(
            &format!("ops[{i}].args"),
            format!(
                "the statement has {markers} bind marker(s) but {} argument(s) are given",
                o.args.len()
            ),
        ));
    }
    let mut args = Vec::new();
    for (j, a) in o.args.iter().enumerate() {
        let g = by_name.get(a).ok_or_else(|| {
            let mut known: Vec<&str> = by_name.keys().map(String::as_str).collect();
            known.sort();
            err(
                &format!("ops[{i}].args[{j}]"),
                format!(
                    "unknown generator `{a}`; [data] defines: {}",
                    if known.is_empty() {
                        "nothing".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        args.push(*g);
    }
    Ok(args)
}

/// An op's batch (size and kind) and page size.
type BatchAndPages = (Option<(u32, BatchKind)>, Option<u32>);

/// An op's batch (writes only) and page size (reads only).
fn batch_and_pages(
    o: &OpSpec,
    kind: OpKind,
    f: &dyn Fn(&str) -> String,
    err: &ErrorAt,
) -> Result<BatchAndPages, SpecError> {
    let batch = match &o.batch {
        None => None,
        Some(b) if b.size == 0 => {
            return Err(err(&f("batch.size"), "must be at least 1".into()));
        }
        Some(_) if kind == OpKind::Read => {
            return Err(err(&f("batch"), "a SELECT cannot be batched".into()));
        }
        Some(b) => Some((b.size, b.kind)),
    };
    let page_size = match o.page_size {
        Some(0) => return Err(err(&f("page_size"), "must be at least 1".into())),
        Some(n) if n > i32::MAX as u32 => {
            return Err(err(
                &f("page_size"),
                format!("must be at most {}", i32::MAX),
            ));
        }
        Some(_) if kind != OpKind::Read => {
            return Err(err(
                &f("page_size"),
                "pages are for reads (SELECT); this op writes".into(),
            ));
        }
        p => p,
    };
    Ok((batch, page_size))
}

/// Each verified read's write op, checked once every op is known.
fn resolve_verify(spec: &Spec, out: &mut [OpPlan], err: &ErrorAt) -> Result<(), SpecError> {
    for (i, o) in spec.ops.iter().enumerate() {
        if let Some(target) = &o.verify {
            let w =
                verify_target(out, i, target).map_err(|m| err(&format!("ops[{i}].verify"), m))?;
            out[i].verify = Some(w);
        }
    }
    Ok(())
}

/// CQL functions whose value a write cannot regenerate.
const NON_DETERMINISTIC: &[&str] = &[
    "now(",
    "uuid(",
    "currenttimestamp(",
    "currentdate(",
    "currenttime(",
    "currenttimeuuid(",
];

/// The write op a verified read of op `i` reads back, or why it cannot.
fn verify_target(ops: &[OpPlan], i: usize, target: &str) -> Result<usize, String> {
    let read = &ops[i];
    if read.kind != OpKind::Read {
        return Err(format!(
            "only a read (SELECT) verifies; `{}` writes",
            read.name
        ));
    }
    let Some(w) = ops.iter().position(|o| o.name == target) else {
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        return Err(format!(
            "unknown write op `{target}`; the ops are: {}",
            names.join(", ")
        ));
    };
    let write = &ops[w];
    let why = match write.kind {
        OpKind::Write => None,
        OpKind::Read => Some("it is a read: it writes nothing to read back"),
        OpKind::Lwt => Some(
            "it is a conditional write (IF ...): an acknowledged LWT may not have applied, so \
             its values are not known",
        ),
        OpKind::Counter => Some(
            "it is a counter update: it adds to a value, which cannot be regenerated from its \
             op index",
        ),
    };
    if let Some(why) = why {
        return Err(format!("`{target}` cannot be verified: {why}"));
    }
    let lower: String = write
        .cql
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if let Some(f) = NON_DETERMINISTIC.iter().find(|f| lower.contains(*f)) {
        return Err(format!(
            "`{target}` cannot be verified: it sets a column with {f}), a value that cannot be \
             regenerated from its op index (bind it from a generator instead)"
        ));
    }
    Ok(w)
}
