//! The W3C trace context reaches the GraphQL venue: each call through
//! [`TracedVenue`] runs in a span named after it (`venue.place_order`,
//! `venue.credit`, ...), and the adapter's HTTP request for it carries a
//! `traceparent` header of the caller's trace whose parent is that span
//! (docs/OPERATIONS.md, "Traces"). Between the adapter and the standalone
//! venue on 127.0.0.1 sits an HTTP proxy of the test's own that records
//! every request's headers.

use crate::shift_common;

use feeds::shift::ShiftVenue;
use feeds::trace::TracedVenue;
use feeds::venue::PlaceOrder;
use feeds::Venue;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use orderbook::engine::{OrderType, TimeInForce};
use orderbook::{Price, Qty, Side};
use shift_common::*;
use std::sync::{Arc, Mutex};
use testkit::{start_http_proxy, Rewrite, Step};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// One request through the proxy: its `traceparent` header, if any, and
/// its GraphQL body.
type Request = (Option<String>, String);

/// Each request through the proxy.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Request>>>);

impl Rewrite for Recorded {
    type Note = ();

    fn request(&self, headers: &reqwest::header::HeaderMap, body: Vec<u8>) -> Step<()> {
        let traceparent = headers
            .get("traceparent")
            .map(|v| v.to_str().expect("ASCII header").to_owned());
        let text = String::from_utf8_lossy(&body).into_owned();
        self.0.lock().unwrap().push((traceparent, text));
        Step::Forward(body, ())
    }

    fn answer(&self, _: (), _: reqwest::StatusCode, body: Vec<u8>) -> Vec<u8> {
        body
    }
}

/// The names of the spans opened in this process.
#[derive(Clone, Default)]
struct SpanNames(Arc<Mutex<Vec<&'static str>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanNames {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.lock().unwrap().push(attrs.metadata().name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_venue_call_is_a_span_whose_traceparent_reaches_the_venue() {
    // What nax-hub sets up with an OTLP endpoint (config/src/logging.rs):
    // an OpenTelemetry layer and the W3C propagator (no exporter needed).
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let names = SpanNames::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(names.clone()),
    )
    .expect("the test's subscriber");

    let server = start_venue("127.0.0.1:0".parse().unwrap(), 0).await;
    let recorded = Recorded::default();
    let proxy = start_http_proxy(
        &format!("http://{}", server.addr()),
        false,
        recorded.clone(),
    )
    .await;
    let mut shift_config = config(server.addr());
    shift_config.endpoint = format!("{proxy}/graphql");
    let venue = TracedVenue(Arc::new(
        ShiftVenue::connect(shift_config).await.expect("connects"),
    ));
    let before = recorded.0.lock().unwrap().len();
    assert!(before >= 1, "the catalog query went through the proxy");

    let caller = tracing::info_span!("caller");
    let (trace_id, caller_span) = {
        let cx = caller.context();
        let span = cx.span();
        let sc = span.span_context();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    };
    let user = "trace-user";
    async {
        venue
            .credit(user, "USD", 1_000 * 100_000_000)
            .await
            .unwrap();
        let placed = venue
            .place_order(PlaceOrder {
                user: user.into(),
                client_id: Some("trace-1".into()),
                pair: "BTC-USD".into(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                price: Some(Price(10_000)),
                qty: Qty(10_000),
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            })
            .await
            .unwrap();
        venue.order(user, &placed.order_id).await.unwrap();
        venue.orders(user).await.unwrap();
        venue.cancel_order(user, &placed.order_id).await.unwrap();
        venue.balances(user).await.unwrap();
        venue.debit(user, "USD", 100_000_000).await.unwrap();
    }
    .instrument(caller)
    .await;

    let wanted = [
        "venue.credit",
        "venue.place_order",
        "venue.order",
        "venue.orders",
        "venue.cancel_order",
        "venue.balances",
        "venue.debit",
    ];
    let opened = names.0.lock().unwrap().clone();
    for name in wanted {
        assert!(opened.contains(&name), "no {name} span: {opened:?}");
    }
    let calls = recorded.0.lock().unwrap()[before..].to_vec();
    assert!(calls.len() >= wanted.len(), "{} calls", calls.len());
    let mut parents = std::collections::HashSet::new();
    for (traceparent, body) in &calls {
        let traceparent = traceparent
            .as_deref()
            .unwrap_or_else(|| panic!("no traceparent on {body}"));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00", "W3C version: {traceparent}");
        assert_eq!(parts[1], trace_id, "the caller's trace: {traceparent}");
        assert_ne!(
            parts[2], caller_span,
            "the parent is the venue call's own span, not the caller's"
        );
        assert_eq!(parts[3], "01", "sampled: {traceparent}");
        parents.insert(parts[2].to_owned());
    }
    assert!(
        parents.len() >= wanted.len(),
        "each call its own span: {} parents for {} calls",
        parents.len(),
        wanted.len()
    );
    // The catalog query ran in no span: it carried no trace context.
    assert!(recorded.0.lock().unwrap()[..before]
        .iter()
        .all(|(traceparent, _)| traceparent.is_none()));
    server.stop().await.unwrap();
}
