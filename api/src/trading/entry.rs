//! Order entry for callers other than the REST routes: the hub's WebSocket
//! ops `order.place`, `order.cancel`, `order.cancel_all` (docs/PROTOCOL.md
//! "Order entry") and the dead-man's switch ([`super::deadman`]).
//!
//! These are the REST handlers' cores ([`super::place::place`],
//! [`super::orders::cancel`]) behind the same checks the REST middleware
//! and extractors make: the request counts against the user's REST budget
//! (the limiter's key is [`ClientKey::user`], the key the REST middleware
//! gives a request whose bearer token verifies, local or Cognito, so REST
//! and WebSocket requests of one user share one allowance, across nodes
//! with Redis), and the order body is decoded by
//! the REST decoder (unknown fields 400 `unknown_field`, ...). Errors are
//! the REST [`ApiError`]s, codes included; the caller decides how to show
//! them. Nothing here knows about WebSocket connections.

use super::model::OrderView;
use super::place::{PlaceOrderRequest, Placed};
use super::TradingState;
use crate::error::{ApiError, ApiResult};
use crate::http::ratelimit::ClientKey;
use crate::root::Api;
use crate::store::{TxKind, TxQuery};
use axum::extract::FromRef as _;

/// Most orders one cancel-all (op or switch) cancels; the rest stay open
/// and the next one cancels them.
pub const MAX_CANCEL_ALL: usize = 1_000;

/// Which open orders a cancel-all takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every open order of the user, of one pair when given.
    All { pair: Option<String> },
    /// These orders, when still open (a connection's orders).
    Only(Vec<String>),
}

/// What a cancel-all did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancelled {
    /// Orders this call cancelled, in the order it cancelled them.
    pub order_ids: Vec<String>,
    /// The first error that left an order open (the venue unavailable,
    /// the store down), if any: the order stays open.
    pub failed: Option<(String, String)>,
}

impl Api {
    /// Counts one request of `user_id` against the REST rate limit (the
    /// same key as the user's bearer-token requests); 429 `rate_limited`
    /// when over it.
    pub async fn charge(&self, user_id: &str) -> ApiResult<()> {
        match self.limiter.decide(ClientKey::user(user_id)).await {
            Some(decision) if !decision.allowed => {
                metrics::counter!("nax_rate_limited_total").increment(1);
                Err(ApiError::rate_limited(decision.retry_after_secs))
            }
            _ => Ok(()),
        }
    }

    /// `POST /orders` for `user_id` with `body` (the JSON request body):
    /// charged, decoded and placed as the REST route does.
    pub async fn place_order(&self, user_id: &str, body: &[u8]) -> ApiResult<Placed> {
        self.charge(user_id).await?;
        let req: PlaceOrderRequest = crate::http::json::decode(body)?;
        super::place::place(&TradingState::from_ref(self), user_id, &req).await
    }

    /// `DELETE /orders/{order_id}` for `user_id`, charged.
    pub async fn cancel_order(&self, user_id: &str, order_id: &str) -> ApiResult<OrderView> {
        self.charge(user_id).await?;
        super::orders::cancel(&TradingState::from_ref(self), user_id, order_id).await
    }

    /// Starts a cancel of `user_id`'s open orders in `scope` (the
    /// WebSocket `order.cancel_all`): charged as one request and checked
    /// (a pair must be listed) here; the cancels run when the returned
    /// [`CancelAll`] is run, so a caller can answer other requests
    /// meanwhile.
    pub async fn start_cancel_all(&self, user_id: &str, scope: Scope) -> ApiResult<CancelAll> {
        self.charge(user_id).await?;
        if let Scope::All { pair: Some(pair) } = &scope {
            self.trading.spec(pair)?;
        }
        Ok(CancelAll {
            state: TradingState::from_ref(self),
            user_id: user_id.to_owned(),
            scope,
        })
    }
}

/// A checked cancel-all, from [`Api::start_cancel_all`].
pub struct CancelAll {
    state: TradingState,
    user_id: String,
    scope: Scope,
}

impl CancelAll {
    /// Cancels the orders (see [`cancel_open`]).
    pub async fn run(self) -> ApiResult<Cancelled> {
        cancel_open(&self.state, &self.user_id, &self.scope).await
    }
}

/// Cancels `user_id`'s open orders in `scope` (at most [`MAX_CANCEL_ALL`]),
/// each as `DELETE /orders/{id}` does; orders that finished meanwhile are
/// skipped. Not charged: the dead-man's switch calls it for the user.
pub async fn cancel_open(
    state: &TradingState,
    user_id: &str,
    scope: &Scope,
) -> ApiResult<Cancelled> {
    let ids = match scope {
        Scope::All { pair } => open_orders(state, user_id, pair.as_deref()).await?,
        Scope::Only(ids) => ids.iter().take(MAX_CANCEL_ALL).cloned().collect(),
    };
    let mut done = Cancelled::default();
    for id in ids {
        match super::orders::cancel(state, user_id, &id).await {
            Ok(view) if view.status == "cancelled" => done.order_ids.push(id),
            Ok(_) => {}
            // Finished or unknown meanwhile: nothing to cancel.
            Err(e) if matches!(&*e.code, "order_not_open" | "order_not_found") => {}
            Err(e) => {
                if done.failed.is_none() {
                    done.failed = Some((e.code.to_string(), e.message));
                }
            }
        }
    }
    Ok(done)
}

/// Ids of `user_id`'s open and partially filled orders (of `pair`), newest
/// first (transaction ids are time-ordered), at most [`MAX_CANCEL_ALL`].
async fn open_orders(
    state: &TradingState,
    user_id: &str,
    pair: Option<&str>,
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for status in ["open", "partially_filled"] {
        // Each listing comes newest first: its first MAX_CANCEL_ALL hold
        // every id of it the merged newest MAX_CANCEL_ALL can hold.
        let mut of_status = 0;
        let mut after = None;
        loop {
            let query = TxQuery {
                kinds: vec![TxKind::Order],
                status: Some(status.to_owned()),
                pair: pair.map(str::to_owned),
                after: after.take(),
                limit: 100,
            };
            let page = state.store.transactions(user_id, &query).await?;
            of_status += page.items.len();
            ids.extend(page.items.into_iter().map(|t| t.transaction_id));
            match page.next {
                Some(next) if of_status < MAX_CANCEL_ALL => after = Some(next),
                _ => break,
            }
        }
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(MAX_CANCEL_ALL);
    Ok(ids)
}
