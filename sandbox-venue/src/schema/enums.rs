//! The contract's enums and their one-to-one mapping onto the engine's
//! types (`orderbook::Side`, `orderbook::engine::{OrderType, TimeInForce,
//! OrderStatus}`). The variant lists mirror the engine's on purpose: the
//! GraphQL names are the contract's, and `#[graphql(remote = ..)]` derives
//! the `From` conversions both ways, so a variant added on one side only
//! fails to compile.

use async_graphql::Enum;
use orderbook::engine;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "orderbook::Side")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "orderbook::engine::OrderType")]
pub enum OrderType {
    Limit,
    Market,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[graphql(remote = "orderbook::engine::TimeInForce")]
pub enum TimeInForce {
    #[default]
    Gtc,
    Ioc,
    Fok,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "orderbook::engine::OrderStatus")]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookEventKind {
    /// The whole book; the first event of every subscription.
    Snapshot,
    /// Absolute quantities of changed levels; qty 0 deletes the level.
    Delta,
}

/// The contract's snake_case spelling of why the venue ended an order.
pub fn reason_name(reason: engine::OrderReason) -> &'static str {
    match reason {
        engine::OrderReason::UserCancel => "user_cancel",
        engine::OrderReason::NotFilledImmediately => "not_filled_immediately",
        engine::OrderReason::FillOrKillUnfillable => "fill_or_kill_unfillable",
        engine::OrderReason::PostOnlyWouldTrade => "post_only_would_trade",
        engine::OrderReason::SelfTradePrevented => "self_trade_prevented",
        engine::OrderReason::Invalid => "invalid",
    }
}
