//! What a verified read found: the row it targeted was there with every value regenerated for
//! its op index (ok), was not there (missing), or held other values (mismatch); or the read
//! was skipped because nothing was acknowledged yet. Counted per op, apart from its success:
//! a verified read that succeeds as a request may still find a missing row.

use serde::{Deserialize, Serialize};

/// The outcome of one read's verification; `None` for a read that does not verify (and for
/// writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    #[default]
    None,
    /// Nothing acknowledged to target yet: the read was not sent.
    Skipped,
    Ok,
    Missing,
    Mismatch,
}

impl Verdict {
    /// The verdicts that are counted, in the order of [`Verified`]'s fields.
    pub const COUNTED: [Verdict; 4] = [
        Verdict::Skipped,
        Verdict::Ok,
        Verdict::Missing,
        Verdict::Mismatch,
    ];

    /// The label value in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::None => "none",
            Verdict::Skipped => "skipped",
            Verdict::Ok => "ok",
            Verdict::Missing => "missing",
            Verdict::Mismatch => "mismatch",
        }
    }
}

/// Verified reads of an op by verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verified {
    pub skipped: u64,
    pub ok: u64,
    pub missing: u64,
    pub mismatch: u64,
}

impl Verified {
    #[inline]
    pub fn count(&mut self, v: Verdict) {
        match v {
            Verdict::None => {}
            Verdict::Skipped => self.skipped += 1,
            Verdict::Ok => self.ok += 1,
            Verdict::Missing => self.missing += 1,
            Verdict::Mismatch => self.mismatch += 1,
        }
    }

    pub fn add(&mut self, o: &Verified) {
        self.skipped += o.skipped;
        self.ok += o.ok;
        self.missing += o.missing;
        self.mismatch += o.mismatch;
    }

    /// The count of verdict `v` (0 for `None`).
    pub fn get(&self, v: Verdict) -> u64 {
        match v {
            Verdict::None => 0,
            Verdict::Skipped => self.skipped,
            Verdict::Ok => self.ok,
            Verdict::Missing => self.missing,
            Verdict::Mismatch => self.mismatch,
        }
    }

    /// Reads that compared a row (skipped ones left out).
    pub fn checked(&self) -> u64 {
        self.ok + self.missing + self.mismatch
    }

    pub fn is_empty(&self) -> bool {
        *self == Verified::default()
    }
}
