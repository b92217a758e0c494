//! The contract's output types, and how each is written from the venue's
//! own types: every price, quantity and amount is formatted at its pair's
//! or asset's scale, so a value always has exactly that many decimals.

use super::catalog::Catalog;
use super::enums::{reason_name, BookEventKind, OrderStatus, OrderType, Side, TimeInForce};
use super::scalars::{Decimal, UInt64};
use async_graphql::{SimpleObject, Union, ID};
use feeds::event::Micros;
use feeds::venue::{self, OrderReport};
use orderbook::decimal::format_scaled;
use orderbook::{MarketSpec, Price, Qty};

#[derive(SimpleObject, Debug, Clone)]
pub struct Market {
    pub pair: String,
    pub base: String,
    pub quote: String,
    pub price_scale: i32,
    pub qty_scale: i32,
    pub min_qty: Decimal,
}

impl Market {
    pub fn from_spec(spec: &MarketSpec) -> Self {
        Market {
            pair: spec.symbol.clone(),
            base: spec.base.clone(),
            quote: spec.quote.clone(),
            price_scale: i32::from(spec.price_scale),
            qty_scale: i32::from(spec.qty_scale),
            min_qty: Decimal(spec.format_qty(spec.min_qty)),
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Asset {
    pub symbol: String,
    pub scale: i32,
}

#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub price: Decimal,
    pub qty: Decimal,
}

impl Level {
    pub fn new(spec: &MarketSpec, price: Price, qty: Qty) -> Self {
        Level {
            price: Decimal(spec.format_price(price)),
            qty: Decimal(spec.format_qty(qty)),
        }
    }

    /// `levels` (best first) written at the pair's scales.
    pub fn list(spec: &MarketSpec, levels: &[(Price, Qty)]) -> Vec<Level> {
        levels
            .iter()
            .map(|&(p, q)| Level::new(spec, p, q))
            .collect()
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct OrderBook {
    pub pair: String,
    /// Changes whenever the venue's sequence numbering restarts.
    pub epoch: String,
    /// Seq of the last book change included.
    pub seq: UInt64,
    /// Seq of the last trade batch before this book.
    pub trade_seq: UInt64,
    pub venue_ts: UInt64,
    /// Best first.
    pub bids: Vec<Level>,
    /// Best first.
    pub asks: Vec<Level>,
}

/// Whether the venue lets a pair trade.
#[derive(SimpleObject, Debug, Clone)]
pub struct MarketStatus {
    pub pair: String,
    /// True while trading is halted: new orders are refused with MARKET_HALTED; cancels still work.
    pub halted: bool,
    /// Why, while halted.
    pub reason: Option<String>,
    pub venue_ts: UInt64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Balance {
    pub user_id: ID,
    pub asset: String,
    pub available: Decimal,
    pub locked: Decimal,
    pub total: Decimal,
    pub venue_ts: UInt64,
}

impl Balance {
    /// `balance` (raw at `scale`) of `user` in `asset`.
    pub fn new(
        user: &str,
        asset: &str,
        balance: venue::Balance,
        scale: u8,
        venue_ts: Micros,
    ) -> Self {
        Balance {
            user_id: ID(user.to_string()),
            asset: asset.to_string(),
            available: Decimal(format_scaled(balance.available, scale)),
            locked: Decimal(format_scaled(balance.locked, scale)),
            total: Decimal(format_scaled(balance.total(), scale)),
            venue_ts: UInt64(venue_ts),
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct User {
    pub id: ID,
    pub balances: Vec<Balance>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Order {
    pub id: ID,
    /// The caller's own id, echoed (CreateOrderInput.clientId).
    pub client_id: Option<String>,
    pub user_id: ID,
    pub pair: String,
    pub side: Side,
    #[graphql(name = "type")]
    pub order_type: OrderType,
    pub price: Option<Decimal>,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    /// Sum of price * qty of the fills, at priceScale + qtyScale decimals.
    pub filled_notional: Decimal,
    pub status: OrderStatus,
    /// Why the venue cancelled or rejected it (snake_case), if it did.
    pub reason: Option<String>,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub created_ts: UInt64,
    pub updated_ts: UInt64,
}

impl Order {
    /// The report written at `spec`'s scales (`spec` is the report's pair).
    pub fn from_report(r: &OrderReport, spec: &MarketSpec) -> Self {
        Order {
            id: ID(r.order_id.clone()),
            client_id: r.client_id.clone(),
            user_id: ID(r.user.clone()),
            pair: r.pair.clone(),
            side: r.side.into(),
            order_type: r.order_type.into(),
            price: r.price.map(|p| Decimal(spec.format_price(p))),
            qty: Decimal(spec.format_qty(r.qty)),
            filled_qty: Decimal(spec.format_qty(r.filled_qty)),
            filled_notional: Decimal(format_wide(
                r.filled_notional_raw,
                spec.price_scale + spec.qty_scale,
            )),
            status: r.status.into(),
            reason: r.reason.map(|why| reason_name(why).to_string()),
            time_in_force: r.time_in_force.into(),
            post_only: r.post_only,
            created_ts: UInt64(r.created_ts),
            updated_ts: UInt64(r.updated_ts),
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Fill {
    pub trade_id: UInt64,
    pub order_id: ID,
    pub client_id: Option<String>,
    pub user_id: ID,
    pub pair: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub maker: bool,
    pub venue_ts: UInt64,
}

impl Fill {
    pub fn from_fill(f: &venue::Fill, spec: &MarketSpec) -> Self {
        Fill {
            trade_id: UInt64(f.trade_id),
            order_id: ID(f.order_id.clone()),
            client_id: f.client_id.clone(),
            user_id: ID(f.user.clone()),
            pair: f.pair.clone(),
            side: f.side.into(),
            price: Decimal(spec.format_price(f.price)),
            qty: Decimal(spec.format_qty(f.qty)),
            maker: f.maker,
            venue_ts: UInt64(f.venue_ts),
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Trade {
    pub id: UInt64,
    pub price: Decimal,
    pub qty: Decimal,
    /// The aggressor's side.
    pub side: Side,
    pub venue_ts: UInt64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct BookEvent {
    pub pair: String,
    pub epoch: String,
    pub kind: BookEventKind,
    /// DELTA: previous seq + 1. SNAPSHOT: seq of the last change included.
    pub seq: UInt64,
    /// SNAPSHOT only: seq of the last trade batch before it.
    pub trade_seq: UInt64,
    /// SNAPSHOT only: subscribe or resync.
    pub reason: Option<String>,
    pub venue_ts: UInt64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct TradeBatch {
    pub pair: String,
    pub epoch: String,
    /// Previous batch's seq + 1.
    pub seq: UInt64,
    pub venue_ts: UInt64,
    pub trades: Vec<Trade>,
}

/// One of a user's events, in the order they happened.
#[derive(Union, Debug, Clone)]
pub enum UserEvent {
    Order(Order),
    Fill(Fill),
    Balance(Balance),
}

impl UserEvent {
    /// The venue's event in contract form; `None` (and a warning) for a
    /// pair or asset the catalog does not know, which the venue never sends.
    pub fn from_venue(event: &venue::UserEvent, catalog: &Catalog) -> Option<Self> {
        let converted = match event {
            venue::UserEvent::Order(r) => catalog
                .market(&r.pair)
                .ok()
                .map(|spec| UserEvent::Order(Order::from_report(r, spec))),
            venue::UserEvent::Fill(f) => catalog
                .market(&f.pair)
                .ok()
                .map(|spec| UserEvent::Fill(Fill::from_fill(f, spec))),
            venue::UserEvent::Balance {
                user,
                asset,
                balance,
                venue_ts,
            } => catalog.asset_scale(asset).ok().map(|scale| {
                UserEvent::Balance(Balance::new(user, asset, *balance, scale, *venue_ts))
            }),
        };
        if converted.is_none() {
            tracing::warn!(?event, "user event for a pair or asset outside the catalog");
        }
        converted
    }
}

/// `raw` (a `u128`, e.g. a notional at `price_scale + qty_scale`) with
/// exactly `scale` decimals.
pub fn format_wide(raw: u128, scale: u8) -> String {
    let unit = 10u128.pow(u32::from(scale));
    let (whole, frac) = (raw / unit, raw % unit);
    if scale == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:0width$}", width = usize::from(scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_amounts_keep_every_decimal() {
        assert_eq!(format_wide(0, 8), "0.00000000");
        assert_eq!(format_wide(123_456_789, 8), "1.23456789");
        assert_eq!(format_wide(5, 0), "5");
        // Beyond u64: 2^64 at scale 8.
        assert_eq!(format_wide(1u128 << 64, 8), "184467440737.09551616");
    }
}
