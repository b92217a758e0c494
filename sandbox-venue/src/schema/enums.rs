//! The contract's enums and their one-to-one mapping onto the engine's
//! types (`orderbook::Side`, `orderbook::engine::{OrderType, TimeInForce,
//! OrderStatus}`).

use async_graphql::Enum;
use orderbook::engine;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Limit,
    Market,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeInForce {
    #[default]
    Gtc,
    Ioc,
    Fok,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
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

impl From<orderbook::Side> for Side {
    fn from(side: orderbook::Side) -> Self {
        match side {
            orderbook::Side::Buy => Side::Buy,
            orderbook::Side::Sell => Side::Sell,
        }
    }
}

impl From<Side> for orderbook::Side {
    fn from(side: Side) -> Self {
        match side {
            Side::Buy => orderbook::Side::Buy,
            Side::Sell => orderbook::Side::Sell,
        }
    }
}

impl From<engine::OrderType> for OrderType {
    fn from(t: engine::OrderType) -> Self {
        match t {
            engine::OrderType::Limit => OrderType::Limit,
            engine::OrderType::Market => OrderType::Market,
        }
    }
}

impl From<OrderType> for engine::OrderType {
    fn from(t: OrderType) -> Self {
        match t {
            OrderType::Limit => engine::OrderType::Limit,
            OrderType::Market => engine::OrderType::Market,
        }
    }
}

impl From<engine::TimeInForce> for TimeInForce {
    fn from(t: engine::TimeInForce) -> Self {
        match t {
            engine::TimeInForce::Gtc => TimeInForce::Gtc,
            engine::TimeInForce::Ioc => TimeInForce::Ioc,
            engine::TimeInForce::Fok => TimeInForce::Fok,
        }
    }
}

impl From<TimeInForce> for engine::TimeInForce {
    fn from(t: TimeInForce) -> Self {
        match t {
            TimeInForce::Gtc => engine::TimeInForce::Gtc,
            TimeInForce::Ioc => engine::TimeInForce::Ioc,
            TimeInForce::Fok => engine::TimeInForce::Fok,
        }
    }
}

impl From<engine::OrderStatus> for OrderStatus {
    fn from(s: engine::OrderStatus) -> Self {
        match s {
            engine::OrderStatus::Open => OrderStatus::Open,
            engine::OrderStatus::PartiallyFilled => OrderStatus::PartiallyFilled,
            engine::OrderStatus::Filled => OrderStatus::Filled,
            engine::OrderStatus::Cancelled => OrderStatus::Cancelled,
            engine::OrderStatus::Rejected => OrderStatus::Rejected,
        }
    }
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
