//! The `orders` scenario: the REST order flow of docs/API.md under load.
//!
//! A run sets up `--users` users (register, log in, KYC, fund by a fiat
//! deposit: [`setup`]), reads the pair's scales and best bid ([`shape`]),
//! then places `--rate` orders per second for `--duration` seconds spread
//! over the users ([`flow`]): resting limit buys far from the market,
//! each cancelled later, and marketable IOC orders. Every request is timed
//! (HDR histograms per request kind) and every status counted
//! ([`record`]); the result is an ordinary [`RunResult`] with an `orders`
//! section, so the summary table, `result.json` and `report.html` work as
//! for the WebSocket scenarios.
//!
//! The hub limits each bearer token to `[api] requests_per_minute` (default
//! 600, burst 100). A user sends `60 × rate / users × (1 + resting share)`
//! requests a minute; the run says so up front and in its notes, and counts
//! every 429, so a run that needs a higher limit shows it.

pub mod flow;
pub mod options;
pub mod progress;
pub mod record;
pub mod report;
pub mod rest;
pub mod setup;
pub mod shape;
pub mod summary;

use crate::cli::Options;
use crate::client::now_micros;
use crate::result::{ConnectionSummary, RunResult, RESULT_VERSION};
use crate::stats::{spectrum, Percentiles};
use crate::target::{counter_deltas, HubTarget, TargetError};
use flow::{Dispatched, FlowEnv, Schedule};
use hdrhistogram::Histogram;
use record::{Interval, OrderRecorder, Request};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use summary::OrderFlowResult;
use tokio::sync::Semaphore;

/// Longest wait for one request's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long order tasks get after the schedule ends, on top of
/// `--rest-ms` (the last resting orders' cancels, requests in flight).
const DRAIN: Duration = Duration::from_secs(15);

/// Why an orders run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Market(String),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
}

/// Runs the orders scenario of `opts` (already validated) against the hub
/// and returns what it measured. Stops by itself: setup within
/// `--setup-timeout`, orders for `--duration` seconds, then at most
/// `--rest-ms` + [`DRAIN`] to cancel what still rests.
pub async fn run(opts: &Options) -> Result<RunResult, OrdersError> {
    let o = &opts.orders;
    let started_unix_ms = now_micros() / 1000;
    let target = HubTarget::resolve(&opts.url).await?;
    let client = rest::RestClient::new(&target.authority, REQUEST_TIMEOUT)?;
    let shape = shape::shape_orders(
        &client,
        &o.pair,
        o.order_qty.as_deref(),
        o.rest_distance_pct,
    )
    .await
    .map_err(OrdersError::Market)?;
    let budget = o.requests_per_user_minute();
    eprintln!(
        "orders: {} users at {} orders/s: each sends ~{budget:.0} requests/min; the hub's \
         [api] requests_per_minute must allow that (default 600, burst 100)",
        o.users, o.rate
    );
    let tag = format!("{:x}", now_micros());
    let accounts = setup::Accounts { tag: tag.clone() };
    let setup_started = Instant::now();
    let traders = setup::onboard(
        &client,
        &accounts,
        o.users,
        Duration::from_secs(o.setup_timeout),
    )
    .await?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    let hub_before = target.fetch_counters().await.ok();

    let recorder = Arc::new(OrderRecorder::default());
    let env = Arc::new(FlowEnv {
        client,
        shape: shape.clone(),
        recorder: recorder.clone(),
        in_flight: Arc::new(Semaphore::new(o.max_in_flight as usize)),
        rest_for: Duration::from_millis(o.rest_ms),
        tag,
    });
    let schedule = Schedule {
        rate: o.rate,
        resting_fraction: o.resting_fraction(),
        duration: Duration::from_secs(opts.duration),
    };
    let sampler = progress::OrderSampler::start(recorder, opts.duration, !opts.run.no_progress);
    let drain = Duration::from_millis(o.rest_ms) + DRAIN;
    let dispatched = flow::dispatch(env, traders, schedule, drain).await;
    let sampled = sampler.finish().await;
    let hub_counters = match (hub_before, target.fetch_counters().await) {
        (Some(before), Ok(after)) => counter_deltas(&before, &after),
        _ => BTreeMap::new(),
    };

    let totals = &sampled.totals;
    let elapsed = dispatched.elapsed_s.max(1e-3);
    let peak = sampled
        .timeline
        .iter()
        .map(|p| p.placed_per_s)
        .fold(0.0, f64::max);
    let orders = OrderFlowResult {
        pair: shape.pair.clone(),
        order_qty: shape.qty(),
        rest_price: shape.rest_price(),
        reference_price: orderbook::decimal::format_scaled(
            shape.reference_bid_raw,
            shape.price_scale,
        ),
        users: u64::from(o.users),
        setup_s,
        target_orders_per_s: o.rate,
        sent: dispatched.sent,
        sent_resting: dispatched.sent_resting,
        achieved_orders_per_s: totals.placed as f64 / elapsed,
        peak_orders_per_s: peak,
        requests_per_s: totals.requests() as f64 / elapsed,
        placed: totals.placed,
        cancelled: totals.cancelled,
        requests_per_user_minute: budget,
        statuses: totals.statuses.clone(),
        status_classes: summary::status_classes(totals),
        order_states: totals.order_states.clone(),
        timeline: sampled.timeline.clone(),
    };
    let (latency_us, latency_spectrum_us) = latencies(totals);
    Ok(RunResult {
        version: RESULT_VERSION,
        scenario: opts.scenario.name().to_string(),
        url: opts.url.clone(),
        started_unix_ms,
        elapsed_s: dispatched.elapsed_s,
        options: serde_json::to_value(opts).expect("options serialize"),
        connections: ConnectionSummary {
            target: u64::from(o.users),
            clients: u64::from(o.users),
            ..ConnectionSummary::default()
        },
        connect_time_us: Percentiles::default(),
        subscribe_rtt_us: Percentiles::default(),
        latency_us,
        latency_spectrum_us,
        throughput: Default::default(),
        counters: BTreeMap::new(),
        errors: totals.errors.clone(),
        closes: BTreeMap::new(),
        failures: Vec::new(),
        hub_counters,
        timeline: Vec::new(),
        integrity_ok: true,
        notes: notes(&orders, &dispatched, o.max_in_flight),
        orders: Some(orders),
    })
}

/// Percentiles by histogram name.
type Latencies = BTreeMap<String, Percentiles>;
/// `(quantile, µs)` points by histogram name.
type Spectra = BTreeMap<String, Vec<(f64, u64)>>;

/// Percentiles and spectra of `post_orders` (every order),
/// `post_orders_resting`, `post_orders_ioc` and `delete_orders`; empty
/// histograms are left out.
fn latencies(totals: &Interval) -> (Latencies, Spectra) {
    let all = totals.place_latency();
    let named: Vec<(&str, &Histogram<u64>)> = std::iter::once(("post_orders", &all))
        .chain(
            Request::ALL
                .iter()
                .map(|r| (r.name(), &totals.latency[*r as usize])),
        )
        .filter(|(_, h)| !h.is_empty())
        .collect();
    let percentiles = named
        .iter()
        .map(|(n, h)| (n.to_string(), Percentiles::of(h)))
        .collect();
    let spectra = named
        .iter()
        .map(|(n, h)| (n.to_string(), spectrum(h)))
        .collect();
    (percentiles, spectra)
}

/// Plain-language remarks: the rate-limit budget, 429s, a missed rate.
fn notes(o: &OrderFlowResult, d: &Dispatched, max_in_flight: u32) -> Vec<String> {
    let mut notes = vec![format!(
        "each user sent ~{:.0} requests/min (orders + cancels); the hub's [api] \
         requests_per_minute must allow that (default 600, burst 100)",
        o.requests_per_user_minute
    )];
    let limited = o.status_classes.get("429").copied().unwrap_or(0);
    if limited > 0 {
        notes.push(format!(
            "{limited} requests were rate limited (429): use more --users or start the hub \
             with a TOML holding [api] requests_per_minute = N (0: no limit)"
        ));
    }
    let offered = d.sent as f64 / d.elapsed_s.max(1e-3);
    if offered < 0.95 * o.target_orders_per_s {
        notes.push(format!(
            "only {offered:.1} of the {} orders/s scheduled were sent: all {max_in_flight} \
             in-flight slots were busy (the hub, or this harness on the same cores, could \
             not keep up)",
            o.target_orders_per_s
        ));
    }
    notes
}
