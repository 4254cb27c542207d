//! HdrHistogram interval logs (`--hdr-log FILE`), readable by the standard HdrHistogram tools
//! (HistogramLogProcessor, HdrHistogram's plotters). One tagged histogram per op per interval,
//! of service time in nanoseconds; written by a thread of its own so file I/O never stalls the
//! aggregator.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};

use crate::output::WriteError;

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

/// Whether the log was written whole: read after the log is closed (the aggregator closes it
/// when the run ends). The first write error stops the log, is logged at once, and stays
/// here for the end of the run.
#[derive(Debug, Clone)]
pub struct HdrLogResult {
    path: PathBuf,
    error: Arc<OnceLock<std::io::Error>>,
}

impl HdrLogResult {
    pub fn result(&self) -> Result<(), WriteError> {
        match self.error.get() {
            None => Ok(()),
            Some(e) => Err(WriteError {
                what: "the HDR log",
                path: self.path.clone(),
                source: std::io::Error::new(e.kind(), e.to_string()),
            }),
        }
    }
}

impl HdrLog {
    /// Creates the file now, so a bad path fails before the run.
    pub fn create(path: &Path) -> std::io::Result<(HdrLog, HdrLogResult)> {
        let file = std::fs::File::create(path)?;
        let (tx, rx) = mpsc::channel::<Interval>();
        let start = SystemTime::now();
        let result = HdrLogResult {
            path: path.to_path_buf(),
            error: Arc::new(OnceLock::new()),
        };
        let failed = result.clone();
        let thread = std::thread::Builder::new()
            .name("hdr-log".into())
            .spawn(move || {
                if let Err(e) = write_log(file, start, rx) {
                    tracing::error!(
                        "cannot write the HDR log {}: {e}; the run goes on without it",
                        failed.path.display()
                    );
                    let _ = failed.error.set(e);
                }
            })?;
        let log = HdrLog {
            tx: Some(tx),
            thread: Some(thread),
            origin: Instant::now(),
        };
        Ok((log, result))
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

/// Writes every interval received until the sender is gone; stops at the first error.
fn write_log(
    file: std::fs::File,
    start: SystemTime,
    intervals: mpsc::Receiver<Interval>,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(file);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("cqlpulse service time per op, nanoseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut out, &mut serializer)?;
    for (from, len, hists) in intervals {
        for (tag, h) in &hists {
            log.write_histogram(h, from, len, Tag::new(tag))
                .map_err(|e| match e {
                    IntervalLogWriterError::IoError(e) => e,
                    IntervalLogWriterError::SerializeError(e) => {
                        std::io::Error::other(format!("cannot serialize a histogram: {e:?}"))
                    }
                })?;
        }
    }
    drop(log);
    // No fsync: the path may be a pipe (`/dev/stdout`), where it fails for no fault.
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_error_is_kept_with_the_path() {
        // /dev/full takes the open and refuses every write: a full disk.
        let (mut log, result) = HdrLog::create(Path::new("/dev/full")).unwrap();
        let mut h = crate::stats::lane::histogram(3);
        for v in 1..20_000u64 {
            h.saturating_record(v * 1_000);
        }
        let now = Instant::now();
        for _ in 0..10 {
            log.write(now, now, &["w".to_string()], std::slice::from_ref(&h));
        }
        log.close();
        let e = result.result().unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/dev/full"), "{text}");
        assert_eq!(e.source.kind(), std::io::ErrorKind::StorageFull, "{text}");
    }

    #[test]
    fn a_log_written_whole_reads_back() {
        let path = std::env::temp_dir().join(format!("cqlpulse-hdr-{}.hlog", std::process::id()));
        let (mut log, result) = HdrLog::create(&path).unwrap();
        let mut h = crate::stats::lane::histogram(3);
        h.saturating_record(1_500_000);
        let now = Instant::now();
        log.write(now, now, &["w".to_string()], std::slice::from_ref(&h));
        log.close();
        result.result().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(text.contains("Tag=w,"), "{text}");
    }
}
