//! The Shift Markets adapter: [`ShiftVenue`] implements [`Venue`] and
//! [`MarketFeed`] over the GraphQL contract in `schema.graphql` — queries
//! and mutations as HTTP POSTs with a bearer token, each through a circuit
//! breaker; market data and user events as `graphql-transport-ws`
//! subscriptions that reconnect with jittered exponential backoff and
//! resubscribe a pair whose sequence has a gap.
//!
//! Everything that knows the protocol lives in this module: swapping in
//! Shift's real schema changes `wire.rs` (documents and shapes),
//! `convert.rs` (mapping) and perhaps `ws.rs`, and nothing outside it.

mod backoff;
mod config;
mod convert;
mod http;
mod market_data;
mod sequence;
mod stats;
mod user;
mod wire;
mod ws;

pub use config::{BreakerPolicy, ShiftConfig, ShiftToken};
pub use stats::ShiftStats;
pub use wire::UPSTREAM_BOUNDS;
/// The market-data subscription documents (for recording frames:
/// `benches/examples/record_shift.rs`).
pub use wire::{BOOK_UPDATES, TRADES};
pub use ws::{parse_frame, Frame, FrameError};

use crate::event::MarketStream;
use crate::resilience::{CallError, Idempotency};
use crate::venue::{
    AssetSpec, Balance, MarketFeed, OrderReport, PlaceOrder, UserEvent, Venue, VenueError,
};
use async_trait::async_trait;
use convert::{Catalog, DecodeError};
use http::{CallFailure, GraphqlHttp};
use market_data::MarketSession;
use orderbook::MarketSpec;
use serde_json::json;
use stats::StreamCounters;
use std::sync::Arc;
use tokio::sync::mpsc;
use user::UserSession;
use wire::{WireBalance, WireCatalog, WireOrder, WireUserBalances};
use ws::WsSettings;

/// Why [`ShiftVenue::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid Shift configuration: {0}")]
    Config(String),
    #[error("Shift endpoint {endpoint} unreachable: {cause}")]
    Unreachable { endpoint: String, cause: String },
    #[error("Shift refused the adapter's token (UNAUTHENTICATED); check the configured token")]
    TokenRefused,
    #[error("Shift answered the start-up query with an error: {0}")]
    Upstream(String),
    #[error("Shift's markets or assets are unusable: {0}")]
    Catalog(String),
}

struct Inner {
    http: GraphqlHttp,
    catalog: Arc<Catalog>,
    ws: WsSettings,
    counters: Arc<StreamCounters>,
    stream_capacity: usize,
}

/// The production venue: Shift Markets over GraphQL. Cheap to clone; every
/// clone shares the breaker, the catalog and the counters.
#[derive(Clone)]
pub struct ShiftVenue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShiftVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShiftVenue")
            .field("ws_url", &self.inner.ws.url)
            .field("markets", &self.inner.catalog.markets.len())
            .finish_non_exhaustive()
    }
}

fn decode(e: DecodeError) -> VenueError {
    VenueError::Unavailable(e.to_string())
}

impl ShiftVenue {
    /// Checks the config, then fetches the venue's markets and assets once
    /// (they are what [`MarketFeed::markets`] and [`Venue::assets`] return
    /// from then on). Fails with [`ConnectError::Unreachable`] when the
    /// endpoint does not answer and [`ConnectError::TokenRefused`] when it
    /// refuses the token; nothing is retried beyond the breaker policy.
    pub async fn connect(config: ShiftConfig) -> Result<ShiftVenue, ConnectError> {
        config.validate().map_err(ConnectError::Config)?;
        let url = config.ws_url().map_err(ConnectError::Config)?;
        let http = GraphqlHttp::new(&config).map_err(ConnectError::Config)?;
        let endpoint = config.endpoint.trim().to_string();
        let catalog: WireCatalog = http
            .call(Idempotency::Idempotent, wire::CATALOG, None, json!({}))
            .await
            .map_err(|e| match e {
                CallError::Failed(f) if f.is_unauthenticated() => ConnectError::TokenRefused,
                CallError::Failed(CallFailure::Transport(cause)) => ConnectError::Unreachable {
                    endpoint: endpoint.clone(),
                    cause,
                },
                CallError::Timeout | CallError::Open(_) => ConnectError::Unreachable {
                    endpoint: endpoint.clone(),
                    cause: format!("no answer within {} ms", config.request_timeout.as_millis()),
                },
                CallError::Failed(f) => ConnectError::Upstream(f.into_venue_error("").to_string()),
            })?;
        let catalog = Catalog::from_wire(catalog).map_err(|e| ConnectError::Catalog(e.0))?;
        tracing::info!(
            %endpoint,
            markets = catalog.markets.len(),
            assets = catalog.assets.len(),
            "connected to Shift"
        );
        Ok(ShiftVenue {
            inner: Arc::new(Inner {
                http,
                catalog: Arc::new(catalog),
                ws: WsSettings {
                    url,
                    token: config.token.clone(),
                    connect_timeout: config.request_timeout,
                    keepalive: config.keepalive,
                    backoff_min: config.backoff_min,
                    backoff_max: config.backoff_max,
                },
                counters: Arc::new(StreamCounters::default()),
                stream_capacity: config.stream_capacity,
            }),
        })
    }

    /// What the streams went through so far (gaps, reconnects, resyncs).
    pub fn stats(&self) -> ShiftStats {
        self.inner.counters.snapshot()
    }

    /// True while the market connection is lost and not yet
    /// re-established.
    pub fn market_down(&self) -> bool {
        self.inner.counters.market_down()
    }

    /// True while queries and mutations fail fast.
    pub fn breaker_open(&self) -> bool {
        self.inner.http.breaker_open()
    }

    fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    async fn order_call(
        &self,
        idempotency: Idempotency,
        document: &str,
        field: &str,
        variables: serde_json::Value,
        subject: &str,
    ) -> Result<OrderReport, VenueError> {
        let order: WireOrder = self
            .inner
            .http
            .request(idempotency, document, field, variables, subject)
            .await?;
        self.catalog().order_report(&order).map_err(decode)
    }

    async fn balance_call(
        &self,
        document: &str,
        field: &str,
        user: &str,
        asset: &str,
        amount: u64,
    ) -> Result<Balance, VenueError> {
        let amount = self
            .catalog()
            .format_amount(asset, amount)
            .ok_or_else(|| VenueError::UnknownAsset(asset.to_string()))?;
        let balance: WireBalance = self
            .inner
            .http
            .request(
                Idempotency::NotIdempotent,
                document,
                field,
                json!({ "userId": user, "asset": asset, "amount": amount }),
                asset,
            )
            .await?;
        self.catalog().balance(&balance).map_err(decode)
    }
}

#[async_trait]
impl MarketFeed for ShiftVenue {
    fn markets(&self) -> Vec<MarketSpec> {
        self.catalog().markets.clone()
    }

    /// The market connection is lost (reconnecting), or the query breaker
    /// is open.
    fn problem(&self) -> Option<String> {
        if self.inner.counters.market_down() {
            Some("market stream disconnected".into())
        } else if self.breaker_open() {
            Some("venue calls failing (breaker open)".into())
        } else {
            None
        }
    }

    /// Opens one subscription connection carrying every pair's book and
    /// trades, and returns once the first snapshot names the venue's epoch
    /// (`Unavailable` if the venue cannot be reached or sends none within
    /// the request timeout).
    ///
    /// Contract of the returned stream:
    /// - per pair, a `Subscribe` snapshot first, then deltas and trade
    ///   batches each at the previous `seq` + 1;
    /// - a gap (a delta or batch that does not continue its sequence)
    ///   resubscribes that pair, and its new snapshot arrives as `Resync`;
    /// - a lost connection is reopened with jittered exponential backoff
    ///   (`backoff_min` to `backoff_max`) and every pair resubscribed; the
    ///   snapshots that follow are `Resync`. Nothing arrives meanwhile;
    /// - if the hub's receiver is full, the pair's events are dropped and
    ///   replaced by one `Resync` snapshot once there is room;
    /// - **the stream ends** (`recv` returns `None`) when the venue's epoch
    ///   is no longer the stream's (the venue restarted its numbering): the
    ///   caller subscribes again and gets a stream with the new epoch. It
    ///   also ends if the venue refuses every pair's subscription.
    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        let (session, stream) = MarketSession::open(
            self.inner.ws.clone(),
            self.catalog(),
            self.inner.counters.clone(),
            self.inner.stream_capacity,
        )
        .await?;
        tokio::spawn(session.run());
        Ok(stream)
    }
}

#[async_trait]
impl Venue for ShiftVenue {
    fn assets(&self) -> Vec<AssetSpec> {
        self.catalog().assets.clone()
    }

    /// `createOrder`: one attempt only (not idempotent), so a timeout
    /// leaves the outcome unknown; `client_id` lets the caller find the
    /// order in `orders` or the user events.
    async fn place_order(&self, order: PlaceOrder) -> Result<OrderReport, VenueError> {
        let input = self
            .catalog()
            .create_order_input(&order)
            .ok_or_else(|| VenueError::UnknownPair(order.pair.clone()))?;
        self.order_call(
            Idempotency::NotIdempotent,
            &wire::create_order(),
            "createOrder",
            json!({ "input": input }),
            &order.pair,
        )
        .await
    }

    /// `cancelOrder`, retried on failures (cancelling twice is harmless:
    /// the second answers `OrderNotOpen`).
    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.order_call(
            Idempotency::Idempotent,
            &wire::cancel_order(),
            "cancelOrder",
            json!({ "userId": user, "id": order_id }),
            "",
        )
        .await
    }

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.order_call(
            Idempotency::Idempotent,
            &wire::order(),
            "order",
            json!({ "userId": user, "id": order_id }),
            "",
        )
        .await
    }

    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError> {
        let orders: Vec<WireOrder> = self
            .inner
            .http
            .request(
                Idempotency::Idempotent,
                &wire::orders(),
                "orders",
                json!({ "userId": user }),
                "",
            )
            .await?;
        orders
            .iter()
            .map(|o| self.catalog().order_report(o).map_err(decode))
            .collect()
    }

    /// Every asset of the catalog, in its order, with the user's balance
    /// (zero for an asset the venue did not list).
    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        let listed: WireUserBalances = self
            .inner
            .http
            .request(
                Idempotency::Idempotent,
                wire::BALANCES,
                "user",
                json!({ "userId": user }),
                "",
            )
            .await?;
        let catalog = self.catalog();
        catalog
            .assets
            .iter()
            .map(|a| {
                let balance = match listed.balances.iter().find(|b| b.asset == a.symbol) {
                    Some(b) => catalog.balance(b).map_err(decode)?,
                    None => Balance::default(),
                };
                Ok((a.symbol.clone(), balance))
            })
            .collect()
    }

    /// `creditBalance`: one attempt only (not idempotent).
    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.balance_call(wire::CREDIT, "creditBalance", user, asset, amount)
            .await
    }

    /// `debitBalance`: one attempt only (not idempotent).
    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.balance_call(wire::DEBIT, "debitBalance", user, asset, amount)
            .await
    }

    /// Subscribes to `userEvents` on its own connection and returns once the
    /// subscription is sent. A lost connection is reopened with jittered
    /// exponential backoff; **events the venue emitted during the outage
    /// are not replayed** (the schema has no cursor), so a consumer that
    /// must not miss state reconciles through `orders` / `balances`. The
    /// receiver ends only when dropped.
    async fn user_events(&self) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        let (session, rx) = UserSession::open(
            self.inner.ws.clone(),
            self.inner.catalog.clone(),
            self.inner.counters.clone(),
        )
        .await?;
        tokio::spawn(session.run());
        Ok(rx)
    }
}
