//! Order entry on an authenticated connection (docs/PROTOCOL.md "Order
//! entry"): `order.place`, `order.cancel`, `order.cancel_all` and the
//! dead-man's switch op `cancel_after`, plus `auth`'s
//! `cancel_on_disconnect`. Each op calls the REST API's own order entry
//! ([`api::trading::entry`]: the same validation, idempotency, rate limit
//! and error codes as `POST /orders` / `DELETE /orders/{id}`); an API error
//! becomes an `error` frame with the REST code and the op's `id`. The
//! `orders` / `balances` messages of the change follow through the private
//! channels as for a REST request.
//!
//! A refusal by the REST rules (`insufficient_funds`, `order_not_open`,
//! `invalid_qty`, ...) is a trading outcome, not a bad frame: it is
//! answered here and does not count against `limits.max_invalid_frames`.
//! `rate_limited`, `unauthorized` and `bad_request` do (they go back to the
//! reader as errors), so a client flooding refused orders is still closed
//! once over the REST budget.
//!
//! Each op runs on a task of its own, so it completes even when the
//! connection goes away meanwhile (an `order.place` the venue accepted is
//! then recorded and tracked all the same). `order.place`, `order.cancel`
//! and `cancel_after` are awaited before the next frame is read;
//! `order.cancel_all` is charged and checked first, then its cancels run
//! while the connection's other frames are served, and it is answered
//! when they are done.

use super::connection::Shared;
use super::HubContext;
use crate::protocol::ops::OpError;
use crate::protocol::{replies, ErrorCode};
use api::trading::entry::Scope;
use api::ApiError;
use std::sync::Arc;

/// The REST API and the authenticated user of an order op, the session
/// checked again (as each REST request checks its bearer token); else
/// `unauthorized`.
async fn caller<'a>(
    id: i64,
    shared: &Shared,
    ctx: &'a HubContext,
) -> Result<(&'a api::Api, String), OpError> {
    let unauthorized = |m: &str| OpError::new(Some(id), ErrorCode::Unauthorized, m);
    let Some(api) = &ctx.api else {
        return Err(unauthorized("this hub runs without the REST API"));
    };
    let Some(token) = shared.private.token() else {
        return Err(unauthorized("order entry needs auth"));
    };
    let user = api
        .auth
        .verify_access(token.expose())
        .await
        .map_err(|e| OpError::new(Some(id), ErrorCode::Unauthorized, e.message))?;
    Ok((api, user.user_id))
}

/// The `error` of an API error: the REST code (an unexpected one is
/// logged and answered `internal`).
fn rest_error(id: i64, e: ApiError) -> OpError {
    let code = ErrorCode::parse(&e.code).unwrap_or_else(|| {
        tracing::warn!(code = %e.code, message = %e.message, "order op: an API code the protocol does not list");
        ErrorCode::Internal
    });
    OpError::new(Some(id), code, e.message)
}

/// Runs an order op on a task of its own (see the module doc) and waits
/// for it: a refusal by the REST rules is answered here (not counted as
/// an invalid frame); the others go back to the reader.
pub(super) async fn run<F, Fut>(
    id: i64,
    shared: &Arc<Shared>,
    ctx: &Arc<HubContext>,
    op: F,
) -> Result<(), OpError>
where
    F: FnOnce(Arc<Shared>, Arc<HubContext>) -> Fut,
    Fut: std::future::Future<Output = Result<(), OpError>> + Send + 'static,
{
    let task = tokio::spawn(op(shared.clone(), ctx.clone()));
    let result = task
        .await
        .unwrap_or_else(|e| Err(rest_error(id, ApiError::internal(e))));
    answer_refusal(result, shared)
}

/// Answers a refusal by the REST rules; hands back the rest.
fn answer_refusal(result: Result<(), OpError>, shared: &Shared) -> Result<(), OpError> {
    match result {
        Err(e)
            if !matches!(
                e.code,
                ErrorCode::RateLimited | ErrorCode::Unauthorized | ErrorCode::BadRequest
            ) =>
        {
            shared.error(&e);
            Ok(())
        }
        other => other,
    }
}

/// `order.place`: `order` is the `POST /orders` body.
pub(super) async fn place(
    id: i64,
    order: &str,
    shared: &Shared,
    ctx: &HubContext,
) -> Result<(), OpError> {
    let (api, user) = caller(id, shared, ctx).await?;
    let placed = api
        .place_order(&user, order.as_bytes())
        .await
        .map_err(|e| rest_error(id, e))?;
    let attached = shared.attached.lock().clone();
    if let Some(on) = attached {
        if placed.created && !api::trading::model::is_final(&placed.order.status) {
            // The order exists whatever happens here: answer it. One the
            // switch could not remember is left to the client (logged).
            if let Err(e) = api.deadman.track(&on, &placed.order.order_id).await {
                tracing::warn!(order_id = %placed.order.order_id, error = %e.message,
                    "cancel_on_disconnect: order placed but not remembered");
            }
        }
    }
    let order =
        serde_json::to_value(&placed.order).map_err(|e| rest_error(id, ApiError::internal(e)))?;
    shared.reply(replies::order_reply(id, &order, Some(placed.created)));
    Ok(())
}

/// `order.cancel`: `DELETE /orders/{order_id}`.
pub(super) async fn cancel(
    id: i64,
    order_id: &str,
    shared: &Shared,
    ctx: &HubContext,
) -> Result<(), OpError> {
    let (api, user) = caller(id, shared, ctx).await?;
    let view = api
        .cancel_order(&user, order_id)
        .await
        .map_err(|e| rest_error(id, e))?;
    let order = serde_json::to_value(&view).map_err(|e| rest_error(id, ApiError::internal(e)))?;
    shared.reply(replies::order_reply(id, &order, None));
    Ok(())
}

/// `order.cancel_all`: every open order of the user (of `pair`). Charged
/// and checked before the next frame is read; the cancels run on a task
/// of their own (see the module doc). An order left open by a failure
/// (venue down) makes the answer that failure's `error`; what was
/// cancelled before it shows on `orders`.
pub(super) async fn cancel_all(
    id: i64,
    pair: Option<String>,
    shared: &Arc<Shared>,
    ctx: &Arc<HubContext>,
) -> Result<(), OpError> {
    let started = async {
        let (api, user) = caller(id, shared, ctx).await?;
        api.start_cancel_all(&user, Scope::All { pair })
            .await
            .map_err(|e| rest_error(id, e))
    }
    .await;
    let cancel = match started {
        Ok(cancel) => cancel,
        Err(e) => return answer_refusal(Err(e), shared),
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        match cancel.run().await {
            Err(e) => shared.error(&rest_error(id, e)),
            Ok(done) => match done.failed {
                Some((code, message)) => {
                    let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::Internal);
                    shared.error(&OpError::new(Some(id), code, message));
                }
                None => shared.reply(replies::cancelled_reply(id, &done.order_ids)),
            },
        }
    });
    Ok(())
}

/// `cancel_after`: arms (0: disarms) the user's dead-man's switch.
pub(super) async fn cancel_after(
    id: i64,
    timeout_ms: u64,
    shared: &Shared,
    ctx: &HubContext,
) -> Result<(), OpError> {
    let (api, user) = caller(id, shared, ctx).await?;
    let at = api
        .deadman
        .cancel_after(&user, timeout_ms)
        .await
        .map_err(|e| rest_error(id, e))?;
    shared.reply(replies::cancel_after_set(id, timeout_ms, at));
    Ok(())
}

/// `auth` with `cancel_on_disconnect: true`: attaches the connection
/// (once; a later `auth` without it keeps it attached).
pub(super) async fn attach(
    id: i64,
    user: &str,
    shared: &Shared,
    ctx: &HubContext,
) -> Result<(), OpError> {
    let Some(api) = &ctx.api else {
        return Ok(());
    };
    if shared.attached.lock().is_some() {
        return Ok(());
    }
    let on = api
        .deadman
        .attach(user)
        .await
        .map_err(|e| rest_error(id, e))?;
    *shared.attached.lock() = Some(std::sync::Arc::new(on));
    Ok(())
}
