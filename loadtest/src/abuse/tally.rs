//! What the workers of an abuse run record: outcomes per kind (flagging
//! the unexpected ones), HTTP server errors, and timings.

use crate::stats::micros_histogram;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Outcomes and timings shared by every worker of a run.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Debug, Default)]
pub(super) struct TallyInner {
    /// kind → outcome → count.
    pub(super) outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// `kind: outcome` → count, for outcomes not expected of the kind.
    pub(super) unexpected: BTreeMap<String, u64>,
    /// HTTP answers with a 5xx status.
    pub(super) server_errors: u64,
    /// Timing name → µs.
    pub(super) timings: BTreeMap<String, Histogram<u64>>,
}

impl Tally {
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut TallyInner) -> R) -> R {
        f(&mut self.inner.lock().expect("the tally is never poisoned"))
    }

    /// Counts one `outcome` of `kind`.
    pub fn outcome(&self, kind: &str, outcome: &str, expected: bool) {
        self.with(|t| {
            *t.outcomes
                .entry(kind.to_string())
                .or_default()
                .entry(outcome.to_string())
                .or_default() += 1;
            if !expected {
                *t.unexpected
                    .entry(format!("{kind}: {outcome}"))
                    .or_default() += 1;
            }
        });
    }

    /// Counts an HTTP answer of `kind` (its status is the outcome); a
    /// status not in `expected` is unexpected, a 5xx is also a server
    /// error.
    pub fn answer(&self, kind: &str, status: u16, expected: &[u16]) {
        self.status(status);
        self.outcome(kind, &status.to_string(), expected.contains(&status));
    }

    /// Counts an HTTP status seen: a 5xx is a server error.
    pub fn status(&self, status: u16) {
        if status >= 500 {
            self.with(|t| t.server_errors += 1);
        }
    }

    /// Records `elapsed` under the timing `name`.
    pub fn time(&self, name: &str, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).max(1);
        self.with(|t| {
            t.timings
                .entry(name.to_string())
                .or_insert_with(micros_histogram)
                .saturating_record(micros)
        });
    }

    /// Server errors so far.
    pub fn server_errors(&self) -> u64 {
        self.with(|t| t.server_errors)
    }
}
