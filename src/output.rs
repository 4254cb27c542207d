//! Results a run writes to files (the HDR log, the summary JSON, the log file): the error
//! when one cannot be written. The run goes on; `main` fails it at its end.

/// A result of the run (the HDR log, the summary JSON, the log) that could not be written.
/// The run goes on; the exit status says it at the end.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {what} {}: {source}", path.display())]
pub struct WriteError {
    /// What it is, e.g. "the summary JSON".
    pub what: &'static str,
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}
