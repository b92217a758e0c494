//! The W3C trace context of the current span, for calls that leave the
//! process (the venue's GraphQL requests here, events in `api`), so the
//! other side joins the trace (docs/OPERATIONS.md, "Traces"). Without an
//! OTLP exporter the global propagator is a no-op and this is `None`.
//! [`TracedVenue`] puts every venue call in a span of its own.

use std::collections::HashMap;

use async_trait::async_trait;
use orderbook::MarketSpec;
use tracing::{info_span, Instrument as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::event::MarketStream;
use crate::venue::{
    AssetSpec, Balance, MarketFeed, OrderReport, PlaceOrder, UserEvent, Venue, VenueError,
};

/// The header and message-attribute name of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's `traceparent`, when a trace is being exported.
pub fn current() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// A [`Venue`] whose every call runs in a span named after it
/// (`venue.place_order`, `venue.cancel_order`, `venue.order`,
/// `venue.orders`, `venue.balances`, `venue.credit`, `venue.debit`,
/// `venue.subscribe`, `venue.user_events`), a child of the caller's span,
/// so a trace shows each venue call and its time (docs/OPERATIONS.md,
/// "Traces"). The GraphQL venue's requests made inside such a span carry
/// its `traceparent` ([`current`]). Each attempt of a retried call is a
/// span of its own.
pub struct TracedVenue(pub std::sync::Arc<dyn Venue>);

#[async_trait]
impl MarketFeed for TracedVenue {
    fn markets(&self) -> Vec<MarketSpec> {
        self.0.markets()
    }

    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        self.0
            .subscribe()
            .instrument(info_span!("venue.subscribe"))
            .await
    }

    fn problem(&self) -> Option<String> {
        self.0.problem()
    }
}

#[async_trait]
impl Venue for TracedVenue {
    fn assets(&self) -> Vec<AssetSpec> {
        self.0.assets()
    }

    async fn place_order(&self, order: PlaceOrder) -> Result<OrderReport, VenueError> {
        let span = info_span!("venue.place_order", pair = %order.pair);
        self.0.place_order(order).instrument(span).await
    }

    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        let span = info_span!("venue.cancel_order", order_id);
        self.0.cancel_order(user, order_id).instrument(span).await
    }

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        let span = info_span!("venue.order", order_id);
        self.0.order(user, order_id).instrument(span).await
    }

    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError> {
        self.0
            .orders(user)
            .instrument(info_span!("venue.orders"))
            .await
    }

    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        self.0
            .balances(user)
            .instrument(info_span!("venue.balances"))
            .await
    }

    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        let span = info_span!("venue.credit", asset);
        self.0.credit(user, asset, amount).instrument(span).await
    }

    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        let span = info_span!("venue.debit", asset);
        self.0.debit(user, asset, amount).instrument(span).await
    }

    async fn user_events(
        &self,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        self.0
            .user_events()
            .instrument(info_span!("venue.user_events"))
            .await
    }
}
