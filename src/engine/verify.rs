//! Verified reads: which row a read targets, what it found, and the log of the first bad keys.
//!
//! A verified read draws an op index its write had acknowledged before the read is sent
//! ([`Acked::pick`]), so a read never races its write; it binds the write's key generators at
//! that index (a batched write's op index `i` wrote rows `i * size ..`: one of them is drawn)
//! and compares every returned column with the write's generator at that row
//! ([`crate::cql::expect`]). No row: missing; another value, or more than one row: mismatch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use scylla::deserialize::row::ColumnIterator;
use scylla::response::query_result::QueryRowsResult;

use super::acked::Acked;
use crate::cql::Arg;
use crate::cql::expect::matches;
use crate::cql::verify::VerifyRead;
use crate::data::mix;
use crate::plan::Plan;
use crate::stats::Verdict;

/// Bad keys logged in full per op before the log is rate-limited.
const LOG_FIRST: u64 = 10;
/// After those, at most one line per this many milliseconds per op.
const LOG_EVERY_MS: u64 = 10_000;
/// Salt of the hash that draws a verified read's target.
const TARGET: u64 = 0x9FB2_1C65_1E98_DF25;

/// How one read op verifies.
pub struct Verifier {
    op: String,
    write: String,
    read: VerifyRead,
    acked: Arc<Acked>,
    /// Bad rows seen, and when (ms since `since`) the last was logged.
    bad: AtomicU64,
    logged_ms: AtomicU64,
    since: Instant,
}

/// The row a verified read targets: the write's op index, and the row of it read back.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub write_index: u64,
    pub row: u64,
}

impl Verifier {
    pub fn new(plan: &Plan, op: usize, read: VerifyRead, acked: Arc<Acked>) -> Verifier {
        Verifier {
            op: plan.ops[op].name.clone(),
            write: plan.ops[read.write].name.clone(),
            read,
            acked,
            bad: AtomicU64::new(0),
            logged_ms: AtomicU64::new(0),
            since: Instant::now(),
        }
    }

    /// The target of the read at op index `index`; `None` while nothing is acknowledged.
    #[inline]
    pub fn target(&self, seed: u64, index: u64) -> Option<Target> {
        let random = mix(seed ^ TARGET ^ index.rotate_left(23));
        let write_index = self.acked.pick(random)?;
        let rows = self.read.rows;
        Some(Target {
            write_index,
            row: write_index * rows + mix(random) % rows,
        })
    }

    /// The read's bind markers' arguments (the write's generators for its key).
    pub fn key(&self) -> &[Arg] {
        &self.read.key
    }

    /// A comparison of the pages of the read of `target`.
    pub fn check(&self, seed: u64, target: Target) -> Check<'_> {
        Check {
            read: &self.read,
            seed,
            row: target.row,
            rows: 0,
            bad: None,
        }
    }

    /// Logs a missing or mismatched row: the first ones in full, then at most one line per
    /// [`LOG_EVERY_MS`] with the count so far.
    pub fn report(&self, seed: u64, target: Target, verdict: Verdict, column: Option<&str>) {
        let n = self.bad.fetch_add(1, Ordering::Relaxed) + 1;
        if n > LOG_FIRST {
            let now = self.since.elapsed().as_millis() as u64;
            let last = self.logged_ms.load(Ordering::Relaxed);
            if now < last + LOG_EVERY_MS
                || self
                    .logged_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
        }
        let key: Vec<String> = self
            .read
            .key_columns
            .iter()
            .zip(&self.read.key)
            .map(|(c, a)| format!("{c}={:?}", a.generator.datum(seed, a.stream, target.row)))
            .collect();
        tracing::warn!(
            op = %self.op,
            write = %self.write,
            write_index = target.write_index,
            row_index = target.row,
            key = %key.join(", "),
            column = column.unwrap_or("-"),
            bad_so_far = n,
            "verified read: {} row (acknowledged by {} before the read was sent){}",
            verdict.name(),
            self.write,
            if n == LOG_FIRST { "; further bad rows are logged at most every 10 s" } else { "" }
        );
    }
}

/// What the pages of one verified read held so far.
pub struct Check<'a> {
    read: &'a VerifyRead,
    seed: u64,
    row: u64,
    rows: u64,
    /// The first column that differed (or could not be read).
    bad: Option<&'a str>,
}

impl<'a> Check<'a> {
    /// Compares the rows of one page.
    pub fn page(&mut self, r: &QueryRowsResult) {
        let Ok(rows) = r.rows::<ColumnIterator>() else {
            self.bad.get_or_insert("(rows of another shape)");
            return;
        };
        for row in rows {
            self.rows += 1;
            let Ok(columns) = row else {
                self.bad.get_or_insert("(a row that cannot be read)");
                continue;
            };
            for (j, c) in columns.enumerate() {
                let Ok(c) = c else {
                    self.bad.get_or_insert("(a column that cannot be read)");
                    break;
                };
                let Some(e) = self
                    .read
                    .columns
                    .get(j)
                    .filter(|e| e.column == c.spec.name())
                else {
                    self.bad
                        .get_or_insert("(a column the statement did not return)");
                    break;
                };
                let value = c.slice.map(|s| s.as_slice());
                if self.bad.is_none() && !matches(&e.arg, self.seed, self.row, &e.typ, value) {
                    self.bad = Some(&e.column);
                }
            }
        }
    }

    /// The read's verdict: no row is missing, one row equal to the write's is ok, anything
    /// else is a mismatch.
    pub fn verdict(&self) -> Verdict {
        match (self.rows, self.bad) {
            (0, _) => Verdict::Missing,
            (1, None) => Verdict::Ok,
            _ => Verdict::Mismatch,
        }
    }

    /// The first column that differed.
    pub fn first_bad(&self) -> Option<&'a str> {
        self.bad
    }
}
