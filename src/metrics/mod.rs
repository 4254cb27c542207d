//! Prometheus exposition, on the `prometheus-client` crate: a custom collector over the
//! latest [`Snapshot`] writes Prometheus text, OpenMetrics text, or the Prometheus protobuf
//! format with native histograms, as the scraper's `Accept` header asks. Nothing here is on
//! the request path: a scrape reads an `Arc` to a snapshot the aggregator already built, so
//! scrapes never slow the lanes.

#[cfg(test)]
mod catalogue_tests;
mod collector;
mod exemplar;
mod negotiate;
mod recall;

use std::sync::Arc;

use prometheus_client::encoding::{prometheus_protobuf, prometheus_text, text};
use prometheus_client::registry::Registry;
use prost::Message;

pub use collector::{RunIdentity, RunInfo, SnapshotCollector};
pub use exemplar::key_text;
pub use negotiate::Format;

use crate::stats::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("encoding the exposition failed")]
    Format(#[from] std::fmt::Error),
    #[error("encoding the protobuf exposition failed: {0}")]
    Protobuf(#[from] prost::EncodeError),
}

/// Renders everything a scrape returns, in `format`. `key` gives the key text of an op's
/// index for exemplars (see [`key_text`]).
pub fn render(
    format: Format,
    snapshot: Arc<Snapshot>,
    info: Arc<RunInfo>,
    identity: RunIdentity,
    key: &dyn Fn(usize, u64) -> Option<String>,
) -> Result<Vec<u8>, RenderError> {
    let collector = SnapshotCollector {
        snapshot: snapshot.clone(),
        info,
        identity,
        format,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    match format {
        Format::Text => {
            let mut out = String::with_capacity(64 * 1024);
            prometheus_text::encode(&mut out, &registry)?;
            Ok(out.into_bytes())
        }
        Format::OpenMetrics => {
            let mut out = String::with_capacity(64 * 1024);
            text::encode(&mut out, &registry)?;
            Ok(out.into_bytes())
        }
        Format::Protobuf => {
            let mut families = prometheus_protobuf::encode(&registry)?;
            exemplar::attach(&mut families, &snapshot, key);
            let mut out = Vec::with_capacity(64 * 1024);
            for family in &families {
                family.encode_length_delimited(&mut out)?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests;
