//! Prometheus exposition: renders the latest [`Snapshot`] and the process metrics in the text
//! format. Nothing here is on the request path: a scrape reads an `Arc` to a snapshot the
//! aggregator already built, so scrapes never slow the lanes.
//!
//! Why no exposition library: every value is already aggregated (per-lane HDR histograms
//! merged into buckets), so a registry would only copy it again under its own locks. The text
//! format is small and stable, and `promtool check metrics` holds this renderer to it.

mod render;

pub use render::{RunIdentity, RunInfo, render, render_run_identity};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
