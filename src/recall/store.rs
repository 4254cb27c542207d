//! The vectors a run wrote, regenerated from (seed, stream, op index) as the recall checker
//! needs them and kept: a vector costs its dimension's hashes once, 4 bytes per element after.

use std::collections::HashMap;

use crate::data::Generator;
use crate::data::compose::{element_index, element_stream, number};

/// One vector generator's values, by op index, as the node stores them (`f32`).
pub struct Store {
    seed: u64,
    stream: u64,
    dimension: usize,
    slots: HashMap<u64, usize>,
    data: Vec<f32>,
}

impl Store {
    pub fn new(seed: u64, stream: u64, dimension: usize) -> Store {
        Store {
            seed,
            stream,
            dimension,
            slots: HashMap::new(),
            data: Vec::new(),
        }
    }

    /// The vector of op `index`, made the first time it is asked for.
    pub fn get(&mut self, g: &Generator, index: u64) -> &[f32] {
        let d = self.dimension;
        let slot = match self.slots.get(&index) {
            Some(&s) => s,
            None => {
                let s = self.data.len() / d;
                self.data.resize(self.data.len() + d, 0.0);
                regenerate(g, self.seed, self.stream, index, &mut self.data[s * d..]);
                self.slots.insert(index, s);
                s
            }
        };
        &self.data[slot * d..(slot + 1) * d]
    }

    /// Vectors kept.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Writes the vector of `g` (a vector generator) at (stream, index) into `out`, element by
/// element as the encoder binds it: scaled when normalised, then rounded to `f32`.
pub fn regenerate(g: &Generator, seed: u64, stream: u64, index: u64, out: &mut [f32]) {
    let Generator::Vector { element, .. } = g.unsparse() else {
        out.fill(0.0);
        return;
    };
    let scale = g.vector_scale(seed, stream, index, out.len());
    let es = element_stream(stream, 0);
    for (j, x) in out.iter_mut().enumerate() {
        let v = number(element.value(seed, es, element_index(index, j)));
        *x = (if scale != 1.0 { v * scale } else { v }) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Datum;
    use std::sync::Arc;

    #[test]
    fn regenerated_vectors_are_what_the_generator_binds() {
        let g = Generator::Vector {
            element: Arc::new(Generator::ClusterElement(Arc::new(
                crate::data::clustered::Shape::new(5, 4, 8, 0.3),
            ))),
            normalize: true,
            dimension: 8,
        };
        let mut store = Store::new(5, 2, 8);
        for index in [0, 7, 123_456] {
            let Datum::List(items) = g.datum(5, 2, index) else {
                panic!("a vector's datum is a list");
            };
            let want: Vec<f32> = items
                .iter()
                .map(|d| match d {
                    Datum::Float(x) => *x as f32,
                    other => panic!("not a float: {other:?}"),
                })
                .collect();
            assert_eq!(store.get(&g, index), &want[..]);
        }
        assert_eq!(store.len(), 3);
        let again = store.get(&g, 7).to_vec();
        assert_eq!(store.len(), 3, "a vector is made once");
        assert!((again.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
