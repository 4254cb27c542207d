//! `[ops.recall]` checked and resolved: which op writes the rows an ANN query searches, which
//! generators make their keys, vectors and filter values, and how much checking to do.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ErrorAt, OpKind, OpPlan};
use crate::data::Generator;
use crate::spec::{RecallSpec, SimilarityName, Spec, SpecError};

pub use crate::spec::SimilarityName as Similarity;

/// How an ANN op's answers are checked (see `crate::recall`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecallPlan {
    /// The writer op (an index into the plan's ops).
    pub writer: usize,
    /// The writer's key is `key_start + op index` (a `sequence` generator).
    pub key_start: i64,
    /// Generator indices (their streams) of the stored vectors and of the query vector.
    pub vector: usize,
    pub query: usize,
    pub dimension: usize,
    pub similarity: SimilarityName,
    /// The query's `LIMIT`.
    pub k: usize,
    /// A generator bound by both ops: a neighbour has the query's value.
    pub filter: Option<usize>,
    pub sample: f64,
    /// Cores the checker may use.
    pub cpu: f64,
    pub alert_below: Option<f64>,
    pub preloaded: u64,
}

/// Resolves each op's `[ops.recall]`, once every op is known (a query names its writer).
pub(super) fn resolve(
    spec: &Spec,
    ops: &mut [OpPlan],
    generators: &[Arc<Generator>],
    by_name: &HashMap<String, usize>,
    err: &ErrorAt,
) -> Result<(), SpecError> {
    for (i, o) in spec.ops.iter().enumerate() {
        if let Some(r) = &o.recall {
            let plan = recall_plan(r, i, ops, generators, by_name)
                .map_err(|(key, m)| err(&format!("ops[{i}].recall.{key}"), m))?;
            ops[i].recall = Some(plan);
        }
    }
    Ok(())
}

type Refusal = (&'static str, String);

fn recall_plan(
    r: &RecallSpec,
    op: usize,
    ops: &[OpPlan],
    generators: &[Arc<Generator>],
    by_name: &HashMap<String, usize>,
) -> Result<RecallPlan, Refusal> {
    let query_op = &ops[op];
    if query_op.kind != OpKind::Read {
        return Err((
            "of",
            "recall is checked on a SELECT ... ANN OF query".into(),
        ));
    }
    let k = ann_limit(&query_op.cql).ok_or_else(|| {
        let m = "the query needs `ORDER BY <column> ANN OF ? LIMIT <k>`".to_string();
        ("of", m)
    })?;
    let writer = ops.iter().position(|w| w.name == r.of).ok_or_else(|| {
        let names: Vec<&str> = ops.iter().map(|w| w.name.as_str()).collect();
        (
            "of",
            format!("no op is named `{}`; ops: {}", r.of, names.join(", ")),
        )
    })?;
    let w = &ops[writer];
    if w.kind != OpKind::Write || w.batch.is_some() {
        return Err(("of", format!("`{}` is not an unbatched write", r.of)));
    }
    let bound = |key: &'static str, name: &str, o: &OpPlan| -> Result<usize, Refusal> {
        let g = *by_name
            .get(name)
            .ok_or((key, format!("unknown generator `{name}`")))?;
        if !o.args.contains(&g) {
            return Err((key, format!("op `{}` does not bind `{name}`", o.name)));
        }
        Ok(g)
    };
    let key = bound("key", &r.key, w)?;
    let Generator::Sequence { start } = *generators[key] else {
        return Err(("key", format!("`{}` is not a sequence generator", r.key)));
    };
    let vector = bound("vector", &r.vector, w)?;
    let Generator::Vector { dimension, .. } = *generators[vector] else {
        return Err(("vector", format!("`{}` does not make vectors", r.vector)));
    };
    let query = match &r.query {
        Some(q) => bound("query", q, query_op)?,
        None => only_vector_arg(query_op, generators)?,
    };
    if !matches!(*generators[query], Generator::Vector { dimension: d, .. } if d == dimension) {
        return Err((
            "query",
            format!("the query vector is not of {dimension} dimensions"),
        ));
    }
    let filter = match &r.filter {
        Some(f) => {
            Some(bound("filter", f, w).and_then(|g| bound("filter", f, query_op).map(|_| g))?)
        }
        None => None,
    };
    check_shares(r)?;
    Ok(RecallPlan {
        writer,
        key_start: start,
        vector,
        query,
        dimension: usize::from(dimension),
        similarity: r.similarity,
        k,
        filter,
        sample: r.sample,
        cpu: r.cpu,
        alert_below: r.alert_below,
        preloaded: r.preloaded,
    })
}

fn only_vector_arg(o: &OpPlan, generators: &[Arc<Generator>]) -> Result<usize, Refusal> {
    let mut vectors = o
        .args
        .iter()
        .copied()
        .filter(|&g| matches!(*generators[g], Generator::Vector { .. }));
    match (vectors.next(), vectors.next()) {
        (Some(g), None) => Ok(g),
        _ => Err((
            "query",
            "name the query vector: the op binds no vector, or several".into(),
        )),
    }
}

fn check_shares(r: &RecallSpec) -> Result<(), Refusal> {
    if !(r.sample > 0.0 && r.sample <= 1.0) {
        return Err(("sample", format!("must be in (0, 1], not {}", r.sample)));
    }
    if !(r.cpu > 0.0 && r.cpu <= 64.0) {
        return Err(("cpu", format!("must be in (0, 64] cores, not {}", r.cpu)));
    }
    match r.alert_below {
        Some(a) if !(0.0..=1.0).contains(&a) => {
            Err(("alert_below", format!("must be between 0 and 1, not {a}")))
        }
        _ => Ok(()),
    }
}

/// The `k` of `... ANN OF ? LIMIT k`, when the statement orders by ANN with a literal limit.
pub fn ann_limit(cql: &str) -> Option<usize> {
    let upper = cql.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let ann = words.windows(2).position(|w| w == ["ANN", "OF"])?;
    let limit = words[ann..].iter().position(|&w| w == "LIMIT")? + ann;
    let k: usize = words.get(limit + 1)?.trim_end_matches(';').parse().ok()?;
    (k > 0).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::ann_limit;

    #[test]
    fn the_limit_of_an_ann_query_is_its_k() {
        assert_eq!(
            ann_limit("SELECT id FROM v ORDER BY e ANN OF ? LIMIT 10"),
            Some(10)
        );
        assert_eq!(
            ann_limit("select id from v where c = ? order by e ann of ? limit 5;"),
            Some(5)
        );
        assert_eq!(ann_limit("SELECT id FROM v LIMIT 10"), None);
        assert_eq!(
            ann_limit("SELECT id FROM v ORDER BY e ANN OF ? LIMIT ?"),
            None
        );
        assert_eq!(
            ann_limit("SELECT id FROM v ORDER BY e ANN OF ? LIMIT 0"),
            None
        );
    }
}
