//! `POST /orders`: validate, check KYC, check idempotency, place at the
//! venue, persist order + idempotency key + events in one commit.
//!
//! Idempotency: `client_order_id` is the key. The same id with the same
//! body answers 200 with the order as it is now; with another body 409
//! `duplicate_client_order_id`. A request the venue refuses (e.g.
//! insufficient funds) records nothing, so the id may be used again.
//! Requests with one id are serialized across nodes by the id's claim
//! ([`crate::cluster::claim`]), so at most one of them reaches the venue.
//! While the order sync holds too many venue events, a new order is
//! refused with 503 `overloaded` before it reaches the venue
//! ([`super::backlog`]).

use super::model::{order_transaction, order_view, OrderView};
use super::TradingState;
use super::{venue_error, venue_failure};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::events::{now, Event, EventType};
use crate::http::ApiJson;
use crate::resilience::Idempotency;
use crate::resilience::IntoApiError as _;
use crate::store::{Conflict, IdempotencyRecord, StoreError, Write};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use feeds::venue::PlaceOrder;
use orderbook::engine::{OrderType, TimeInForce};
use orderbook::{MarketSpec, Side};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Idempotency scope of orders.
const SCOPE: &str = "order";
/// Longest `client_order_id`.
const MAX_CLIENT_ORDER_ID: usize = 64;

/// Body of `POST /orders`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1–64 characters of `A-Z a-z 0-9 - _ . :`; the idempotency key.
    pub client_order_id: String,
    pub pair: String,
    #[schema(value_type = String, example = "buy")]
    pub side: Side,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "limit")]
    pub order_type: OrderType,
    /// Decimal string at the pair's qty scale, ≥ the pair's `min_qty`.
    pub qty: String,
    /// Decimal string at the pair's price scale; required for limit
    /// orders, absent for market orders.
    pub price: Option<String>,
    /// GTC (limit default), IOC (market default) or FOK; market orders
    /// take IOC or FOK.
    #[schema(value_type = Option<String>, example = "GTC")]
    pub time_in_force: Option<TimeInForce>,
    /// Refuse the order if any part would trade at once (limit only).
    pub post_only: Option<bool>,
}

fn valid_client_order_id(id: &str) -> bool {
    (1..=MAX_CLIENT_ORDER_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The venue request for a validated body, or a 422 naming the field.
fn validate(
    spec: &MarketSpec,
    user: &str,
    order_id: &str,
    req: &PlaceOrderRequest,
) -> Result<PlaceOrder, ApiError> {
    let qty = spec
        .parse_qty(&req.qty)
        .map_err(|e| ApiError::unprocessable("invalid_qty", format!("qty: {e}")))?;
    if qty < spec.min_qty {
        return Err(ApiError::unprocessable(
            "invalid_qty",
            format!(
                "qty: below the pair's minimum {}",
                spec.format_qty(spec.min_qty)
            ),
        ));
    }
    let post_only = req.post_only.unwrap_or(false);
    let (price, tif) = match req.order_type {
        OrderType::Limit => {
            let raw = req.price.as_deref().ok_or_else(|| {
                ApiError::unprocessable(
                    "missing_field",
                    "missing field: price (required for limit orders)",
                )
            })?;
            let price = spec
                .parse_price(raw)
                .map_err(|e| ApiError::unprocessable("invalid_price", format!("price: {e}")))?;
            (Some(price), req.time_in_force.unwrap_or(TimeInForce::Gtc))
        }
        OrderType::Market => {
            if req.price.is_some() {
                return Err(ApiError::invalid_field(
                    "price",
                    "market orders take no price",
                ));
            }
            if post_only {
                return Err(ApiError::invalid_field(
                    "post_only",
                    "market orders cannot be post-only",
                ));
            }
            let tif = req.time_in_force.unwrap_or(TimeInForce::Ioc);
            if tif == TimeInForce::Gtc {
                return Err(ApiError::invalid_field(
                    "time_in_force",
                    "market orders are IOC or FOK",
                ));
            }
            (None, tif)
        }
    };
    if post_only && tif != TimeInForce::Gtc {
        return Err(ApiError::invalid_field(
            "post_only",
            "post-only orders are GTC",
        ));
    }
    Ok(PlaceOrder {
        user: user.to_owned(),
        client_id: Some(order_id.to_owned()),
        pair: spec.symbol.clone(),
        side: req.side,
        order_type: req.order_type,
        price,
        qty,
        time_in_force: tif,
        post_only,
    })
}

/// Digest of the request with defaults filled in, so the same order sent
/// with or without explicit defaults is the same request.
fn fingerprint(order: &PlaceOrder, client_order_id: &str) -> String {
    let canonical = json!([
        client_order_id,
        order.pair,
        order.side,
        order.order_type,
        order.qty.0,
        order.price.map(|p| p.0),
        order.time_in_force,
        order.post_only
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// What `POST /orders` checks of a body before it reads any state
/// (decoding, the client order id, the order against a BTC-USD market of
/// scales 2 and 8), for [`crate::http::json::REQUEST_BODIES`].
pub(crate) fn check_body(bytes: &[u8]) -> ApiResult<()> {
    let req: PlaceOrderRequest = crate::http::json::decode(bytes)?;
    if !valid_client_order_id(&req.client_order_id) {
        return Err(ApiError::invalid_field("client_order_id", "bad"));
    }
    let spec = MarketSpec::new("BTC-USD", 2, 8, orderbook::Qty(1))
        .expect("invariant: a valid market spec");
    validate(&spec, "user", "order", &req).map(drop)
}

/// Places an order.
#[utoipa::path(
    post, path = "/orders", tag = "trading",
    request_body = PlaceOrderRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Order accepted (its status may already be filled, cancelled or rejected)", body = OrderView),
        (status = 200, description = "Replay of an earlier request with the same client_order_id and body", body = OrderView),
        (status = 400, description = "unknown_field, bad_request", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 403, description = "kyc_required", body = crate::error::ErrorBody),
        (status = 409, description = "duplicate_client_order_id; market_halted (the venue halted the pair: `GET /markets` status)", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_qty, invalid_price, missing_field, invalid_field, unknown_pair, invalid_order, insufficient_funds", body = crate::error::ErrorBody),
        (status = 503, description = "upstream_unavailable (breaker open, Retry-After), upstream_timeout; overloaded (the order sync is behind the venue, Retry-After; cancels still go through)", body = crate::error::ErrorBody),
    )
)]
pub async fn place_order(
    State(state): State<TradingState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PlaceOrderRequest>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let placed = place(&state, &user.user_id, &req).await?;
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(placed.order)))
}

/// What [`place`] did: the order, and whether this request created it
/// (false: a replay of an earlier request with the same
/// `client_order_id` and body).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderView,
    pub created: bool,
}

/// Places an order for `user_id`: the core of `POST /orders`, also used by
/// the hub's WebSocket `order.place` op, so both entry points validate,
/// check KYC, claim the `client_order_id` and commit alike and answer the
/// same error codes (see the module doc). The caller has authenticated
/// the user and counted the request against the user's rate limit.
pub async fn place(
    state: &TradingState,
    user_id: &str,
    req: &PlaceOrderRequest,
) -> ApiResult<Placed> {
    if !valid_client_order_id(&req.client_order_id) {
        return Err(ApiError::invalid_field(
            "client_order_id",
            "1-64 characters of A-Z a-z 0-9 - _ . :",
        ));
    }
    let spec = state.trading.spec(&req.pair)?.clone();
    let order_id = uuid::Uuid::now_v7().to_string();
    let order = validate(&spec, user_id, &order_id, req)?;
    let fp = fingerprint(&order, &req.client_order_id);
    crate::users::require_verified_kyc(state.store.as_ref(), user_id).await?;

    let _serialized = state.trading.lock_user(user_id).await;
    // Held until the commit: a request with this id on another node waits
    // here, then replays this one's order instead of placing its own.
    let _claimed = state
        .claims
        .claim(SCOPE, user_id, &req.client_order_id)
        .await
        .map_err(|_| in_use())?;
    if let Some(seen) = state
        .store
        .idempotency(user_id, SCOPE, &req.client_order_id)
        .await?
    {
        return replay(state, user_id, &seen, &fp).await;
    }
    // Replays above still answer; only a new order waits for the sync.
    state.trading.backlog.admit()?;
    let report = state
        .trading
        .venue_upstream
        .call(Idempotency::NotIdempotent, venue_failure, || {
            state.venue.place_order(order.clone())
        })
        .await
        .map_err(|e| e.into_api("venue", venue_error))?;

    let tx = order_transaction(&spec, user_id, &order_id, &req.client_order_id, &report);
    let view = order_view(&tx).map_err(ApiError::internal)?;
    let mut writes = vec![
        Write::CreateIdempotency(IdempotencyRecord {
            user_id: user_id.to_owned(),
            scope: SCOPE.into(),
            key: req.client_order_id.clone(),
            fingerprint: fp,
            transaction_id: order_id.clone(),
            created_at: now(),
        }),
        Write::CreateTransaction(tx),
    ];
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    let first = if view.status == "rejected" {
        EventType::OrderRejected
    } else {
        EventType::OrderAccepted
    };
    writes.push(Write::Emit(Event::new(
        first,
        Some(user_id),
        json!({ "order": body }),
    )));
    if view.status == "cancelled" {
        writes.push(Write::Emit(Event::new(
            EventType::OrderCancelled,
            Some(user_id),
            json!({ "order": body }),
        )));
    }
    if let Err(e) = state.store.commit(writes).await {
        // The venue has an order we could not record: take it back so
        // nothing trades that the user was not told about.
        if !super::model::is_final(&view.status) {
            let _ = state.venue.cancel_order(user_id, &report.order_id).await;
        }
        return Err(match e {
            StoreError::Conflict(Conflict::IdempotencyKey) => in_use(),
            other => other.into(),
        });
    }
    state.trading.commits.committed(&order_id);
    Ok(Placed {
        order: view,
        created: true,
    })
}

/// 409 for an id another request is placing right now.
fn in_use() -> ApiError {
    ApiError::conflict(
        "duplicate_client_order_id",
        "client_order_id is being used by another request",
    )
}

/// The answer to a repeated `client_order_id`.
async fn replay(
    state: &TradingState,
    user_id: &str,
    seen: &IdempotencyRecord,
    fp: &str,
) -> ApiResult<Placed> {
    if seen.fingerprint != fp {
        return Err(ApiError::conflict(
            "duplicate_client_order_id",
            "client_order_id was already used for a different order",
        ));
    }
    let tx = state
        .store
        .transaction(user_id, &seen.transaction_id)
        .await?
        .ok_or_else(|| ApiError::internal("idempotency record without its order"))?;
    Ok(Placed {
        order: order_view(&tx).map_err(ApiError::internal)?,
        created: false,
    })
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

    fn req(order_type: OrderType, qty: &str, price: Option<&str>) -> PlaceOrderRequest {
        PlaceOrderRequest {
            client_order_id: "c-1".into(),
            pair: "BTC-USD".into(),
            side: Side::Buy,
            order_type,
            qty: qty.into(),
            price: price.map(str::to_owned),
            time_in_force: None,
            post_only: None,
        }
    }

    fn code(r: Result<PlaceOrder, ApiError>) -> String {
        r.unwrap_err().code.into_owned()
    }

    #[test]
    fn validation_names_the_problem() {
        let s = spec();
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Limit, "0.1234567", Some("1.00"))
            )),
            "invalid_qty"
        );
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Limit, "0.000001", Some("1.00"))
            )),
            "invalid_qty"
        );
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Limit, "1", Some("1.001"))
            )),
            "invalid_price"
        );
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Limit, "1", Some("0"))
            )),
            "invalid_price"
        );
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Limit, "1", Some("-1.00"))
            )),
            "invalid_price"
        );
        assert_eq!(
            code(validate(&s, "u", "o", &req(OrderType::Limit, "1", None))),
            "missing_field"
        );
        assert_eq!(
            code(validate(
                &s,
                "u",
                "o",
                &req(OrderType::Market, "1", Some("1.00"))
            )),
            "invalid_field"
        );
        let ok = validate(&s, "u", "o", &req(OrderType::Market, "1", None)).unwrap();
        assert_eq!(ok.time_in_force, TimeInForce::Ioc);
        assert_eq!(ok.client_id.as_deref(), Some("o"));
    }

    #[test]
    fn fingerprint_ignores_spelled_out_defaults() {
        let s = spec();
        let a = validate(&s, "u", "o1", &req(OrderType::Limit, "1", Some("10.00"))).unwrap();
        let mut explicit = req(OrderType::Limit, "1.000000", Some("10.0"));
        explicit.time_in_force = Some(TimeInForce::Gtc);
        explicit.post_only = Some(false);
        let b = validate(&s, "u", "o2", &explicit).unwrap();
        assert_eq!(fingerprint(&a, "c"), fingerprint(&b, "c"));
        let c = validate(&s, "u", "o3", &req(OrderType::Limit, "2", Some("10.00"))).unwrap();
        assert_ne!(fingerprint(&a, "c"), fingerprint(&c, "c"));
    }

    #[test]
    fn client_order_ids() {
        assert!(valid_client_order_id("abc-1_2.3:4"));
        assert!(!valid_client_order_id(""));
        assert!(!valid_client_order_id("a b"));
        assert!(!valid_client_order_id(&"x".repeat(65)));
    }
}
