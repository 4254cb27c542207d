//! Recall of ANN queries, measured live (README, "Vector search").

pub mod knn;
