//! The orders scenario's part of `result.json`: rates, counts by outcome
//! and status class, the rate-limit budget a user needed, and the
//! per-second timeline.

use super::record::Interval;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One second of the order flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderTimelinePoint {
    /// Seconds since the flow started, at the end of the interval.
    pub t: f64,
    /// Orders accepted (201) per second.
    pub placed_per_s: f64,
    /// Resting orders cancelled (200) per second.
    pub cancelled_per_s: f64,
    /// Requests answered or failed per second.
    pub requests_per_s: f64,
    /// `POST /orders` latency over the interval, µs (0 when none).
    pub place_p50_us: u64,
    pub place_p99_us: u64,
    pub place_max_us: u64,
    /// Errors so far.
    pub errors: u64,
}

impl OrderTimelinePoint {
    /// The point of `interval`, `dt` seconds long, ending `t` seconds into
    /// the flow, with `errors` so far.
    pub fn of(interval: &Interval, t: f64, dt: f64, errors: u64) -> OrderTimelinePoint {
        let dt = dt.max(1e-3);
        let place = interval.place_latency();
        let q = |q| {
            if place.is_empty() {
                0
            } else {
                place.value_at_quantile(q)
            }
        };
        OrderTimelinePoint {
            t,
            placed_per_s: interval.placed as f64 / dt,
            cancelled_per_s: interval.cancelled as f64 / dt,
            requests_per_s: interval.requests() as f64 / dt,
            place_p50_us: q(0.5),
            place_p99_us: q(0.99),
            place_max_us: if place.is_empty() { 0 } else { place.max() },
            errors,
        }
    }
}

/// Everything the orders scenario measured besides the latency histograms
/// (those are in `latency_us` as `post_orders`, `post_orders_resting`,
/// `post_orders_ioc`, `delete_orders`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderFlowResult {
    pub pair: String,
    /// Quantity of every order and price of the resting buys.
    pub order_qty: String,
    pub rest_price: String,
    /// Best bid when the run started.
    pub reference_price: String,
    pub users: u64,
    /// Seconds spent registering, verifying and funding the users.
    pub setup_s: f64,
    /// `--rate`.
    pub target_orders_per_s: f64,
    /// Orders sent (`POST /orders`), and of them the resting ones.
    pub sent: u64,
    pub sent_resting: u64,
    /// Orders accepted (201) per second of the flow.
    pub achieved_orders_per_s: f64,
    /// Best one-second interval of accepted orders.
    pub peak_orders_per_s: f64,
    /// Requests (orders and cancels) per second of the flow.
    pub requests_per_s: f64,
    /// Orders accepted (201) and resting orders cancelled (200).
    pub placed: u64,
    pub cancelled: u64,
    /// Average requests per user per minute at the target rate: what the
    /// hub's `[api] requests_per_minute` must allow.
    pub requests_per_user_minute: f64,
    /// `"POST 201"`, `"DELETE 200"`, `"POST 429"`, ... → count.
    pub statuses: BTreeMap<String, u64>,
    /// `2xx`, `4xx` (429 excluded), `429`, `5xx`, `no_answer` → count.
    pub status_classes: BTreeMap<String, u64>,
    /// `status` of accepted orders → count.
    pub order_states: BTreeMap<String, u64>,
    pub timeline: Vec<OrderTimelinePoint>,
}

/// Requests by class: `2xx`, `4xx` (without 429), `429`, `5xx`, and
/// `no_answer` (timeouts, refused connections: the `errors` whose key has
/// no status).
pub fn status_classes(totals: &Interval) -> BTreeMap<String, u64> {
    let mut classes: BTreeMap<String, u64> = ["2xx", "4xx", "429", "5xx", "no_answer"]
        .into_iter()
        .map(|c| (c.to_string(), 0))
        .collect();
    for (key, n) in &totals.statuses {
        let class = match key.rsplit(' ').next().unwrap_or_default() {
            "429" => "429",
            s if s.starts_with('2') => "2xx",
            s if s.starts_with('4') => "4xx",
            s if s.starts_with('5') => "5xx",
            _ => "other",
        };
        *classes.entry(class.to_string()).or_default() += n;
    }
    let answered: u64 = totals.statuses.values().sum();
    classes.insert("no_answer".into(), totals.requests() - answered);
    classes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::record::{OrderRecorder, Request};
    use std::time::Duration;

    #[test]
    fn classes_and_timeline_points() {
        let r = OrderRecorder::default();
        let ms = Duration::from_millis;
        r.answered(Request::PlaceIoc, 201, ms(4), Some("filled"), None);
        r.answered(Request::PlaceResting, 201, ms(2), Some("open"), None);
        r.answered(Request::Cancel, 200, ms(1), Some("cancelled"), None);
        r.answered(Request::PlaceIoc, 429, ms(1), None, Some("rate_limited"));
        r.answered(Request::Cancel, 409, ms(1), None, Some("order_not_open"));
        r.answered(Request::PlaceIoc, 503, ms(1), None, None);
        r.unanswered(Request::Cancel, "timeout");
        let i = r.take();
        let c = status_classes(&i);
        assert_eq!(
            (c["2xx"], c["4xx"], c["429"], c["5xx"], c["no_answer"]),
            (3, 1, 1, 1, 1)
        );
        let p = OrderTimelinePoint::of(&i, 2.0, 0.5, 4);
        assert_eq!((p.placed_per_s, p.cancelled_per_s), (4.0, 2.0));
        assert_eq!(p.requests_per_s, 14.0);
        assert!(p.place_max_us >= 4_000 && p.place_p50_us > 0, "{p:?}");
    }
}
