//! Exact k nearest neighbours by brute force: every candidate scored against the query, the
//! best k kept. The truth a node's approximate answer is compared with.

use std::cmp::Ordering;

use crate::plan::Similarity;

/// How alike two vectors are under `similarity`, higher is nearer: cosine similarity, the dot
/// product, or minus the squared distance. The same order as Cassandra's similarity functions,
/// which map these to (0, 1] without changing the order.
pub fn score(similarity: Similarity, a: &[f32], b: &[f32]) -> f64 {
    match similarity {
        Similarity::DotProduct => dot(a, b),
        Similarity::Euclidean => -a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>(),
        Similarity::Cosine => {
            let norms = (dot(a, a) * dot(b, b)).sqrt();
            if norms > 0.0 { dot(a, b) / norms } else { 0.0 }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// The `k` best (score, index) pairs of the candidates, best first; ties go to the lower index
/// so the answer does not depend on the order candidates come in.
pub fn top_k(k: usize, candidates: impl Iterator<Item = (f64, u64)>) -> Vec<(f64, u64)> {
    let mut best: Vec<(f64, u64)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for c in candidates {
        if best.len() == k && better(best[k - 1], c) == Ordering::Greater {
            continue;
        }
        let at = best.partition_point(|&b| better(b, c) == Ordering::Greater);
        best.insert(at, c);
        best.truncate(k);
    }
    best
}

/// `Greater` when `a` ranks before `b`.
fn better(a: (f64, u64), b: (f64, u64)) -> Ordering {
    a.0.total_cmp(&b.0).then(b.1.cmp(&a.1))
}

/// How many of `returned` (distinct indices, each with its score, `None` when it is not a
/// candidate) are true neighbours: a candidate that scores at least the k-th best does, so a
/// node that picks another row tied with the k-th is not counted wrong. At most `truth.len()`.
pub fn hits(truth: &[(f64, u64)], returned: &[Option<f64>]) -> usize {
    let Some(&(kth, _)) = truth.last() else {
        return 0;
    };
    let found = returned.iter().flatten().filter(|&&s| s >= kth).count();
    found.min(truth.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_in_order_and_breaks_ties_by_index() {
        let scores = [0.5, 0.9, 0.1, 0.9, 0.7, 0.3];
        let got = top_k(3, scores.iter().enumerate().map(|(i, &s)| (s, i as u64)));
        assert_eq!(got, vec![(0.9, 1), (0.9, 3), (0.7, 4)]);
        let reversed = top_k(
            3,
            scores.iter().enumerate().rev().map(|(i, &s)| (s, i as u64)),
        );
        assert_eq!(reversed, got);
        assert_eq!(top_k(10, [(1.0, 4)].into_iter()), vec![(1.0, 4)]);
        assert!(top_k(0, [(1.0, 4)].into_iter()).is_empty());
    }

    #[test]
    fn scores_order_as_the_similarity_functions_do() {
        let q = [1.0f32, 0.0];
        let (near, far) = ([2.0f32, 0.1], [0.0f32, 1.0]);
        for s in [
            Similarity::Cosine,
            Similarity::DotProduct,
            Similarity::Euclidean,
        ] {
            assert!(score(s, &q, &near) > score(s, &q, &far), "{s:?}");
        }
        assert_eq!(score(Similarity::Euclidean, &q, &[4.0, 4.0]), -25.0);
        assert_eq!(score(Similarity::DotProduct, &q, &[4.0, 4.0]), 4.0);
        assert!((score(Similarity::Cosine, &q, &[4.0, 4.0]) - 0.5f64.sqrt()).abs() < 1e-12);
        // Cosine ignores length, the dot product does not.
        assert_eq!(
            score(Similarity::Cosine, &q, &[1.0, 0.0]),
            score(Similarity::Cosine, &q, &[9.0, 0.0])
        );
    }

    #[test]
    fn hits_count_rows_at_least_as_near_as_the_kth() {
        let truth = [(0.9, 1), (0.8, 2), (0.7, 3)];
        assert_eq!(hits(&truth, &[Some(0.9), Some(0.8), Some(0.7)]), 3);
        // One row not a candidate (not written, or filtered out), one below the k-th.
        assert_eq!(hits(&truth, &[Some(0.9), None, Some(0.6)]), 1);
        // A tie with the k-th counts.
        assert_eq!(hits(&truth, &[Some(0.7), Some(0.9), Some(0.8)]), 3);
        assert_eq!(hits(&[], &[Some(1.0)]), 0);
    }
}
