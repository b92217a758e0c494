//! Measurements shared by every client of a run.
//!
//! Per-message numbers (counts, bytes, latencies) go into one of a few
//! sharded, mutex-protected [`Shard`]s: a client always uses the same shard,
//! so with a handful of worker threads a lock is almost never contended.
//! Once a second the sampler [`Stats::harvest`]s every shard, which yields
//! the per-second timeline and, summed, the run's totals. Rare events
//! (connects, closes, errors) go straight to [`Events`].

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Number of shards; a few per worker thread is plenty.
const SHARDS: usize = 16;
/// Largest latency or connect time recorded, µs (longer ones saturate).
const MAX_MICROS: u64 = 60_000_000;
/// Failure descriptions kept for the report.
const MAX_FAILURE_SAMPLES: usize = 20;

/// A new histogram of microseconds, 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("bounds 1..60 s at 3 digits are valid")
}

macro_rules! counters {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Everything the harness counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $(#[doc = $doc] $variant,)*
        }

        impl Counter {
            /// Every counter, in report order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// The counter's key in result.json.
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }
        }
    };
}

counters! {
    Messages => "messages": "Text frames received.",
    Bytes => "bytes": "Payload bytes of those frames.",
    ChannelMessages => "channel_messages": "Frames carrying a channel message.",
    LatencySamples => "latency_samples": "Channel messages whose latency was recorded.",
    StaleMessages => "stale_messages": "State or replayed messages ingested before the client subscribed (no latency recorded).",
    ChainChecked => "chain_checked": "Channel messages whose prev_seq was checked.",
    ChainFailures => "chain_failures": "Missed or repeated messages (prev_seq / seq rule broken).",
    FirstPrevSeqNotZero => "first_prev_seq_not_zero": "First message of a fresh subscription with prev_seq != 0.",
    BeforeSubscribed => "before_subscribed": "Channel messages that arrived before their subscribed reply.",
    EpochChanges => "epoch_changes": "Epoch changes seen within a subscription.",
    ChecksumChecked => "checksum_checked": "Book/depth messages whose checksum was verified.",
    ChecksumFailures => "checksum_failures": "Checksums that differed from the rebuilt book (or levels that could not be applied).",
    ChecksumSkipped => "checksum_skipped": "Updates not verified because the rebuilt book was invalid.",
    SlowConsumerSnapshots => "slow_consumer_snapshots": "State messages with reason slow_consumer.",
    ResyncSnapshots => "resync_snapshots": "State messages with reason resync.",
    ErrorFrames => "error_frames": "error replies from the hub.",
    ParseFailures => "parse_failures": "Frames that were not a readable hub message.",
    ConnectAttempts => "connect_attempts": "TCP + WebSocket connection attempts.",
    Connected => "connected": "Successful connections (reconnects included).",
    ConnectFailures => "connect_failures": "Failed connection attempts.",
    Subscribed => "subscribed": "subscribed replies received.",
    ResumeAttempts => "resume_attempts": "Subscribes that asked to resume.",
    ChannelsRecovered => "channels_recovered": "Channels listed under recovered.",
    ChannelsNotRecovered => "channels_not_recovered": "Channels listed under not_recovered.",
    Closes => "closes": "Connections closed by the hub or the network before the run ended.",
}

/// A value for every [`Counter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSet([u64; Counter::ALL.len()]);

impl CounterSet {
    pub fn add(&mut self, c: Counter, n: u64) {
        self.0[c as usize] += n;
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    pub fn merge(&mut self, other: &CounterSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Name → value, for result.json.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        Counter::ALL
            .iter()
            .map(|c| (c.name().to_string(), self.get(*c)))
            .collect()
    }
}

/// Which latency histogram a message belongs to: they answer different
/// questions, so they are never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyClass {
    /// Raw channels of normally reading clients: the fan-out latency.
    Live,
    /// `@100ms`/`@1000ms` channels: includes the conflation wait.
    Conflated,
    /// Clients that read slowly on purpose.
    Slow,
}

impl LatencyClass {
    pub const ALL: [LatencyClass; 3] = [
        LatencyClass::Live,
        LatencyClass::Conflated,
        LatencyClass::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LatencyClass::Live => "live",
            LatencyClass::Conflated => "conflated",
            LatencyClass::Slow => "slow",
        }
    }
}

/// What clients record per message, for one interval.
#[derive(Debug, Clone)]
pub struct Shard {
    pub counters: CounterSet,
    pub latency: [Histogram<u64>; 3],
}

impl Shard {
    fn new() -> Shard {
        Shard {
            counters: CounterSet::default(),
            latency: [micros_histogram(), micros_histogram(), micros_histogram()],
        }
    }

    pub fn count(&mut self, c: Counter, n: u64) {
        self.counters.add(c, n);
    }

    pub fn latency(&mut self, class: LatencyClass, micros: u64) {
        self.latency[class as usize].saturating_record(micros.max(1));
        self.counters.add(Counter::LatencySamples, 1);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Shard) {
        self.counters.merge(&other.counters);
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            a.add(b).expect("histograms share their bounds");
        }
    }

    fn reset(&mut self) {
        self.counters = CounterSet::default();
        self.latency.iter_mut().for_each(Histogram::reset);
    }
}

/// Rare events of a run.
#[derive(Debug)]
pub struct Events {
    /// Time from starting the TCP connect to the completed WebSocket
    /// handshake, µs.
    pub connect_time: Histogram<u64>,
    /// Time from sending `subscribe` to the `subscribed` reply, µs.
    pub subscribe_rtt: Histogram<u64>,
    /// Error kind → count (connect failures, WebSocket errors, `error`
    /// frames by code).
    pub errors: BTreeMap<String, u64>,
    /// Close code (or `none` for a connection that ended without a close
    /// frame) → count, for closes the client did not start.
    pub closes: BTreeMap<String, u64>,
    /// The first few integrity failures, described.
    pub failures: Vec<String>,
}

/// The shared measurements of a run.
#[derive(Debug)]
pub struct Stats {
    shards: Box<[Mutex<Shard>]>,
    events: Mutex<Events>,
    open: AtomicI64,
    peak_open: AtomicI64,
    /// Milliseconds since `started` of the latest `subscribed` reply.
    last_subscribed_ms: AtomicU64,
    started: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            events: Mutex::new(Events {
                connect_time: micros_histogram(),
                subscribe_rtt: micros_histogram(),
                errors: BTreeMap::new(),
                closes: BTreeMap::new(),
                failures: Vec::new(),
            }),
            open: AtomicI64::new(0),
            peak_open: AtomicI64::new(0),
            last_subscribed_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Time since the stats were created (the run's clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs `f` on client `client`'s shard.
    pub fn record<R>(&self, client: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        let mut shard = self.shards[client % SHARDS]
            .lock()
            .expect("a stats shard is never poisoned: recording cannot panic");
        f(&mut shard)
    }

    /// Runs `f` on the rare-event record.
    pub fn events<R>(&self, f: impl FnOnce(&mut Events) -> R) -> R {
        let mut events = self
            .events
            .lock()
            .expect("the event record is never poisoned: recording cannot panic");
        f(&mut events)
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: impl Into<String>) {
        self.events(|e| *e.errors.entry(kind.into()).or_default() += 1);
    }

    /// Counts a close the client did not start.
    pub fn close(&self, code: Option<u16>) {
        let key = code.map_or_else(|| "none".to_string(), |c| c.to_string());
        self.events(|e| *e.closes.entry(key).or_default() += 1);
    }

    /// Keeps the description of an integrity failure (the first few).
    pub fn failure(&self, what: String) {
        self.events(|e| {
            if e.failures.len() < MAX_FAILURE_SAMPLES {
                e.failures.push(what);
            }
        });
    }

    /// A connection opened / closed.
    pub fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(now, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn peak_open(&self) -> u64 {
        self.peak_open.load(Ordering::Relaxed).max(0) as u64
    }

    /// Notes that a `subscribed` reply arrived now.
    pub fn subscribed_now(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_subscribed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the latest `subscribed` reply arrived, seconds into the run.
    pub fn last_subscribed_secs(&self) -> Option<f64> {
        match self.last_subscribed_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as f64 / 1000.0),
        }
    }

    /// Takes (and resets) what every shard recorded since the last harvest.
    pub fn harvest(&self) -> Shard {
        let mut total = Shard::new();
        for shard in self.shards.iter() {
            let mut s = shard
                .lock()
                .expect("a stats shard is never poisoned: recording cannot panic");
            total.merge(&s);
            s.reset();
        }
        total
    }
}

/// The percentiles reported for one histogram, µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The latency at quantiles 0, 0.5, 0.75, ... up to 1 - 10^-5 and the
/// maximum: the points of a percentile plot. Each point is
/// `(quantile, µs)`.
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut q: f64 = 0.0;
    // Halve the distance to 1 each step: evenly spaced on a "nines" axis.
    while q < 0.99999 {
        points.push((q, h.value_at_quantile(q)));
        q = 1.0 - (1.0 - q) / 2.0_f64.sqrt();
    }
    points.push((1.0, h.max()));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_unique() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }

    #[test]
    fn harvest_takes_and_resets() {
        let stats = Stats::new();
        stats.record(3, |s| {
            s.count(Counter::Messages, 2);
            s.latency(LatencyClass::Live, 150);
        });
        stats.record(40, |s| s.latency(LatencyClass::Slow, 9_000));
        let first = stats.harvest();
        assert_eq!(first.counters.get(Counter::Messages), 2);
        assert_eq!(first.counters.get(Counter::LatencySamples), 2);
        assert_eq!(first.latency[LatencyClass::Live as usize].len(), 1);
        assert_eq!(stats.harvest().counters.get(Counter::Messages), 0);
    }

    #[test]
    fn percentiles_and_spectrum() {
        let mut h = micros_histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.count, p.min, p.max), (1000, 1, 1000));
        assert!((495..=505).contains(&p.p50), "{p:?}");
        let s = spectrum(&h);
        assert_eq!(s.first().unwrap().0, 0.0);
        assert_eq!(*s.last().unwrap(), (1.0, 1000));
        assert!(s.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(spectrum(&micros_histogram()).is_empty());
    }

    #[test]
    fn open_tracks_its_peak() {
        let stats = Stats::new();
        stats.opened();
        stats.opened();
        stats.closed();
        assert_eq!((stats.open(), stats.peak_open()), (1, 2));
    }
}
