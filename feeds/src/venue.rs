//! The boundaries between NA-X Stream and an upstream exchange engine.
//!
//! [`MarketFeed`] is the market-data side (implemented by the sandbox venue,
//! the NDJSON replay and, in production, the Shift Markets adapter).
//! [`Venue`] is the trading side: orders, balances, credit/debit
//! (implemented by the sandbox venue and the Shift Markets adapter).

use crate::event::{MarketStream, Micros};
use async_trait::async_trait;
use orderbook::engine::{OrderReason, OrderStatus, OrderType, TimeInForce};
use orderbook::{MarketSpec, Price, Qty, Side};
use thiserror::Error;

/// A user as the venue knows them (the API's user id).
pub type UserId = String;

/// Errors a venue or feed call can return. `Unavailable` is the only one
/// worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VenueError {
    #[error("unknown pair {0}")]
    UnknownPair(String),
    #[error("unknown asset {0}")]
    UnknownAsset(String),
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("order not found")]
    OrderNotFound,
    #[error("order is not open")]
    OrderNotOpen,
    #[error("amount must be positive and fit the asset's scale: {0}")]
    InvalidAmount(String),
    /// The venue halted trading in the pair (see `TradingStatus`): new
    /// orders are refused until it resumes; cancels still work.
    #[error("trading in {pair} is halted: {reason}")]
    MarketHalted { pair: String, reason: String },
    #[error("venue unavailable: {0}")]
    Unavailable(String),
    /// One venue of several ([`crate::MultiVenue`]) is unavailable: its
    /// own breaker and timeouts protect it, so a caller's breaker over
    /// all of them must not count this (the others still work).
    #[error("venue {venue} unavailable: {reason}")]
    PartUnavailable { venue: String, reason: String },
}

/// A user's order request, already parsed into the pair's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub user: UserId,
    /// The caller's own id for the order, echoed in every report and fill
    /// of it (the API passes its order id, so events map back without a
    /// lookup table).
    pub client_id: Option<String>,
    pub pair: String,
    pub side: Side,
    pub order_type: OrderType,
    /// Required for limit orders.
    pub price: Option<Price>,
    pub qty: Qty,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
}

/// The venue's view of one user order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReport {
    pub order_id: String,
    /// [`PlaceOrder::client_id`], echoed.
    pub client_id: Option<String>,
    pub user: UserId,
    pub pair: String,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Price>,
    pub qty: Qty,
    pub filled_qty: Qty,
    /// Σ price × qty of the fills, raw at `price_scale + qty_scale`.
    pub filled_notional_raw: u128,
    pub status: OrderStatus,
    pub reason: Option<OrderReason>,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub created_ts: Micros,
    pub updated_ts: Micros,
}

/// One fill of a user's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub trade_id: u64,
    pub order_id: String,
    /// The order's [`PlaceOrder::client_id`], echoed.
    pub client_id: Option<String>,
    pub user: UserId,
    pub pair: String,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// True when the user's order was resting (maker).
    pub maker: bool,
    pub venue_ts: Micros,
}

/// A user's holding of one asset, raw at the asset's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub available: u64,
    pub locked: u64,
}

impl Balance {
    pub fn total(&self) -> u64 {
        self.available + self.locked
    }
}

/// An asset the venue holds balances in, with its fixed scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetSpec {
    pub symbol: String,
    pub scale: u8,
}

/// What happened to a user, in the order it happened: the source of the
/// hub's private `orders` and `balances` channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    Order(OrderReport),
    Fill(Fill),
    Balance {
        user: UserId,
        asset: String,
        balance: Balance,
        venue_ts: Micros,
    },
}

/// The market-data side of an upstream.
#[async_trait]
pub trait MarketFeed: Send + Sync {
    /// The pairs this feed streams.
    fn markets(&self) -> Vec<MarketSpec>;

    /// Starts a stream of every pair: per pair a snapshot, then deltas and
    /// trades. Lossless while the receiver keeps up; a receiver that falls
    /// behind gets a `Resync` snapshot instead of the events it missed.
    async fn subscribe(&self) -> Result<MarketStream, VenueError>;

    /// Why the feed cannot be relied on right now (e.g. its connection is
    /// lost and reconnecting), for readiness checks; `None` when healthy.
    /// In-process feeds are always healthy.
    fn problem(&self) -> Option<String> {
        None
    }
}

/// The trading side of an upstream.
#[async_trait]
pub trait Venue: MarketFeed {
    fn assets(&self) -> Vec<AssetSpec>;

    /// Checks and locks funds, then matches. The report is the order's
    /// state after matching (filled, resting, cancelled or rejected).
    async fn place_order(&self, order: PlaceOrder) -> Result<OrderReport, VenueError>;

    /// Cancels an open order of `user`; another user's order is `OrderNotFound`.
    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError>;

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError>;

    /// Every order of `user` the venue knows, newest first.
    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError>;

    /// Every asset of the venue with `user`'s balance (zero if none).
    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError>;

    /// Adds `amount` (raw at the asset's scale) to `user`'s available balance.
    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError>;

    /// Removes `amount` from `user`'s available balance, or
    /// `InsufficientFunds` and nothing changes.
    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError>;

    /// Every user event from now on, in order. Unbounded: user events are
    /// rare next to market data (one per order change, fill or balance
    /// change) and must never be dropped; the hub drains it continuously.
    async fn user_events(
        &self,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<UserEvent>, VenueError>;
}
