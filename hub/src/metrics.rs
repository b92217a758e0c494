//! The hub's Prometheus metrics: their names, their descriptions, and the
//! one process-wide recorder that collects them.
//!
//! Code anywhere in the hub records with the `metrics` crate's macros and the
//! names below (`metrics::counter!(metrics::UPSTREAM_EVENTS_TOTAL)` from other
//! modules; inside this file the crate is `::metrics`). [`install`] must run
//! first, once per process (repeat calls are free); until then recordings are
//! dropped. The hot path's writes are counted apart, in atomics ([`Tally`]),
//! and need no recorder. The text exposition comes from [`render`], and
//! [`upkeep`] keeps histogram memory bounded.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::shutdown::Shutdown;

mod written;
pub use written::Tally;

/// The metrics [`render`] writes itself, from [`Tally`]'s totals, not
/// through the recorder.
pub const RENDERED: [&str; 3] = [
    MESSAGES_OUT_TOTAL,
    BYTES_OUT_TOTAL,
    PUBLISH_TO_WRITE_SECONDS,
];

/// Gauge: open WebSocket connections.
pub const CONNECTIONS: &str = "nax_connections";
/// Gauge: channel subscriptions across all connections.
pub const SUBSCRIPTIONS: &str = "nax_subscriptions";
/// Counter: messages written to clients (kept by [`Tally`], not the
/// recorder, as are the other two of [`RENDERED`]).
pub const MESSAGES_OUT_TOTAL: &str = "nax_messages_out_total";
/// Counter: bytes written to clients.
pub const BYTES_OUT_TOTAL: &str = "nax_bytes_out_total";
/// Counter: times a slow client's queued book updates were conflated.
pub const SLOW_CONSUMER_CONFLATIONS_TOTAL: &str = "nax_slow_consumer_conflations_total";
/// Counter: connections closed because the client could not keep up.
pub const SLOW_CONSUMER_CLOSES_TOTAL: &str = "nax_slow_consumer_closes_total";
/// Counter: connections with a private subscription closed (4008)
/// because this node lost private updates (its backplane listener fell
/// behind the stream's trimming).
pub const PRIVATE_LOST_CLOSES_TOTAL: &str = "nax_private_lost_closes_total";
/// Histogram: seconds from publishing an event to writing it to a socket.
pub const PUBLISH_TO_WRITE_SECONDS: &str = "nax_publish_to_write_seconds";
/// Counter: WebSocket upgrades refused by a connection limit (the
/// address's or the node's; not the 503s answered while shutting down).
pub const CONNECTIONS_REJECTED_TOTAL: &str = "nax_connections_rejected_total";
/// Counter: events received from the venue; label [`LABEL_PAIR`].
pub const UPSTREAM_EVENTS_TOTAL: &str = "nax_upstream_events_total";
/// Counter: book resynchronisations; labels [`LABEL_PAIR`], [`LABEL_REASON`].
pub const RESYNCS_TOTAL: &str = "nax_resyncs_total";
/// Counter: times a pair's upstream went silent past `stale_after_ms`;
/// label [`LABEL_PAIR`].
pub const STALE_FEEDS_TOTAL: &str = "nax_stale_feeds_total";
/// Counter: upstream market streams that ended and were subscribed again.
pub const UPSTREAM_RESUBSCRIBES_TOTAL: &str = "nax_upstream_resubscribes_total";
/// Counters copied from the Shift adapter ([`crate::shift_stats`]), label
/// [`LABEL_VENUE`]: sequence gaps it detected, pair subscriptions it
/// restarted, market connections it re-established, resync snapshots it
/// sent because the hub was behind, and market streams ended by a new
/// venue epoch.
pub const SHIFT_GAPS_TOTAL: &str = "nax_shift_gaps_total";
pub const SHIFT_RESUBSCRIPTIONS_TOTAL: &str = "nax_shift_resubscriptions_total";
pub const SHIFT_RECONNECTS_TOTAL: &str = "nax_shift_reconnects_total";
pub const SHIFT_SLOW_RECEIVER_RESYNCS_TOTAL: &str = "nax_shift_slow_receiver_resyncs_total";
pub const SHIFT_EPOCH_CHANGES_TOTAL: &str = "nax_shift_epoch_changes_total";
/// Gauge: 1 while the Shift adapter's market connection is lost and not
/// yet re-established; label [`LABEL_VENUE`].
pub const SHIFT_MARKET_DOWN: &str = "nax_shift_market_down";
/// The label naming a venue (`venue` for the one of `[venue]`, else its
/// `[[venues]]` name).
pub const LABEL_VENUE: &str = "venue";
/// Counter: trades and closed candles not written to the market archive
/// because its writer's queue was full (the archive was down too long)
/// or the archive refused the batch (an error other than unavailable).
pub const ARCHIVE_DROPPED_TOTAL: &str = "nax_archive_dropped_total";

/// Counter: live trades not applied to the candles, the recent trades and
/// the archive because the rebuild at start already read them from the
/// (shared) market archive.
pub const TRADES_ALREADY_RESTORED_TOTAL: &str = "nax_trades_already_restored_total";

/// Counter: trades kept out of the candles because their `venue_ts` was
/// more than a minute ahead of the pair's venue-time estimate.
pub const TRADES_FUTURE_TOTAL: &str = "nax_trades_future_total";

/// Gauge: open TCP connections of the HTTP server (WebSocket ones
/// included, from accept to close).
pub const HTTP_CONNECTIONS: &str = "nax_http_connections";
/// Counter: connections closed at accept because their peer address had
/// `http.max_connections_per_ip` open; label [`LABEL_REASON`] (`per_ip`).
pub const HTTP_CONNECTIONS_REFUSED_TOTAL: &str = "nax_http_connections_refused_total";
/// Counter: connections closed for silence; label [`LABEL_PHASE`]
/// (`head`: no complete request head in time; `idle`: kept alive with no
/// next request).
pub const HTTP_TIMEOUTS_TOTAL: &str = "nax_http_timeouts_total";
/// Counter: `accept` failures other than a connection that went away
/// before it was accepted (e.g. out of file descriptors).
pub const HTTP_ACCEPT_ERRORS_TOTAL: &str = "nax_http_accept_errors_total";

/// Label: the trading pair, e.g. `BTC-USD`.
pub const LABEL_PAIR: &str = "pair";
/// Label: why something happened, e.g. `sequence_gap`.
pub const LABEL_REASON: &str = "reason";
/// Label: what a connection was waiting for, e.g. `head`.
pub const LABEL_PHASE: &str = "phase";

/// Buckets of [`PUBLISH_TO_WRITE_SECONDS`]: 1 µs to 100 ms, 1-2.5-5 steps.
pub const PUBLISH_TO_WRITE_BUCKETS: [f64; 16] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
];

/// How often [`upkeep`] drains histogram samples, unless told otherwise.
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    /// The exporter rejected the histogram configuration.
    #[error("building the Prometheus recorder: {0}")]
    Build(String),
    /// Another (non-hub) recorder already owns the process-wide slot.
    #[error("a different metrics recorder is already installed in this process")]
    RecorderTaken,
}

/// The installation result, shared by every caller in the process.
static INSTALLED: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();

/// Installs the Prometheus recorder as the process-wide `metrics` recorder
/// and describes every hub metric; returns the handle used to render them.
///
/// Idempotent and thread-safe: the first call installs, later calls (e.g.
/// from several tests in one process) return the same handle or the same
/// error.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    INSTALLED.get_or_init(install_once).clone()
}

fn install_once() -> Result<PrometheusHandle, MetricsError> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(api::http::access::REQUEST_DURATION_SECONDS.to_owned()),
            &api::http::access::REQUEST_DURATION_BUCKETS,
        )
        .map_err(|e| MetricsError::Build(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderTaken)?;
    describe_all();
    Ok(handle)
}

/// Registers help text and units with the installed recorder.
fn describe_all() {
    describe_counter!(
        api::http::access::REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests answered, by method, route template and status."
    );
    describe_counter!(
        api::http::access::SLOW_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests answered later than http.slow_request_ms."
    );
    describe_counter!(
        api::events::relay::DOMAIN_EVENTS_TOTAL,
        Unit::Count,
        "Domain events committed, by type (and status for deposits, withdrawals and KYC)."
    );
    describe_counter!(
        api::webhooks::VERIFICATION_FAILURES_TOTAL,
        Unit::Count,
        "Webhooks refused for a missing or bad signature, by provider."
    );
    describe_counter!(
        api::store::embedded::BATCHES_TOTAL,
        Unit::Count,
        "Embedded store: batches committed (group commit)."
    );
    describe_counter!(
        api::store::embedded::SYNCS_TOTAL,
        Unit::Count,
        "Embedded store: fsyncs that made batches durable, one per group (per 32 MiB record of a larger one)."
    );
    // Exported from the start (at 0): the latency alarm divides by it.
    ::metrics::counter!(api::http::access::SLOW_REQUESTS_TOTAL).increment(0);
    describe_histogram!(
        api::http::access::REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from an HTTP request's arrival to its response head, by method, route template and status."
    );
    describe_gauge!(CONNECTIONS, Unit::Count, "Open WebSocket connections.");
    describe_gauge!(
        SUBSCRIPTIONS,
        Unit::Count,
        "Channel subscriptions across all connections."
    );
    describe_counter!(
        TRADES_ALREADY_RESTORED_TOTAL,
        Unit::Count,
        "Live trades skipped because the rebuild from the archive already counted them."
    );
    describe_counter!(
        TRADES_FUTURE_TOTAL,
        Unit::Count,
        "Trades kept out of the candles: venue_ts more than a minute ahead of venue time."
    );
    describe_counter!(
        ARCHIVE_DROPPED_TOTAL,
        Unit::Count,
        "Trades and closed candles dropped before the market archive."
    );
    describe_counter!(
        SLOW_CONSUMER_CONFLATIONS_TOTAL,
        Unit::Count,
        "Times a slow client's queued book updates were conflated."
    );
    describe_counter!(
        SLOW_CONSUMER_CLOSES_TOTAL,
        Unit::Count,
        "Connections closed because the client could not keep up."
    );
    describe_counter!(
        PRIVATE_LOST_CLOSES_TOTAL,
        Unit::Count,
        "Connections with a private subscription closed because this node lost private updates."
    );
    describe_counter!(
        CONNECTIONS_REJECTED_TOTAL,
        Unit::Count,
        "WebSocket upgrades refused."
    );
    describe_counter!(
        UPSTREAM_EVENTS_TOTAL,
        Unit::Count,
        "Events received from the venue, by pair."
    );
    describe_counter!(
        RESYNCS_TOTAL,
        Unit::Count,
        "Order-book resynchronisations, by pair and reason."
    );
    describe_counter!(
        STALE_FEEDS_TOTAL,
        Unit::Count,
        "Times a pair's upstream feed went silent past stale_after_ms."
    );
    describe_counter!(
        UPSTREAM_RESUBSCRIBES_TOTAL,
        Unit::Count,
        "Upstream market streams that ended and were subscribed again."
    );
    for (name, what) in [
        (
            SHIFT_GAPS_TOTAL,
            "Sequence gaps the Shift adapter detected, by venue.",
        ),
        (
            SHIFT_RESUBSCRIPTIONS_TOTAL,
            "Pair subscriptions the Shift adapter restarted, by venue.",
        ),
        (
            SHIFT_RECONNECTS_TOTAL,
            "Market connections the Shift adapter re-established, by venue.",
        ),
        (
            SHIFT_SLOW_RECEIVER_RESYNCS_TOTAL,
            "Resync snapshots the Shift adapter sent because the hub was behind, by venue.",
        ),
        (
            SHIFT_EPOCH_CHANGES_TOTAL,
            "Market streams ended by a new venue epoch, by venue.",
        ),
    ] {
        describe_counter!(name, Unit::Count, what);
    }
    describe_gauge!(
        SHIFT_MARKET_DOWN,
        Unit::Count,
        "1 while the Shift adapter's market connection is lost, by venue."
    );
    describe_gauge!(
        HTTP_CONNECTIONS,
        Unit::Count,
        "Open TCP connections of the HTTP server, WebSocket ones included."
    );
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED_TOTAL,
        Unit::Count,
        "Connections closed at accept, by reason (per_ip: the peer address's cap)."
    );
    describe_counter!(
        HTTP_TIMEOUTS_TOTAL,
        Unit::Count,
        "Connections closed for silence, by phase (head, idle)."
    );
    describe_counter!(
        HTTP_ACCEPT_ERRORS_TOTAL,
        Unit::Count,
        "Failed accepts (e.g. out of file descriptors)."
    );
}

/// The current values in the Prometheus text exposition format, for the
/// `/metrics` endpoint: the recorder's, then the hot path's own
/// ([`RENDERED`], from [`Tally`]'s totals).
pub fn render(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    written::render(&mut text);
    text
}

/// Drains histogram samples into their buckets every `every` until
/// `shutdown` triggers; without it, histogram memory grows between scrapes.
/// Spawn it once next to [`install`].
pub async fn upkeep(handle: PrometheusHandle, every: Duration, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => handle.run_upkeep(),
            () = shutdown.triggered() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::counter;

    #[test]
    fn install_is_idempotent() {
        let first = install().unwrap();
        let second = install().unwrap();
        counter!(CONNECTIONS_REJECTED_TOTAL, "test" => "idempotent").increment(1);
        let line = "nax_connections_rejected_total{test=\"idempotent\"} 1";
        assert!(render(&first).contains(line));
        assert!(render(&second).contains(line));
    }

    #[test]
    fn counters_show_up_in_render() {
        let handle = install().unwrap();
        counter!(UPSTREAM_EVENTS_TOTAL, LABEL_PAIR => "TEST-RENDER").increment(3);
        let text = render(&handle);
        assert!(
            text.contains("nax_upstream_events_total{pair=\"TEST-RENDER\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# HELP nax_upstream_events_total Events received"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn upkeep_stops_on_shutdown() {
        let handle = install().unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(upkeep(handle, Duration::from_millis(10), shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("upkeep returned")
            .unwrap();
    }
}
