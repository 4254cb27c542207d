//! HdrHistogram interval logs (`--hdr-log FILE`), readable by the standard HdrHistogram tools
//! (HistogramLogProcessor, HdrHistogram's plotters). One tagged histogram per op per interval,
//! of service time in nanoseconds; written by a thread of its own so file I/O never stalls the
//! aggregator.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

type Interval = (
    std::time::Duration,
    std::time::Duration,
    Vec<(String, Histogram<u64>)>,
);

pub struct HdrLog {
    tx: Option<mpsc::Sender<Interval>>,
    thread: Option<JoinHandle<()>>,
    origin: Instant,
}

impl HdrLog {
    /// Creates the file now, so a bad path fails before the run.
    pub fn create(path: &Path) -> std::io::Result<HdrLog> {
        let file = std::fs::File::create(path)?;
        let (tx, rx) = mpsc::channel::<Interval>();
        let start = SystemTime::now();
        let thread = std::thread::Builder::new()
            .name("hdr-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                let mut serializer = V2DeflateSerializer::new();
                let Ok(mut log) = IntervalLogWriterBuilder::new()
                    .add_comment("cqlpulse service time per op, nanoseconds")
                    .with_start_time(start)
                    .with_base_time(start)
                    .with_max_value_divisor(1e6)
                    .begin_log_with(&mut out, &mut serializer)
                else {
                    return;
                };
                for (from, len, hists) in rx {
                    for (tag, h) in &hists {
                        let _ = log.write_histogram(h, from, len, Tag::new(tag));
                    }
                }
                drop(log);
                let _ = out.flush();
            })?;
        Ok(HdrLog {
            tx: Some(tx),
            thread: Some(thread),
            origin: Instant::now(),
        })
    }

    pub fn write(
        &mut self,
        from: Instant,
        to: Instant,
        names: &[String],
        hists: &[Histogram<u64>],
    ) {
        let Some(tx) = &self.tx else { return };
        let batch: Vec<(String, Histogram<u64>)> = names
            .iter()
            .zip(hists)
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, h)| (n.clone(), h.clone()))
            .collect();
        if batch.is_empty() {
            return;
        }
        let start = from.saturating_duration_since(self.origin);
        let _ = tx.send((start, to.saturating_duration_since(from), batch));
    }

    /// Flushes and closes the file.
    pub fn close(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
