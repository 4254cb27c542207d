//! Content negotiation for `/metrics`: the scraper's `Accept` header picks the exposition
//! format. Anything unknown, malformed or absent gets the Prometheus text format: a scrape is
//! never refused for its header.

/// An exposition format cqlpulse serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: classic buckets, no exemplars.
    Text,
    /// OpenMetrics text 1.0.0: classic buckets and exemplars.
    OpenMetrics,
    /// Prometheus protobuf (length-delimited `io.prometheus.client.MetricFamily`): native
    /// histograms with the classic buckets alongside, and exemplars.
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// The format for an `Accept` header: the supported media range with the highest `q`
    /// (the earliest on a tie), text when none is supported.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f64, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut proto, mut encoding, mut version) = (1.0, None, None, None);
            for param in parts {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse().unwrap_or(0.0),
                    "proto" => proto = Some(v.to_string()),
                    "encoding" => encoding = Some(v.to_ascii_lowercase()),
                    "version" => version = Some(v.to_string()),
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf"
                    if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
                        && encoding.as_deref().is_none_or(|e| e == "delimited") =>
                {
                    Some(Format::Protobuf)
                }
                // 0.0.1 and 1.0.0 are the same format to Prometheus; we write 1.0.0.
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
                {
                    Some(Format::OpenMetrics)
                }
                "text/plain" | "*/*" | "text/*" => Some(Format::Text),
                _ => None,
            };
            if let Some(format) = format
                && q > 0.0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_headers_pick_their_format() {
        // What Prometheus 2.42 sends with and without --enable-feature=native-histograms.
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let classic = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(native)), Format::Protobuf);
        assert_eq!(Format::negotiate(Some(classic)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;q=0.9, application/openmetrics-text;q=0.95"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn unsupported_or_malformed_headers_get_text() {
        for accept in [
            None,
            Some(""),
            Some("application/json"),
            Some("application/vnd.google.protobuf;proto=other.Message"),
            Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            ),
            Some("application/openmetrics-text;version=9.9"),
            Some("application/openmetrics-text;q=0"),
            Some(";;;,,=q=;"),
            Some("application/openmetrics-text;q=abc"),
        ] {
            assert_eq!(Format::negotiate(accept), Format::Text, "{accept:?}");
        }
    }
}
