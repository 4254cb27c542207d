//! Where log lines go: stderr (a terminal, or the file it is redirected to), through a writer
//! that keeps the first write error, so that a log lost to a full disk fails the run at its
//! end instead of vanishing. Log lines are few (no event per request): this costs nothing.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;

use crate::output::WriteError;

/// Whether log lines carry terminal colour codes: only when stderr is a terminal and the
/// user has not asked for none (`NO_COLOR`, no-color.org). A file or a pipe (a log
/// collector, `2> run.log`) gets plain text: escape codes there are noise to grep and parse.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The log's destination, for `tracing_subscriber`.
pub struct LogSink {
    target: Target,
    failed: OnceLock<io::Error>,
}

enum Target {
    Stderr,
    /// A file of its own (tests).
    File(std::fs::File, PathBuf),
}

impl LogSink {
    pub fn stderr() -> LogSink {
        LogSink {
            target: Target::Stderr,
            failed: OnceLock::new(),
        }
    }

    pub fn file(file: std::fs::File, path: PathBuf) -> LogSink {
        LogSink {
            target: Target::File(file, path),
            failed: OnceLock::new(),
        }
    }

    /// A writer for one log event.
    pub fn writer(&self) -> LogWriter<'_> {
        LogWriter { sink: self }
    }

    /// The first write error, with the path written to (stderr's, when it is a file).
    pub fn result(&self) -> Result<(), WriteError> {
        let Some(e) = self.failed.get() else {
            return Ok(());
        };
        let path = match &self.target {
            Target::Stderr => {
                std::fs::read_link("/proc/self/fd/2").unwrap_or_else(|_| "stderr".into())
            }
            Target::File(_, path) => path.clone(),
        };
        Err(WriteError {
            what: "the log",
            path,
            source: io::Error::new(e.kind(), e.to_string()),
        })
    }
}

/// One log event's writer.
pub struct LogWriter<'a> {
    sink: &'a LogSink,
}

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &self.sink.target {
            Target::Stderr => io::stderr().write(buf),
            Target::File(f, _) => (&*f).write(buf),
        };
        // The error is kept, and the line given up as if written: tracing-subscriber
        // answers a failed write with `eprintln!`, which panics when stderr is the problem.
        Ok(written.unwrap_or_else(|e| {
            let _ = self.sink.failed.set(e);
            buf.len()
        }))
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = match &self.sink.target {
            Target::Stderr => io::stderr().flush(),
            Target::File(f, _) => (&*f).flush(),
        };
        if let Err(e) = flushed {
            let _ = self.sink.failed.set(e);
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogWriter<'a>;
    fn make_writer(&'a self) -> LogWriter<'a> {
        self.writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a file or a pipe");
        assert!(!colour(true, Some("1".as_ref())));
        assert!(colour(true, Some("".as_ref())), "NO_COLOR set but empty");
    }

    #[test]
    fn a_failed_write_is_kept_with_the_path() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let sink = LogSink::file(full, "/dev/full".into());
        assert!(sink.result().is_ok());
        let mut w = sink.make_writer();
        // Given up as written (see `write`), and kept.
        w.write_all(b"a line\n").unwrap();
        let e = sink.result().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot write the log /dev/full: "),
            "{e}"
        );
        assert_eq!(e.source.kind(), io::ErrorKind::StorageFull);
    }
}
