//! The checker's rule (module header): the truth is what was acknowledged when the query was
//! sent, whenever the check runs; a writer's row in flight is neither hit nor miss.

use std::path::PathBuf;

use super::*;
use crate::data::Datum;
use crate::plan::IndexMap;
use crate::spec::{self, Source};

const SPEC: &str = r#"
name = "t"
seed = 3
[data.id]
kind = "sequence"
[data.v]
kind = "clustered"
dimension = 4
centres = 2
spread = 0.5
[data.q]
kind = "clustered"
dimension = 4
centres = 2
spread = 0.5
[[ops]]
name = "insert"
cql = "INSERT INTO t (id, v) VALUES (?, ?)"
args = ["id", "v"]
[[ops]]
name = "ann"
cql = "SELECT id FROM t ORDER BY v ANN OF ? LIMIT 3"
args = ["q"]
[ops.recall]
of = "insert"
key = "id"
vector = "v"
similarity = "euclidean"
sample = 1.0
"#;

fn plan() -> Arc<Plan> {
    let source = Source {
        path: PathBuf::from("t.toml"),
        text: SPEC.to_string(),
    };
    let spec = spec::parse(&source, &[]).unwrap();
    Arc::new(crate::plan::build(&spec, &source, &|_| None, &Default::default(), 0).unwrap())
}

fn vector(plan: &Plan, name: &str, index: u64) -> Vec<f64> {
    let g = plan.spec.data.keys().position(|n| n == name).unwrap();
    let Datum::List(items) = plan.generators[g].datum(plan.seed, g as u64, index) else {
        panic!("a vector is a list");
    };
    let f = |d: &Datum| match d {
        Datum::Float(x) => f64::from(*x as f32),
        other => panic!("{other:?}"),
    };
    items.iter().map(f).collect()
}

/// The written op indices nearest to query `q`'s vector, nearest first (test's own sort).
fn nearest(plan: &Plan, q: u64, written: &[u64]) -> Vec<u64> {
    let qv = vector(plan, "q", q);
    let mut by: Vec<(f64, u64)> = written
        .iter()
        .map(|&i| {
            let d = vector(plan, "v", i)
                .into_iter()
                .zip(&qv)
                .map(|(a, b)| (a - b).powi(2));
            (d.sum(), i)
        })
        .collect();
    by.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    by.into_iter().map(|(_, i)| i).collect()
}

/// A verdict: (hits, expected, uncertain).
fn v(hits: u32, expected: u32, uncertain: u32) -> Verdict {
    Verdict {
        hits,
        expected,
        uncertain,
    }
}

#[test]
fn the_truth_is_what_was_acknowledged_at_send_and_rows_in_flight_are_left_out() {
    let plan = plan();
    let weights = cumulative_weights(&plan.ops);
    let (writes, queries): (Vec<u64>, Vec<u64>) =
        (0..400).partition(|&i| choose(&weights, plan.seed, i) == 0);
    let acked = Arc::new(Acked::ordered(IndexMap::Contiguous { offset: 0 }));
    // Acknowledged before the query is sent: the first 100 writes, in a scrambled order.
    let (before, after) = writes.split_at(100);
    for &i in before.iter().rev() {
        acked.record(i, true);
    }
    let mark = acked.mark();
    assert_eq!(mark, 100);
    let (reports, _rx) = mpsc::channel(16);
    let queue_full: Arc<[AtomicU64]> = plan.ops.iter().map(|_| AtomicU64::new(0)).collect();
    let mut checker = Checker::new(
        plan.clone(),
        vec![Some(acked.clone()), None],
        queue_full,
        reports,
    );
    // Op numbers 0..400 claimed: the run's.
    checker.claimed = Arc::new(AtomicU64::new(400));
    let q = queries[150];
    let truth = nearest(&plan, q, before);
    let job = |rows: &[u64]| Job {
        op: 1,
        index: q,
        mark,
        keys: rows.iter().map(|&i| i as i64).collect(),
    };
    let verdict = |checker: &mut Checker, rows: &[u64]| checker.check(&job(rows));
    let (t0, t1, t2, t3) = (truth[0], truth[1], truth[2], truth[3]);
    // Acknowledged after the send (a write in flight then): not part of the truth, whenever
    // the check runs.
    for &i in &after[..50] {
        acked.record(i, true);
    }
    let exact = v(3, 3, 0);
    assert_eq!(verdict(&mut checker, &[t0, t1, t2]), exact);
    // A write in flight at send, returned: it takes its place, the other two are judged
    // against the true two nearest (here the node returned the 1st and 4th: one hit).
    let in_flight = after[10];
    assert_eq!(verdict(&mut checker, &[in_flight, t0, t1]), v(2, 2, 1));
    assert_eq!(verdict(&mut checker, &[t0, in_flight, t3]), v(1, 2, 1));
    // Never acknowledged at all (still in flight, or failed): the same.
    let never = after[80];
    acked.record(never, false);
    assert_eq!(verdict(&mut checker, &[never, in_flight, t0]), v(1, 1, 2));
    // A key the run never writes (a query's op index, or a writer's op index not claimed: a
    // row written by someone else): a miss.
    let unclaimed = (400..)
        .find(|&i| choose(&weights, plan.seed, i) == 0)
        .unwrap();
    let foreign = [queries[0], unclaimed];
    let got = verdict(&mut checker, &[foreign[0], t0, t1]);
    assert_eq!(got, v(2, 3, 0));
    let got = verdict(&mut checker, &[t0, foreign[1], t2]);
    assert_eq!(got, v(2, 3, 0));
    // Later acknowledgements change nothing: the same answers, the same verdicts.
    for &i in &after[50..] {
        acked.record(i, true);
    }
    assert_eq!(verdict(&mut checker, &[t0, t1, t2]), exact);
    assert_eq!(verdict(&mut checker, &[t0, in_flight, t3]), v(1, 2, 1));
}
