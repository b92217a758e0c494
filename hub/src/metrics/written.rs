//! What the hot path writes to clients, counted in process-wide atomics:
//! [`MESSAGES_OUT_TOTAL`], [`BYTES_OUT_TOTAL`] and the
//! [`PUBLISH_TO_WRITE_SECONDS`] histogram, rendered into `/metrics` after
//! the recorder's text ([`render`]).
//!
//! Every batch a writer sends, and every write-through round of a shard
//! worker, records here. Through the `metrics` crate's macros each of
//! those was a registry look-up per metric, and each latency sample a
//! clock read and a push onto the exporter's sample queue: ~11 % of the
//! hub's samples at 250 connections × 3,200 messages/s (docs/BENCHMARKS.md,
//! "The hot path's own write metrics"). Here a batch is tallied on the
//! stack ([`Tally`]) and added with one relaxed `fetch_add` per counter
//! and per bucket it touched.

use super::{
    BYTES_OUT_TOTAL, MESSAGES_OUT_TOTAL, PUBLISH_TO_WRITE_BUCKETS, PUBLISH_TO_WRITE_SECONDS,
};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Buckets of the histogram, plus one past the last bound (`+Inf`).
const SLOTS: usize = PUBLISH_TO_WRITE_BUCKETS.len() + 1;

/// Each bound of [`PUBLISH_TO_WRITE_BUCKETS`] in tenths of a microsecond
/// (the latencies are whole microseconds, the bounds go down to 2.5 µs).
const BOUNDS_TENTHS: [u64; SLOTS - 1] = {
    let mut tenths = [0u64; SLOTS - 1];
    let mut i = 0;
    while i < tenths.len() {
        // Exact for these bounds: each is a whole number of tenths.
        tenths[i] = (PUBLISH_TO_WRITE_BUCKETS[i] * 1e7 + 0.5) as u64;
        i += 1;
    }
    tenths
};

struct Totals {
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Samples per bucket (not cumulative).
    buckets: [AtomicU64; SLOTS],
    sum_micros: AtomicU64,
}

impl Totals {
    const fn new() -> Totals {
        Totals {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; SLOTS],
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The process's totals.
static TOTALS: Totals = Totals::new();

/// One batch's writes, tallied on the stack and added to the totals by
/// [`Tally::add`].
#[derive(Default)]
pub struct Tally {
    messages: u64,
    bytes: u64,
    buckets: [u64; SLOTS],
    sum_micros: u64,
}

impl Tally {
    /// `messages` messages of `bytes` bytes in all were written.
    pub fn written(&mut self, messages: u64, bytes: u64) {
        self.messages += messages;
        self.bytes += bytes;
    }

    /// `count` messages took `micros` from their publication to their
    /// write.
    pub fn latency(&mut self, micros: u64, count: u64) {
        let tenths = micros.saturating_mul(10);
        let slot = BOUNDS_TENTHS.partition_point(|&bound| bound < tenths);
        self.buckets[slot] += count;
        self.sum_micros = self.sum_micros.saturating_add(micros.saturating_mul(count));
    }

    /// Adds the tally to the process's totals.
    pub fn add(self) {
        self.add_to(&TOTALS);
    }

    fn add_to(self, totals: &Totals) {
        let add = |total: &AtomicU64, n: u64| {
            if n > 0 {
                total.fetch_add(n, Relaxed);
            }
        };
        add(&totals.messages, self.messages);
        add(&totals.bytes, self.bytes);
        for (total, n) in totals.buckets.iter().zip(self.buckets) {
            add(total, n);
        }
        // Wraps after 1.8e19 µs in all (the tally's own sum saturates).
        add(&totals.sum_micros, self.sum_micros);
    }
}

/// Appends the three metrics in the Prometheus text format, as the
/// exporter writes its own (help, type, samples, a blank line).
pub fn render(out: &mut String) {
    render_totals(&TOTALS, out);
}

fn render_totals(totals: &Totals, out: &mut String) {
    let messages = totals.messages.load(Relaxed);
    let bytes = totals.bytes.load(Relaxed);
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n\n"
        );
    };
    counter(
        out,
        MESSAGES_OUT_TOTAL,
        "Messages written to clients.",
        messages,
    );
    counter(out, BYTES_OUT_TOTAL, "Bytes written to clients.", bytes);
    let name = PUBLISH_TO_WRITE_SECONDS;
    let _ = write!(
        out,
        "# HELP {name} Time from publishing an event to writing it to a client socket.\n\
         # TYPE {name} histogram\n"
    );
    // Read once each; a write racing the scrape may be in a bucket and
    // not yet in the sum, as with any scrape of live counters.
    let counts: Vec<u64> = totals.buckets.iter().map(|b| b.load(Relaxed)).collect();
    let mut below = 0;
    for (bound, n) in PUBLISH_TO_WRITE_BUCKETS.iter().zip(&counts) {
        below += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {below}");
    }
    let count = below + counts[SLOTS - 1];
    let sum = totals.sum_micros.load(Relaxed) as f64 / 1e6;
    let _ = write!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}\n\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value after `prefix` on its line of `text`.
    fn value(text: &str, prefix: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Each sample lands in the first bucket whose bound it does not
    /// pass: a bound itself is in its bucket (Prometheus's `le`), one
    /// microsecond more is in the next. Only the slot is checked, not the
    /// process-wide totals other tests add to.
    #[test]
    fn a_latency_lands_in_the_first_bucket_it_fits() {
        let slot = |micros| {
            let mut tally = Tally::default();
            tally.latency(micros, 1);
            tally.buckets.iter().position(|&n| n == 1).unwrap()
        };
        assert_eq!(slot(0), 0);
        assert_eq!(slot(1), 0, "le 1 µs");
        assert_eq!(slot(2), 1, "le 2.5 µs");
        assert_eq!(slot(3), 2, "le 5 µs");
        assert_eq!(slot(1_000), 9, "le 1 ms");
        assert_eq!(slot(1_001), 10, "le 2.5 ms");
        assert_eq!(slot(100_000), 15, "le 100 ms");
        assert_eq!(slot(100_001), 16, "+Inf");
        assert_eq!(slot(u64::MAX), 16, "+Inf");
    }

    /// What tallies add shows in the rendered text: the counters are what
    /// was written, the buckets are cumulative and end at the count, and
    /// the sum is in seconds.
    #[test]
    fn tallies_show_up_in_the_text() {
        let totals = Totals::new();
        let mut tally = Tally::default();
        tally.written(3, 300);
        tally.latency(4, 2); // le 5 µs
        tally.latency(2_000, 1); // le 2.5 ms
        tally.add_to(&totals);
        let mut tally = Tally::default();
        tally.written(1, 50);
        tally.add_to(&totals);
        let mut text = String::new();
        render_totals(&totals, &mut text);
        assert_eq!(value(&text, "nax_messages_out_total "), 4);
        assert_eq!(value(&text, "nax_bytes_out_total "), 350);
        let bucket = |le: &str| format!("nax_publish_to_write_seconds_bucket{{le=\"{le}\"}} ");
        assert_eq!(value(&text, &bucket("0.0000025")), 0);
        assert_eq!(value(&text, &bucket("0.000005")), 2);
        assert_eq!(value(&text, &bucket("0.001")), 2);
        assert_eq!(value(&text, &bucket("0.0025")), 3);
        assert_eq!(value(&text, &bucket("0.1")), 3);
        assert_eq!(value(&text, &bucket("+Inf")), 3);
        assert_eq!(value(&text, "nax_publish_to_write_seconds_count "), 3);
        assert!(
            text.contains("\nnax_publish_to_write_seconds_sum 0.002008\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE nax_publish_to_write_seconds histogram\n"));
        assert!(text.contains("# TYPE nax_bytes_out_total counter\n"));
        for name in super::super::RENDERED {
            assert!(text.contains(&format!("\n# TYPE {name} ")), "{name}");
        }
    }
}
