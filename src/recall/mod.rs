//! Recall of ANN queries, measured live (README, "Vector search"): the exact nearest
//! neighbours ([`knn`]) among the vectors a run wrote, regenerated from their op indices
//! ([`store`]), compared with what the node returned; each check optionally logged ([`log`]).
//! The checker that runs them off the request path is the engine's (`engine::recall`).

pub mod knn;
pub mod log;
pub mod store;
