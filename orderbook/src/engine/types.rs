//! The engine's vocabulary: orders in, events out.

use crate::{BookDelta, Price, Qty, Side};
use serde::{Deserialize, Serialize};

/// Venue-wide unique order id, assigned by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

/// The account that owns an order (a user or a simulated participant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    Limit,
    Market,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TimeInForce {
    /// Rests until filled or cancelled.
    #[default]
    Gtc,
    /// Fills what it can at once; the rest is cancelled.
    Ioc,
    /// Fills completely at once or not at all (no trades, cancelled).
    Fok,
}

/// An order as submitted. `price` is required for `Limit` and ignored for
/// `Market` (a market order never rests; it behaves as IOC without a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Price>,
    pub qty: Qty,
    pub time_in_force: TimeInForce,
    /// Refused (`Rejected(PostOnlyWouldTrade)`) if any part would trade on entry.
    pub post_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

impl OrderStatus {
    /// Filled, cancelled and rejected orders never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Rejected
        )
    }
}

/// Why an order was rejected or cancelled by the engine itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderReason {
    /// Cancelled by its owner.
    UserCancel,
    /// IOC or market remainder that could not trade at once.
    NotFilledImmediately,
    /// FOK order the book could not fill completely.
    FillOrKillUnfillable,
    /// Post-only order that would have traded.
    PostOnlyWouldTrade,
    /// Resting order cancelled because an order of the same account would
    /// have traded against it (self-trade prevention: cancel the maker).
    SelfTradePrevented,
    /// Zero quantity, or a limit order without a price, or a duplicate id.
    Invalid,
}

/// The new state of one order after a `submit` or `cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub status: OrderStatus,
    /// Total filled so far.
    pub filled_qty: Qty,
    /// Still resting on the book (zero once final).
    pub leaves_qty: Qty,
    pub reason: Option<OrderReason>,
}

/// One execution between a resting maker and an incoming taker, at the
/// maker's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Engine-wide, strictly increasing from 1.
    pub trade_id: u64,
    pub price: Price,
    pub qty: Qty,
    /// The taker's side (the trade's aggressor side).
    pub taker_side: Side,
    pub maker_order: OrderId,
    pub maker_account: AccountId,
    pub taker_order: OrderId,
    pub taker_account: AccountId,
}

/// What one engine call caused. Reuse one value across calls (call
/// [`EngineEvents::clear`]) to keep the hot path free of allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineEvents {
    pub trades: Vec<Trade>,
    /// One per changed level, absolute quantity, each price at most once per side.
    pub deltas: Vec<BookDelta>,
    /// Taker's update last; makers' updates in the order they traded.
    pub updates: Vec<OrderUpdate>,
}

impl EngineEvents {
    pub fn clear(&mut self) {
        self.trades.clear();
        self.deltas.clear();
        self.updates.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.trades.is_empty() && self.deltas.is_empty() && self.updates.is_empty()
    }
}

/// A resting order as the engine holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestingOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub price: Price,
    pub original_qty: Qty,
    pub leaves_qty: Qty,
}

/// What filling `qty` against the book right now would take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillEstimate {
    /// How much of the quantity the book can fill (≤ the asked quantity).
    pub fillable_qty: Qty,
    /// Σ price_raw × qty_raw over the levels it would take, at scale
    /// `price_scale + qty_scale`: the exact quote notional.
    pub notional_raw: u128,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("order not found or no longer open")]
    NotOpen,
}
