//! `GET /orders`, `GET /orders/{id}`, `DELETE /orders/{id}`,
//! `GET /trades/history`. Reads come from the store (a user's own
//! transactions only: another user's order is 404, never 403).

use super::model::{order_view, FillView, OrderView};
use super::sync::apply_report;
use super::TradingState;
use super::{venue_error, venue_failure};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::http::ApiPath;
use crate::http::{ApiQuery, Cursor, Limit};
use crate::resilience::Idempotency;
use crate::resilience::IntoApiError as _;
use crate::store::{Transaction, TxKind, TxQuery};
use axum::extract::State;
use axum::Json;
use feeds::VenueError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Statuses `GET /orders?status=` accepts.
const STATUSES: [&str; 5] = [
    "open",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
];

/// Query of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListOrdersQuery {
    /// open, partially_filled, filled, cancelled or rejected.
    pub status: Option<String>,
    pub pair: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /trades/history`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TradeHistoryQuery {
    pub pair: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// A page of the user's fills, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TradePage {
    pub trades: Vec<FillView>,
    pub next_cursor: Option<String>,
}

fn page_query(
    kind: TxKind,
    status: Option<String>,
    pair: Option<String>,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<TxQuery, ApiError> {
    Ok(TxQuery {
        kinds: vec![kind],
        status,
        pair,
        after: Cursor::parse(cursor)?.map(|c| c.0),
        limit: Limit::parse(limit)?.0,
    })
}

/// Lists the caller's orders.
#[utoipa::path(
    get, path = "/orders", tag = "trading", params(ListOrdersQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = OrderPage),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_field (status), invalid_limit, invalid_cursor", body = crate::error::ErrorBody),
    )
)]
pub async fn list_orders(
    State(state): State<TradingState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListOrdersQuery>,
) -> ApiResult<Json<OrderPage>> {
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "status",
                format!("one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let query = page_query(
        TxKind::Order,
        q.status,
        q.pair,
        q.limit,
        q.cursor.as_deref(),
    )?;
    let page = state.store.transactions(&user.user_id, &query).await?;
    let orders = page
        .items
        .iter()
        .map(order_view)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(Json(OrderPage {
        orders,
        next_cursor: page.next.as_deref().map(Cursor::encode),
    }))
}

async fn own_order(state: &TradingState, user_id: &str, id: &str) -> Result<Transaction, ApiError> {
    let not_found = || ApiError::not_found("order_not_found", "no such order");
    if id.is_empty() || id.len() > 64 || id.contains('\0') {
        return Err(not_found());
    }
    match state.store.transaction(user_id, id).await? {
        Some(tx) if tx.kind == TxKind::Order => Ok(tx),
        _ => Err(not_found()),
    }
}

/// One of the caller's orders.
#[utoipa::path(
    get, path = "/orders/{id}", tag = "trading", params(("id" = String, Path, description = "order_id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 404, description = "order_not_found (also for another user's order)", body = crate::error::ErrorBody),
    )
)]
pub async fn get_order(
    State(state): State<TradingState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderView>> {
    let tx = own_order(&state, &user.user_id, &id).await?;
    Ok(Json(order_view(&tx).map_err(ApiError::internal)?))
}

/// Cancels one of the caller's open orders.
#[utoipa::path(
    delete, path = "/orders/{id}", tag = "trading", params(("id" = String, Path, description = "order_id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order, cancelled", body = OrderView),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 404, description = "order_not_found", body = crate::error::ErrorBody),
        (status = 409, description = "order_not_open (filled, cancelled or rejected)", body = crate::error::ErrorBody),
        (status = 503, description = "upstream_unavailable, upstream_timeout", body = crate::error::ErrorBody),
    )
)]
pub async fn cancel_order(
    State(state): State<TradingState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderView>> {
    cancel(&state, &user.user_id, &id).await.map(Json)
}

/// Cancels `user_id`'s order `id`: the core of `DELETE /orders/{id}`, also
/// used by the hub's WebSocket `order.cancel` op and by
/// [`cancel_open`](super::cancel_open), so every entry point answers the
/// same codes (another user's order: 404 `order_not_found`; a finished
/// one: 409 `order_not_open`).
pub async fn cancel(state: &TradingState, user_id: &str, id: &str) -> ApiResult<OrderView> {
    let tx = own_order(state, user_id, id).await?;
    if super::model::is_final(&tx.status) {
        return Err(ApiError::conflict(
            "order_not_open",
            format!("the order is {}", tx.status),
        ));
    }
    let detail: super::model::OrderDetail = tx.detail.decode().map_err(ApiError::internal)?;
    let venue_id = detail.venue_order_id.clone();
    let result = state
        .trading
        .venue_upstream
        .call(Idempotency::Idempotent, venue_failure, || {
            state.venue.cancel_order(user_id, &venue_id)
        })
        .await;
    let report = match result {
        Ok(report) => report,
        Err(crate::resilience::CallError::Failed(VenueError::OrderNotOpen)) => {
            // Finished at the venue meanwhile (e.g. filled): record the
            // venue's state, then refuse.
            if let Ok(report) = state.venue.order(user_id, &venue_id).await {
                apply_report(state, user_id, id, &report).await?;
            }
            return Err(ApiError::conflict(
                "order_not_open",
                "the order is no longer open",
            ));
        }
        Err(crate::resilience::CallError::Failed(VenueError::OrderNotFound)) => {
            // The venue no longer knows the order (an in-process sandbox
            // restarted since): it cannot trade, so it is cancelled.
            let tx = super::sync::mark_cancelled(state, tx).await?;
            return order_view(&tx).map_err(ApiError::internal);
        }
        Err(e) => return Err(e.into_api("venue", venue_error)),
    };
    let tx = apply_report(state, user_id, id, &report)
        .await?
        .ok_or_else(|| ApiError::internal("order vanished"))?;
    order_view(&tx).map_err(ApiError::internal)
}

/// The caller's fills.
#[utoipa::path(
    get, path = "/trades/history", tag = "trading", params(TradeHistoryQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = TradePage),
        (status = 401, description = "unauthorized", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_limit, invalid_cursor", body = crate::error::ErrorBody),
    )
)]
pub async fn trade_history(
    State(state): State<TradingState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<TradeHistoryQuery>,
) -> ApiResult<Json<TradePage>> {
    let query = page_query(TxKind::Fill, None, q.pair, q.limit, q.cursor.as_deref())?;
    let page = state.store.transactions(&user.user_id, &query).await?;
    let trades = page
        .items
        .into_iter()
        .map(|t| t.detail.decode())
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(Json(TradePage {
        trades,
        next_cursor: page.next.as_deref().map(Cursor::encode),
    }))
}
