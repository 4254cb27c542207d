//! Clustered vectors: points scattered around a number of centres, so that a query has
//! neighbours worth finding (uniform or Gaussian vectors in many dimensions are all about as
//! far from each other, and an ANN index has nothing to tell apart).
//!
//! A `clustered` generator is a [`Generator::Vector`] whose element generator is a
//! [`Generator::ClusterElement`]: element `j` of the vector at op index `i` sits at element
//! index `i * MAX_ELEMENTS + j` (see [`super::compose`]), so the element generator recovers
//! `i` and `j` and needs no state. Centre `c`'s coordinates depend on the seed alone, not on
//! the generator's stream: two clustered generators with the same number of centres and
//! dimension share them, so stored points and query points can come from generators of their
//! own and still fall around the same centres.

use super::dist::standard_normal;
use super::hash::mix;
use super::{MAX_ELEMENTS, bounded, hash3};

/// Salts of the hashes behind a centre's coordinates and a point's centre.
const CENTRE: u64 = 0x3C6E_F372_FE94_F82B;
const PICK: u64 = 0xA54F_F53A_5F1D_36F1;

/// Which of `centres` the point at op index `index` of stream `stream` belongs to.
#[inline]
pub fn centre_of(seed: u64, stream: u64, index: u64, centres: u64) -> u64 {
    bounded(hash3(seed, stream ^ PICK, index), centres)
}

/// Coordinate `j` of centre `c`: a standard normal value, the same in every stream.
#[inline]
pub fn centre_coordinate(seed: u64, c: u64, j: u64) -> f64 {
    standard_normal(mix(seed
        ^ CENTRE
        ^ mix(c.wrapping_mul(u64::from(MAX_ELEMENTS)).wrapping_add(j))))
}

/// Centre coordinates kept in a table up to this many (32 MiB); beyond, each is computed when
/// needed.
const MAX_TABLE: u64 = 1 << 22;

/// The coordinates of every centre, centre after centre, `dimension` each: made once, so a
/// point's element costs one normal sample instead of two. Empty when too large.
pub fn centre_table(seed: u64, centres: u64, dimension: u64) -> Box<[f64]> {
    if centres.saturating_mul(dimension) > MAX_TABLE {
        return Box::new([]);
    }
    (0..centres)
        .flat_map(|c| (0..dimension).map(move |j| centre_coordinate(seed, c, j)))
        .collect()
}

/// Element `element_index` (of stream `stream`, the vector's element stream) of a clustered
/// point: its centre's coordinate (from `table`, of `dimension` per centre, when it is there)
/// plus normal noise of standard deviation `spread`.
#[inline]
pub fn element(seed: u64, stream: u64, element_index: u64, shape: &Shape) -> f64 {
    let m = u64::from(MAX_ELEMENTS);
    let (index, j) = (element_index / m, element_index % m);
    let c = centre_of(seed, stream, index, shape.centres);
    let coordinate = match shape.table.get((c * shape.dimension + j) as usize) {
        Some(&x) if j < shape.dimension => x,
        _ => centre_coordinate(seed, c, j),
    };
    coordinate + shape.spread * standard_normal(hash3(seed, stream, element_index))
}

/// What a clustered generator's elements need: its centres (and their table), dimension and
/// spread.
#[derive(Debug, Clone)]
pub struct Shape {
    pub centres: u64,
    pub dimension: u64,
    pub spread: f64,
    pub table: Box<[f64]>,
}

impl Shape {
    pub fn new(seed: u64, centres: u64, dimension: u64, spread: f64) -> Shape {
        Shape {
            centres,
            dimension,
            spread,
            table: centre_table(seed, centres, dimension),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(seed: u64, stream: u64, i: u64, d: u64, spread: f64) -> Vec<f64> {
        let m = u64::from(MAX_ELEMENTS);
        let shape = Shape::new(seed, 8, d, spread);
        let untabled = Shape {
            table: Box::new([]),
            ..shape.clone()
        };
        let p: Vec<f64> = (0..d)
            .map(|j| element(seed, stream, i * m + j, &shape))
            .collect();
        let q: Vec<f64> = (0..d)
            .map(|j| element(seed, stream, i * m + j, &untabled))
            .collect();
        assert_eq!(p, q, "the table holds what would be computed");
        p
    }

    fn dist2(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
    }

    #[test]
    fn points_of_one_centre_are_closer_than_points_of_two() {
        let (seed, d, spread) = (7, 32, 0.1);
        let same = (1..200)
            .find(|&i| centre_of(seed, 3, i, 8) == centre_of(seed, 3, 0, 8))
            .expect("200 points over 8 centres share one with point 0");
        let other = (1..200)
            .find(|&i| centre_of(seed, 3, i, 8) != centre_of(seed, 3, 0, 8))
            .expect("200 points over 8 centres do not all share point 0's");
        let p0 = point(seed, 3, 0, d, spread);
        let near = dist2(&p0, &point(seed, 3, same, d, spread));
        let far = dist2(&p0, &point(seed, 3, other, d, spread));
        // Same centre: about 2 * d * spread^2 = 0.64; different centres: about 2 * d = 64.
        assert!(near < 3.0 && far > 10.0, "near {near}, far {far}");
    }

    #[test]
    fn centres_are_shared_across_streams_and_points_are_not() {
        let (seed, d) = (7, 16);
        let a = point(seed, 1, 5, d, 0.0);
        let c = centre_of(seed, 1, 5, 8);
        let centre: Vec<f64> = (0..d).map(|j| centre_coordinate(seed, c, j)).collect();
        assert_eq!(a, centre, "with no spread a point is its centre");
        assert_ne!(point(seed, 1, 5, d, 0.1), point(seed, 2, 5, d, 0.1));
        assert_eq!(point(seed, 1, 5, d, 0.1), point(seed, 1, 5, d, 0.1));
    }
}
