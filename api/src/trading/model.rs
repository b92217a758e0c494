//! Orders and fills as the API stores and shows them: [`OrderDetail`] is
//! the stored `detail` of an `order` transaction, [`OrderView`] the body of
//! docs/API.md's "Order"; both built from the venue's [`OrderReport`].

use crate::events::Timestamp;
use crate::store::{Detail, Transaction, TxKind};
use chrono::TimeZone as _;
use feeds::venue::{Fill, OrderReport};
use orderbook::engine::{OrderReason, OrderStatus, OrderType, TimeInForce};
use orderbook::{MarketSpec, Side};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The stored detail of an `order` transaction. Decimal strings at the
/// pair's scales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetail {
    pub client_order_id: String,
    pub pair: String,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub price: Option<String>,
    pub qty: String,
    pub filled_qty: String,
    pub avg_fill_price: Option<String>,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub reason: Option<OrderReason>,
    /// The venue's id of the order.
    pub venue_order_id: String,
    /// Venue time of the report this state came from (µs).
    pub venue_ts: u64,
}

/// docs/API.md's Order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub client_order_id: String,
    pub pair: String,
    #[schema(value_type = String, example = "buy")]
    pub side: Side,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "limit")]
    pub order_type: OrderType,
    /// Limit price; null for market orders.
    pub price: Option<String>,
    pub qty: String,
    pub filled_qty: String,
    /// Volume-weighted average fill price, rounded half-even to the
    /// pair's price scale; null before the first fill.
    pub avg_fill_price: Option<String>,
    /// open, partially_filled, filled, cancelled, rejected.
    pub status: String,
    #[schema(value_type = String, example = "GTC")]
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    /// Why the venue cancelled or rejected it, when it did.
    #[schema(value_type = Option<String>)]
    pub reason: Option<OrderReason>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// docs/API.md status string of an order state.
pub fn status_str(status: OrderStatus, filled_raw: u64) -> &'static str {
    match status {
        OrderStatus::Open if filled_raw > 0 => "partially_filled",
        OrderStatus::Open => "open",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Rejected => "rejected",
    }
}

/// Final states never change again.
pub fn is_final(status: &str) -> bool {
    matches!(status, "filled" | "cancelled" | "rejected")
}

/// Microseconds since the epoch as a timestamp.
pub fn micros_to_time(us: u64) -> Timestamp {
    chrono::Utc
        .timestamp_micros(us as i64)
        .single()
        .unwrap_or_else(crate::events::now)
}

/// Average fill price from the notional (raw at price_scale + qty_scale)
/// and the filled quantity (raw at qty_scale).
pub fn avg_fill_price(spec: &MarketSpec, notional_raw: u128, filled_raw: u64) -> Option<String> {
    if filled_raw == 0 {
        return None;
    }
    let notional = Decimal::from_i128_with_scale(
        i128::try_from(notional_raw).ok()?,
        u32::from(spec.price_scale) + u32::from(spec.qty_scale),
    );
    let qty = Decimal::from_i128_with_scale(i128::from(filled_raw), u32::from(spec.qty_scale));
    let avg = notional.checked_div(qty)?.round_dp_with_strategy(
        u32::from(spec.price_scale),
        RoundingStrategy::MidpointNearestEven,
    );
    let mut avg = avg;
    avg.rescale(u32::from(spec.price_scale));
    Some(avg.to_string())
}

impl OrderDetail {
    /// The detail for a venue report of an order with the user's
    /// `client_order_id`.
    pub fn from_report(spec: &MarketSpec, client_order_id: &str, r: &OrderReport) -> Self {
        OrderDetail {
            client_order_id: client_order_id.to_owned(),
            pair: r.pair.clone(),
            side: r.side,
            order_type: r.order_type,
            price: r.price.map(|p| spec.format_price(p)),
            qty: spec.format_qty(r.qty),
            filled_qty: spec.format_qty(r.filled_qty),
            avg_fill_price: avg_fill_price(spec, r.filled_notional_raw, r.filled_qty.0),
            time_in_force: r.time_in_force,
            post_only: r.post_only,
            reason: r.reason,
            venue_order_id: r.order_id.clone(),
            venue_ts: r.updated_ts,
        }
    }
}

/// Builds the view of an `order` transaction.
pub fn order_view(tx: &Transaction) -> Result<OrderView, serde_json::Error> {
    let d: OrderDetail = tx.detail.decode()?;
    Ok(OrderView {
        order_id: tx.transaction_id.clone(),
        client_order_id: d.client_order_id,
        pair: d.pair,
        side: d.side,
        order_type: d.order_type,
        price: d.price,
        qty: d.qty,
        filled_qty: d.filled_qty,
        avg_fill_price: d.avg_fill_price,
        status: tx.status.clone(),
        time_in_force: d.time_in_force,
        post_only: d.post_only,
        reason: d.reason,
        created_at: tx.created_at,
        updated_at: tx.updated_at,
    })
}

/// A new `order` transaction for a report.
pub fn order_transaction(
    spec: &MarketSpec,
    user_id: &str,
    order_id: &str,
    client_order_id: &str,
    r: &OrderReport,
) -> Transaction {
    let now = crate::events::now();
    Transaction {
        user_id: user_id.to_owned(),
        transaction_id: order_id.to_owned(),
        kind: TxKind::Order,
        status: status_str(r.status, r.filled_qty.0).to_owned(),
        pair: Some(r.pair.clone()),
        created_at: micros_to_time(r.created_ts).min(now),
        updated_at: now,
        version: 1,
        detail: Detail::new(&OrderDetail::from_report(spec, client_order_id, r))
            .expect("OrderDetail serializes (strings, enums, numbers)"),
    }
}

/// Whether `new` describes a later state of an order than `old`: more
/// filled, or final where `old` is not, or a later venue time at the same
/// fill. Reports race (the placing request and the venue's event stream);
/// only a newer one may overwrite.
pub fn supersedes(
    new: &OrderDetail,
    new_status: &str,
    old: &OrderDetail,
    old_status: &str,
) -> bool {
    let filled = |d: &OrderDetail| Decimal::from_str_exact(&d.filled_qty).unwrap_or_default();
    match filled(new).cmp(&filled(old)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            if is_final(old_status) {
                false
            } else if is_final(new_status) {
                true
            } else {
                new.venue_ts > old.venue_ts && new_status != old_status
            }
        }
    }
}

/// One fill as `GET /trades/history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillView {
    pub trade_id: String,
    pub order_id: String,
    pub pair: String,
    #[schema(value_type = String, example = "buy")]
    pub side: Side,
    pub price: String,
    pub qty: String,
    /// `maker` or `taker`.
    pub liquidity: String,
    #[schema(value_type = String, format = DateTime)]
    pub time: Timestamp,
}

/// A new `fill` transaction (detail = its view).
pub fn fill_transaction(spec: &MarketSpec, user_id: &str, order_id: &str, f: &Fill) -> Transaction {
    let now = crate::events::now();
    let view = FillView {
        trade_id: format!("T-{}", f.trade_id),
        order_id: order_id.to_owned(),
        pair: f.pair.clone(),
        side: f.side,
        price: spec.format_price(f.price),
        qty: spec.format_qty(f.qty),
        liquidity: if f.maker { "maker" } else { "taker" }.to_owned(),
        time: micros_to_time(f.venue_ts),
    };
    Transaction {
        user_id: user_id.to_owned(),
        transaction_id: uuid::Uuid::now_v7().to_string(),
        kind: TxKind::Fill,
        status: "settled".to_owned(),
        pair: Some(f.pair.clone()),
        created_at: now,
        updated_at: now,
        version: 1,
        detail: Detail::new(&view).expect("FillView serializes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MarketSpec {
        feeds::sandbox_pairs::default_pairs()
            .into_iter()
            .find(|p| p.spec.symbol == "BTC-USD")
            .unwrap()
            .spec
    }

    #[test]
    fn average_price_is_exact_then_rounded_half_even() {
        let s = spec(); // price scale 2, qty scale 6
                        // 1.000000 @ 100.01 + 1.000000 @ 100.02 → 100.015 → 100.02 (half-even)
        let notional = 10001u128 * 1_000_000 + 10002u128 * 1_000_000;
        assert_eq!(
            avg_fill_price(&s, notional, 2_000_000).as_deref(),
            Some("100.02")
        );
        assert_eq!(
            avg_fill_price(&s, 10001u128 * 500_000, 500_000).as_deref(),
            Some("100.01")
        );
        assert_eq!(avg_fill_price(&s, 0, 0), None);
    }

    #[test]
    fn newer_reports_supersede_older_ones_only() {
        let d = |filled: &str, ts| OrderDetail {
            client_order_id: "c".into(),
            pair: "BTC-USD".into(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some("1.00".into()),
            qty: "2.000000".into(),
            filled_qty: filled.into(),
            avg_fill_price: None,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            reason: None,
            venue_order_id: "O-1".into(),
            venue_ts: ts,
        };
        assert!(supersedes(
            &d("1.000000", 2),
            "partially_filled",
            &d("0.000000", 1),
            "open"
        ));
        assert!(!supersedes(
            &d("0.000000", 3),
            "open",
            &d("1.000000", 2),
            "partially_filled"
        ));
        assert!(supersedes(
            &d("1.000000", 3),
            "cancelled",
            &d("1.000000", 2),
            "partially_filled"
        ));
        assert!(!supersedes(
            &d("1.000000", 4),
            "partially_filled",
            &d("1.000000", 3),
            "cancelled"
        ));
        assert!(!supersedes(
            &d("0.000000", 1),
            "open",
            &d("0.000000", 1),
            "open"
        ));
    }
}
