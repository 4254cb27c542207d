//! The recall log (`cqlpulse run --recall-log FILE`): one JSON line per checked query, with
//! what the check used, so that anyone can redo it: the query's op index, how many of the
//! writer's acknowledgements it counted as written (`mark`, the order log's length when the
//! query was sent), the keys the node returned, how many of them were left out as in flight
//! (`uncertain`), and the hits and neighbours expected. The acknowledgements themselves are
//! logged once each, in the order recorded, in `acknowledged` lines written before the first
//! query line that counts them: the rows a query counted are those of the writer's
//! `acknowledged` lines up to its `mark`, with the indices below `preloaded`.
//!
//! ```text
//! {"writer":"insert","from":0,"acknowledged":[0,2,1,3]}
//! {"op":"ann","index":5,"mark":4,"returned":[3,0,2],"uncertain":0,"hits":3,"expected":3}
//! ```
//!
//! Written by the recall checker's thread through a buffer: nothing on the request path. A
//! write error is logged once, ends the log, and fails the run at its end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::json;

use crate::output::WriteError;

pub struct RecallLog {
    out: BufWriter<File>,
    result: RecallLogResult,
}

/// The log's outcome, read once the run has ended.
#[derive(Clone)]
pub struct RecallLogResult {
    path: PathBuf,
    error: Arc<OnceLock<std::io::Error>>,
}

impl RecallLogResult {
    pub fn result(&self) -> Result<(), WriteError> {
        match self.error.get() {
            None => Ok(()),
            Some(e) => Err(WriteError {
                what: "the recall log",
                path: self.path.clone(),
                source: std::io::Error::new(e.kind(), e.to_string()),
            }),
        }
    }
}

/// A checked query, as the log shows it.
pub struct Checked<'a> {
    pub op: &'a str,
    pub index: u64,
    pub mark: u64,
    pub returned: &'a [i64],
    pub uncertain: u32,
    pub hits: u32,
    pub expected: u32,
}

impl RecallLog {
    /// Creates the file now, so a bad path fails before the run.
    pub fn create(path: &Path) -> std::io::Result<(RecallLog, RecallLogResult)> {
        let file = File::create(path)?;
        let result = RecallLogResult {
            path: path.to_path_buf(),
            error: Arc::new(OnceLock::new()),
        };
        let log = RecallLog {
            out: BufWriter::new(file),
            result: result.clone(),
        };
        Ok((log, result))
    }

    /// The writer's acknowledgements `from ..` (op indices, in the order recorded).
    pub fn acknowledged(&mut self, writer: &str, from: u64, indices: &[u64]) {
        self.line(json!({"writer": writer, "from": from, "acknowledged": indices}));
    }

    pub fn checked(&mut self, c: &Checked<'_>) {
        self.line(json!({
            "op": c.op,
            "index": c.index,
            "mark": c.mark,
            "returned": c.returned,
            "uncertain": c.uncertain,
            "hits": c.hits,
            "expected": c.expected,
        }));
    }

    /// Writes out what the buffer holds (at the end of the run).
    pub fn flush(&mut self) {
        if self.result.error.get().is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed(e);
        }
    }

    fn line(&mut self, value: serde_json::Value) {
        if self.result.error.get().is_some() {
            return;
        }
        if let Err(e) = writeln!(self.out, "{value}") {
            self.failed(e);
        }
    }

    fn failed(&mut self, e: std::io::Error) {
        tracing::error!(
            "cannot write the recall log {}: {e}; the run goes on without it",
            self.result.path.display()
        );
        let _ = self.result.error.set(e);
    }
}
