//! Wire shapes ↔ feeds types. Every decimal string is parsed at its pair's
//! or asset's scale (never through floats); a string with more decimals
//! than the scale, or any other malformed value, is a [`DecodeError`]
//! rather than a rounded number.

use super::wire::{
    WireAsset, WireBalance, WireBookEvent, WireBookEventKind, WireCatalog, WireCreateOrder,
    WireFill, WireLevel, WireMarket, WireMarketStatus, WireOrder, WireOrderStatus, WireOrderType,
    WireSide, WireTimeInForce, WireTradeBatch,
};
use crate::event::{Micros, PublicTrade, TradingStatus};
use crate::venue::{AssetSpec, Balance, Fill, OrderReport, PlaceOrder};
use orderbook::decimal::{self, parse_scaled};
use orderbook::engine::{OrderReason, OrderStatus, OrderType, TimeInForce};
use orderbook::{BookDelta, MarketSpec, Price, Qty, Side};
use std::collections::HashMap;

/// A value from the venue this adapter cannot read (a schema mismatch or
/// a number at the wrong scale).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable answer from Shift: {}", Clipped(.0))]
pub struct DecodeError(pub String);

/// Longest part of a [`DecodeError`]'s message it shows: the message may
/// repeat a venue's value whole (a serde error names the variant it did
/// not know, a spec error the symbol), however long.
const MESSAGE_MAX_CHARS: usize = 300;

/// A message cut at [`MESSAGE_MAX_CHARS`] characters, with its length.
struct Clipped<'a>(&'a str);

impl std::fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (shown, cut) = cut(self.0, MESSAGE_MAX_CHARS);
        f.write_str(shown)?;
        cut.write(f)
    }
}

/// `text` cut at `max` characters, and what was cut.
fn cut(text: &str, max: usize) -> (&str, Cut) {
    match text.char_indices().nth(max) {
        None => (text, Cut(None)),
        Some((at, _)) => (&text[..at], Cut(Some(text.len()))),
    }
}

/// The length in bytes of a text that was cut, if it was.
struct Cut(Option<usize>);

impl Cut {
    /// `… (N bytes)` after a cut text, nothing after a whole one.
    fn write(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "… ({bytes} bytes)"),
            None => Ok(()),
        }
    }
}

fn bad(what: &str, value: &str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError(format!("{what} {}: {e}", Quoted(value)))
}

/// Longest part of a venue's value an error quotes.
const QUOTE_MAX_CHARS: usize = 64;

/// A value from the venue as an error quotes it: escaped, and cut at
/// [`QUOTE_MAX_CHARS`] characters with its length in bytes, so that a
/// long value (a frame may be up to the adapter's bounds) does not go
/// whole into an error and the log line that reports it.
struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (shown, cut) = cut(self.0, QUOTE_MAX_CHARS);
        write!(f, "{shown:?}")?;
        cut.write(f)
    }
}

/// The venue's markets and assets, fetched once at connect.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub markets: Vec<MarketSpec>,
    pub assets: Vec<AssetSpec>,
    by_pair: HashMap<String, MarketSpec>,
    asset_scales: HashMap<String, u8>,
}

impl Catalog {
    pub fn from_wire(wire: WireCatalog) -> Result<Catalog, DecodeError> {
        let markets = wire
            .markets
            .iter()
            .map(market_spec)
            .collect::<Result<Vec<_>, _>>()?;
        let assets: Vec<AssetSpec> = wire.assets.iter().map(asset_spec).collect();
        Ok(Catalog {
            by_pair: markets
                .iter()
                .map(|m| (m.symbol.clone(), m.clone()))
                .collect(),
            asset_scales: assets.iter().map(|a| (a.symbol.clone(), a.scale)).collect(),
            markets,
            assets,
        })
    }

    pub fn market(&self, pair: &str) -> Option<&MarketSpec> {
        self.by_pair.get(pair)
    }

    pub fn asset_scale(&self, asset: &str) -> Option<u8> {
        self.asset_scales.get(asset).copied()
    }

    fn market_of(&self, pair: &str) -> Result<&MarketSpec, DecodeError> {
        self.market(pair).ok_or_else(|| {
            DecodeError(format!(
                "pair {} is not one of the venue's markets",
                Quoted(pair)
            ))
        })
    }

    fn scale_of(&self, asset: &str) -> Result<u8, DecodeError> {
        self.asset_scale(asset).ok_or_else(|| {
            DecodeError(format!(
                "asset {} is not one of the venue's assets",
                Quoted(asset)
            ))
        })
    }
}

fn market_spec(m: &WireMarket) -> Result<MarketSpec, DecodeError> {
    let min_qty =
        parse_scaled(&m.min_qty, m.qty_scale).map_err(|e| bad("minQty", &m.min_qty, e))?;
    let spec = MarketSpec::new(&m.pair, m.price_scale, m.qty_scale, Qty(min_qty))
        .map_err(|e| bad("market", &m.pair, e))?;
    if spec.base != m.base || spec.quote != m.quote {
        return Err(DecodeError(format!(
            "market {} names base {} and quote {}",
            Quoted(&m.pair),
            Quoted(&m.base),
            Quoted(&m.quote)
        )));
    }
    Ok(spec)
}

fn asset_spec(a: &WireAsset) -> AssetSpec {
    AssetSpec {
        symbol: a.symbol.clone(),
        scale: a.scale,
    }
}

impl From<WireSide> for Side {
    fn from(s: WireSide) -> Side {
        match s {
            WireSide::Buy => Side::Buy,
            WireSide::Sell => Side::Sell,
        }
    }
}

impl From<Side> for WireSide {
    fn from(s: Side) -> WireSide {
        match s {
            Side::Buy => WireSide::Buy,
            Side::Sell => WireSide::Sell,
        }
    }
}

impl From<WireOrderType> for OrderType {
    fn from(t: WireOrderType) -> OrderType {
        match t {
            WireOrderType::Limit => OrderType::Limit,
            WireOrderType::Market => OrderType::Market,
        }
    }
}

impl From<OrderType> for WireOrderType {
    fn from(t: OrderType) -> WireOrderType {
        match t {
            OrderType::Limit => WireOrderType::Limit,
            OrderType::Market => WireOrderType::Market,
        }
    }
}

impl From<WireTimeInForce> for TimeInForce {
    fn from(t: WireTimeInForce) -> TimeInForce {
        match t {
            WireTimeInForce::Gtc => TimeInForce::Gtc,
            WireTimeInForce::Ioc => TimeInForce::Ioc,
            WireTimeInForce::Fok => TimeInForce::Fok,
        }
    }
}

impl From<TimeInForce> for WireTimeInForce {
    fn from(t: TimeInForce) -> WireTimeInForce {
        match t {
            TimeInForce::Gtc => WireTimeInForce::Gtc,
            TimeInForce::Ioc => WireTimeInForce::Ioc,
            TimeInForce::Fok => WireTimeInForce::Fok,
        }
    }
}

impl From<WireOrderStatus> for OrderStatus {
    fn from(s: WireOrderStatus) -> OrderStatus {
        match s {
            WireOrderStatus::Open => OrderStatus::Open,
            WireOrderStatus::PartiallyFilled => OrderStatus::PartiallyFilled,
            WireOrderStatus::Filled => OrderStatus::Filled,
            WireOrderStatus::Cancelled => OrderStatus::Cancelled,
            WireOrderStatus::Rejected => OrderStatus::Rejected,
        }
    }
}

fn price(spec: &MarketSpec, s: &str) -> Result<Price, DecodeError> {
    spec.parse_price(s).map_err(|e| bad("price", s, e))
}

fn qty(spec: &MarketSpec, s: &str) -> Result<Qty, DecodeError> {
    spec.parse_qty(s).map_err(|e| bad("qty", s, e))
}

fn amount(s: &str, scale: u8) -> Result<u64, DecodeError> {
    parse_scaled(s, scale).map_err(|e| bad("amount", s, e))
}

/// Parses a non-negative decimal with at most `scale` decimals into a
/// `u128` raw value (notionals are at `price_scale + qty_scale` and may
/// exceed `u64`).
pub fn parse_notional(s: &str, scale: u8) -> Result<u128, DecodeError> {
    let (int_part, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty()
        || !digits_ok(int_part)
        || !digits_ok(frac)
        || (s.contains('.') && frac.is_empty())
    {
        return Err(bad("notional", s, "not a decimal number"));
    }
    if frac.len() > usize::from(scale) {
        return Err(bad("notional", s, format!("more than {scale} decimals")));
    }
    let overflow = || bad("notional", s, "too large");
    let mut raw: u128 = 0;
    for b in int_part.bytes().chain(frac.bytes()) {
        raw = raw
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    for _ in frac.len()..usize::from(scale) {
        raw = raw.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(raw)
}

/// The engine's reason for a venue-side cancel or reject. An unknown
/// reason is logged and dropped rather than failing the whole report.
fn order_reason(s: &str) -> Option<OrderReason> {
    let reason = serde_json::from_value(serde_json::Value::String(s.to_string())).ok();
    if reason.is_none() {
        tracing::warn!(
            reason = s,
            "Shift sent an order reason this adapter does not know"
        );
    }
    reason
}

impl Catalog {
    /// `PlaceOrder` as `CreateOrderInput`, written at the pair's scales.
    pub fn create_order_input(&self, order: &PlaceOrder) -> Option<WireCreateOrder> {
        let spec = self.market(&order.pair)?;
        Some(WireCreateOrder {
            user_id: order.user.clone(),
            client_id: order.client_id.clone(),
            pair: order.pair.clone(),
            side: order.side.into(),
            order_type: order.order_type.into(),
            price: order.price.map(|p| spec.format_price(p)),
            qty: spec.format_qty(order.qty),
            time_in_force: order.time_in_force.into(),
            post_only: order.post_only,
        })
    }

    pub fn order_report(&self, o: &WireOrder) -> Result<OrderReport, DecodeError> {
        let spec = self.market_of(&o.pair)?;
        Ok(OrderReport {
            order_id: o.id.clone(),
            client_id: o.client_id.clone(),
            user: o.user_id.clone(),
            pair: o.pair.clone(),
            side: o.side.into(),
            order_type: o.order_type.into(),
            price: o.price.as_deref().map(|p| price(spec, p)).transpose()?,
            qty: qty(spec, &o.qty)?,
            filled_qty: qty(spec, &o.filled_qty)?,
            filled_notional_raw: parse_notional(
                &o.filled_notional,
                spec.price_scale + spec.qty_scale,
            )?,
            status: o.status.into(),
            reason: o.reason.as_deref().and_then(order_reason),
            time_in_force: o.time_in_force.into(),
            post_only: o.post_only,
            created_ts: o.created_ts,
            updated_ts: o.updated_ts,
        })
    }

    pub fn fill(&self, f: &WireFill) -> Result<Fill, DecodeError> {
        let spec = self.market_of(&f.pair)?;
        Ok(Fill {
            trade_id: f.trade_id,
            order_id: f.order_id.clone(),
            client_id: f.client_id.clone(),
            user: f.user_id.clone(),
            pair: f.pair.clone(),
            side: f.side.into(),
            price: price(spec, &f.fill_price)?,
            qty: qty(spec, &f.qty)?,
            maker: f.maker,
            venue_ts: f.venue_ts,
        })
    }

    pub fn balance(&self, b: &WireBalance) -> Result<Balance, DecodeError> {
        let scale = self.scale_of(&b.asset)?;
        Ok(Balance {
            available: amount(&b.available, scale)?,
            locked: amount(&b.locked, scale)?,
        })
    }

    /// `amount` written at `asset`'s scale; `None` for an unknown asset.
    pub fn format_amount(&self, asset: &str, amount: u64) -> Option<String> {
        Some(decimal::format_scaled(amount, self.asset_scale(asset)?))
    }
}

/// One `orderBookUpdates` event at the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookUpdate {
    pub epoch: String,
    pub seq: u64,
    pub venue_ts: Micros,
    pub body: BookBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookBody {
    Snapshot {
        trade_seq: u64,
        /// The venue says the subscriber fell behind.
        resync: bool,
        bids: Vec<(Price, Qty)>,
        asks: Vec<(Price, Qty)>,
    },
    Delta(Vec<BookDelta>),
}

/// One `trades` batch at the pair's scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeUpdate {
    pub epoch: String,
    pub seq: u64,
    pub venue_ts: Micros,
    pub trades: Vec<PublicTrade>,
}

fn levels(spec: &MarketSpec, levels: &[WireLevel]) -> Result<Vec<(Price, Qty)>, DecodeError> {
    levels
        .iter()
        .map(|l| Ok((price(spec, &l.price)?, qty(spec, &l.qty)?)))
        .collect()
}

fn same_pair(spec: &MarketSpec, pair: &str) -> Result<(), DecodeError> {
    if pair != spec.symbol {
        return Err(DecodeError(format!(
            "an event of {} on the subscription of {:?}",
            Quoted(pair),
            spec.symbol
        )));
    }
    Ok(())
}

pub fn book_update(spec: &MarketSpec, e: &WireBookEvent) -> Result<BookUpdate, DecodeError> {
    same_pair(spec, &e.pair)?;
    let body = match e.kind {
        WireBookEventKind::Snapshot => BookBody::Snapshot {
            trade_seq: e.trade_seq,
            resync: e.reason.as_deref() == Some("resync"),
            bids: levels(spec, &e.bids)?,
            asks: levels(spec, &e.asks)?,
        },
        WireBookEventKind::Delta => {
            let side = |side: Side, ls: &[WireLevel]| -> Result<Vec<BookDelta>, DecodeError> {
                ls.iter()
                    .map(|l| {
                        Ok(BookDelta {
                            side,
                            price: price(spec, &l.price)?,
                            qty: qty(spec, &l.qty)?,
                        })
                    })
                    .collect()
            };
            let mut deltas = side(Side::Buy, &e.bids)?;
            deltas.extend(side(Side::Sell, &e.asks)?);
            BookBody::Delta(deltas)
        }
    };
    Ok(BookUpdate {
        epoch: e.epoch.clone(),
        seq: e.seq,
        venue_ts: e.venue_ts,
        body,
    })
}

/// The trading status of a `marketStatus` item: a halt's reason is cut to
/// [`crate::event::MAX_HALT_REASON_CHARS`] and, when missing or empty, a generic one.
pub fn market_status(
    spec: &MarketSpec,
    w: &WireMarketStatus,
) -> Result<TradingStatus, DecodeError> {
    same_pair(spec, &w.pair)?;
    if !w.halted {
        return Ok(TradingStatus::Open);
    }
    let reason = match w.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r
            .chars()
            .take(crate::event::MAX_HALT_REASON_CHARS)
            .collect(),
        _ => "halted by the venue".into(),
    };
    Ok(TradingStatus::Halted { reason })
}

pub fn trade_update(spec: &MarketSpec, b: &WireTradeBatch) -> Result<TradeUpdate, DecodeError> {
    same_pair(spec, &b.pair)?;
    let trades = b
        .trades
        .iter()
        .map(|t| {
            Ok(PublicTrade {
                trade_id: t.id,
                price: price(spec, &t.price)?,
                qty: qty(spec, &t.qty)?,
                side: t.side.into(),
                venue_ts: t.venue_ts,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(TradeUpdate {
        epoch: b.epoch.clone(),
        seq: b.seq,
        venue_ts: b.venue_ts,
        trades,
    })
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
