//! The outcome of a run, as written to `result.json`: every number the
//! summary table and the HTML report show, plus the per-second timeline.
//! It deserializes too, so later tools (and tests) can read results back.

use crate::orders::summary::OrderFlowResult;
use crate::stats::{spectrum, Counter, CounterSet, Events, LatencyClass, Percentiles, Shard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the result.json layout.
pub const RESULT_VERSION: u32 = 1;

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the run started, at the end of the interval.
    pub t: f64,
    /// Connections open at that moment.
    pub open: u64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
    /// Live-class latency over the interval, µs (0 when no sample).
    pub live_p50_us: u64,
    pub live_p99_us: u64,
    pub live_max_us: u64,
    /// Connect failures and unexpected closes so far.
    pub failures: u64,
}

/// Connection counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    /// `--connections`.
    pub target: u64,
    /// Clients started (fewer than `target` if the run ended during ramp).
    pub clients: u64,
    pub peak_open: u64,
    /// Clients that rebuilt books and verified checksums.
    pub verify_clients: u64,
    /// Clients that read slowly on purpose.
    pub slow_clients: u64,
    /// Seconds of ramp (time to start every client).
    pub ramp_s: f64,
    /// Seconds into the run at which the last `subscribed` reply arrived.
    pub last_subscribed_s: Option<f64>,
    /// Resume storms triggered (resume-storm).
    pub storms: u64,
}

/// Delivered traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    /// Averages over the whole run.
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
    /// Best one-second interval.
    pub peak_msgs_per_s: f64,
    pub peak_bytes_per_s: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub version: u32,
    pub scenario: String,
    pub url: String,
    /// Start of the run, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// Length of the run, seconds (until the clients were told to stop).
    pub elapsed_s: f64,
    /// The options of the run.
    pub options: serde_json::Value,
    pub connections: ConnectionSummary,
    /// TCP connect + WebSocket handshake, µs.
    pub connect_time_us: Percentiles,
    /// `subscribe` sent → `subscribed` received, µs.
    pub subscribe_rtt_us: Percentiles,
    /// End-to-end latency (hub ingest `ts` → client receive) per class
    /// (`live`, `conflated`, `slow`), µs.
    pub latency_us: BTreeMap<String, Percentiles>,
    /// Per class, `(quantile, µs)` points for a percentile plot.
    pub latency_spectrum_us: BTreeMap<String, Vec<(f64, u64)>>,
    pub throughput: Throughput,
    /// Every counter (see `stats::Counter`).
    pub counters: BTreeMap<String, u64>,
    /// Error kind → count.
    pub errors: BTreeMap<String, u64>,
    /// Close code (`none`: no close frame) → count, closes the client did
    /// not start.
    pub closes: BTreeMap<String, u64>,
    /// The first integrity failures, described.
    pub failures: Vec<String>,
    /// The hub's own counters (`GET /metrics`, `*_total`/`*_sum`/`*_count`)
    /// that changed during the run: end minus start. Empty when the hub
    /// has no such endpoint.
    #[serde(default)]
    pub hub_counters: BTreeMap<String, f64>,
    pub timeline: Vec<TimelinePoint>,
    /// No chain break and no checksum mismatch.
    pub integrity_ok: bool,
    /// What the numbers mean where it is not obvious.
    pub notes: Vec<String>,
    /// The orders scenario's rates and counts (its latencies are in
    /// `latency_us`); absent for the WebSocket scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<OrderFlowResult>,
}

/// The parts of a run that are not in the stats.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub scenario: String,
    pub url: String,
    pub started_unix_ms: u64,
    pub elapsed_s: f64,
    pub options: serde_json::Value,
    pub connections: ConnectionSummary,
    pub hub_counters: BTreeMap<String, f64>,
}

impl RunResult {
    /// Assembles the result from the run's totals, its rare events and
    /// timeline.
    pub fn build(
        facts: RunFacts,
        totals: &Shard,
        events: &Events,
        timeline: Vec<TimelinePoint>,
    ) -> RunResult {
        let c = &totals.counters;
        let mut latency_us = BTreeMap::new();
        let mut latency_spectrum_us = BTreeMap::new();
        for class in LatencyClass::ALL {
            let h = &totals.latency[class as usize];
            if !h.is_empty() {
                latency_us.insert(class.name().to_string(), Percentiles::of(h));
                latency_spectrum_us.insert(class.name().to_string(), spectrum(h));
            }
        }
        let secs = facts.elapsed_s.max(1e-3);
        let peak = |f: fn(&TimelinePoint) -> f64| timeline.iter().map(f).fold(0.0, f64::max);
        let throughput = Throughput {
            messages: c.get(Counter::Messages),
            bytes: c.get(Counter::Bytes),
            msgs_per_s: c.get(Counter::Messages) as f64 / secs,
            bytes_per_s: c.get(Counter::Bytes) as f64 / secs,
            peak_msgs_per_s: peak(|p| p.msgs_per_s),
            peak_bytes_per_s: peak(|p| p.bytes_per_s),
        };
        let integrity_ok =
            c.get(Counter::ChainFailures) == 0 && c.get(Counter::ChecksumFailures) == 0;
        RunResult {
            version: RESULT_VERSION,
            notes: notes(c, &facts),
            scenario: facts.scenario,
            url: facts.url,
            started_unix_ms: facts.started_unix_ms,
            elapsed_s: facts.elapsed_s,
            options: facts.options,
            connections: facts.connections,
            connect_time_us: Percentiles::of(&events.connect_time),
            subscribe_rtt_us: Percentiles::of(&events.subscribe_rtt),
            latency_us,
            latency_spectrum_us,
            throughput,
            counters: c.to_map(),
            errors: events.errors.clone(),
            closes: events.closes.clone(),
            failures: events.failures.clone(),
            hub_counters: facts.hub_counters,
            timeline,
            integrity_ok,
            orders: None,
        }
    }

    /// A counter by its result.json name (0 if absent).
    pub fn counter(&self, c: Counter) -> u64 {
        self.counters.get(c.name()).copied().unwrap_or(0)
    }
}

/// Plain-language remarks on counters whose meaning is easy to misread.
fn notes(c: &CounterSet, facts: &RunFacts) -> Vec<String> {
    let mut notes = Vec::new();
    let n = c.get(Counter::FirstPrevSeqNotZero);
    if n > 0 {
        notes.push(format!(
            "{n} fresh subscriptions began with prev_seq != 0 (docs/PROTOCOL.md: 0 for the first \
             message); not counted as chain failures, since nothing the client held was skipped"
        ));
    }
    let n = c.get(Counter::BeforeSubscribed);
    if n > 0 {
        notes.push(format!(
            "{n} channel messages arrived before their subscribed reply (docs/PROTOCOL.md: subscribed first)"
        ));
    }
    if facts.connections.verify_clients == 0 {
        notes.push(
            "no client verified checksums (--verify-fraction 0, or GET /markets failed)".into(),
        );
    } else if c.get(Counter::ChecksumChecked) == 0 {
        notes
            .push("verifying clients saw no book or depth message: no checksum was checked".into());
    }
    let stale = c.get(Counter::StaleMessages);
    if stale > 0 {
        notes.push(format!(
            "{stale} state/replayed messages (ingested before their subscribe) are not in the latency histograms"
        ));
    }
    notes
}
