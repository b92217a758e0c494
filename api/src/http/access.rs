//! One access-log line and two metrics per HTTP request (docs/OPERATIONS.md,
//! "Logs" and "Metrics").
//!
//! Every request runs inside a `request` span carrying `request_id` (and
//! `user_id` once a bearer token has been verified, [`record_user`]), so
//! every line logged while handling it carries them too. When the
//! response is ready, the line `target = "nax::access"` gives the method,
//! the route template (never the raw path: ids stay out of labels and
//! logs), the status, the body size and the latency, and the request is
//! counted in [`REQUESTS_TOTAL`] and timed in [`REQUEST_DURATION_SECONDS`]
//! by method, route and status. A request slower than the slow threshold
//! ([`set_slow_after`], `http.slow_request_ms`) also counts in
//! [`SLOW_REQUESTS_TOTAL`]: slow / all over 1 % is p99 over the threshold,
//! which is how the REST latency alarm reads it (a ratio of two counters
//! sums exactly across tasks, where per-task percentiles would not).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Counter: HTTP requests answered; labels `method`, `route`, `status`.
pub const REQUESTS_TOTAL: &str = "nax_http_requests_total";
/// Histogram: seconds from a request's arrival to its response head;
/// labels `method`, `route`, `status`.
pub const REQUEST_DURATION_SECONDS: &str = "nax_http_request_duration_seconds";
/// Buckets of [`REQUEST_DURATION_SECONDS`]: 1 ms to 10 s.
pub const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Counter: HTTP requests answered later than the slow threshold.
pub const SLOW_REQUESTS_TOTAL: &str = "nax_http_slow_requests_total";
/// The slow threshold in microseconds (default 500 ms).
static SLOW_AFTER_MICROS: AtomicU64 = AtomicU64::new(500_000);

/// Sets the slow threshold for the process (`http.slow_request_ms`).
pub fn set_slow_after(threshold: Duration) {
    SLOW_AFTER_MICROS.store(threshold.as_micros() as u64, Ordering::Relaxed);
}

/// The `route` label of a request no route matched (its path is not used:
/// a client could make any number of them).
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// Target of the access-log lines.
pub const TARGET: &str = "nax::access";

/// Routes polled by load balancers and scrapers: logged at DEBUG so they
/// do not drown the requests that matter; still counted and timed.
const PROBES: [&str; 3] = ["/health", "/ready", "/metrics"];

/// Records the authenticated user on the current request's span, so the
/// access line and every line logged after it carry `user_id` (an opaque
/// id, never an email or a token).
pub fn record_user(user_id: &str) {
    tracing::Span::current().record("user_id", user_id);
}

/// Makes `span` a child of the caller's trace when the request carries a
/// W3C `traceparent` (and `tracestate`); without an OTLP exporter the
/// propagator is a no-op and this does nothing.
fn join_callers_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    crate::events::trace::join_from(span, &Headers(headers));
}

/// Middleware: the request's span, then its access line and metrics.
/// Install inside [`super::request_id::middleware`] (it reads the id).
pub async fn middleware(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %super::request_id::current(),
        user_id = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
    );
    join_callers_trace(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION_SECONDS, &labels).record(latency.as_secs_f64());
    if latency.as_micros() as u64 > SLOW_AFTER_MICROS.load(Ordering::Relaxed) {
        metrics::counter!(SLOW_REQUESTS_TOTAL).increment(1);
    }
    let bytes = response.body().size_hint().exact();
    let latency_ms = latency.as_secs_f64() * 1e3;
    let _entered = span.enter();
    if PROBES.contains(&route.as_str()) {
        tracing::debug!(target: TARGET, method = %method, route, status, bytes, latency_ms, "request");
    } else {
        tracing::info!(target: TARGET, method = %method, route, status, bytes, latency_ms, "request");
    }
    response
}
