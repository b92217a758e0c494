//! Trading (docs/API.md "Orders"): orders go to the [`feeds::Venue`] through
//! the venue's circuit breaker, are idempotent on `client_order_id`, and
//! are persisted with their fills as transactions; [`sync`] keeps them
//! current from the venue's user events and feeds the private channels.
//! [`entry`] is order entry for the hub's WebSocket ops (the same cores as
//! the routes), [`deadman`] the dead-man's switch.

pub mod backlog;
mod committed;
pub mod deadman;
pub mod entry;
pub mod model;
mod orders;
mod place;
pub(crate) use place::check_body as check_order_body;
pub use place::{PlaceOrderRequest, Placed};
pub mod sync;

use crate::auth::Auth;
use crate::cluster::claim::Claims;
use crate::error::ApiError;
use crate::private::PrivateBus;
use crate::resilience::Upstream;
use crate::store::Store;
use axum::extract::FromRef;
use dashmap::DashMap;
use feeds::{Venue, VenueError};
use orderbook::MarketSpec;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the trading routes and the order sync use.
#[derive(Clone)]
pub struct TradingState {
    pub store: Arc<dyn Store>,
    pub venue: Arc<dyn Venue>,
    pub trading: Arc<Trading>,
    /// One request at a time per `client_order_id`, across nodes.
    pub claims: Arc<Claims>,
    /// Where order and balance changes go to the private channels.
    pub private: Arc<PrivateBus>,
}

/// Trading state: the venue's pairs, its breaker, per-user order locks.
pub struct Trading {
    specs: HashMap<String, MarketSpec>,
    /// Timeout, retry and breaker policy of every venue call.
    pub venue_upstream: Upstream,
    user_locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Orders `POST /orders` committed, for the sync waiting on them.
    commits: committed::OrderCommits,
    /// Venue events the sync holds; new orders wait while it is full.
    pub backlog: backlog::Backlog,
}

impl Trading {
    pub fn new(config: &crate::config::ApiConfig, venue: &dyn Venue) -> Self {
        Trading {
            specs: venue
                .markets()
                .into_iter()
                .map(|m| (m.symbol.clone(), m))
                .collect(),
            venue_upstream: Upstream::new("venue", crate::resilience::policy(config)),
            user_locks: DashMap::new(),
            commits: committed::OrderCommits::default(),
            backlog: backlog::Backlog::new(config.order_sync_backlog_max),
        }
    }

    /// The spec of a pair the venue trades, or 422 `unknown_pair`.
    pub fn spec(&self, pair: &str) -> Result<&MarketSpec, ApiError> {
        self.specs.get(pair).ok_or_else(|| {
            // Echo at most a pair-sized prefix of what the client sent.
            let shown: String = pair.chars().take(32).collect();
            ApiError::unprocessable("unknown_pair", format!("no such pair: {shown}"))
        })
    }

    /// Serializes one user's order placements on this node (idempotency
    /// check, venue call, commit); across nodes, requests with one
    /// `client_order_id` are serialized by its claim
    /// ([`crate::cluster::claim`]).
    async fn lock_user(&self, user_id: &str) -> UserLock<'_> {
        let lock = self
            .user_locks
            .entry(user_id.to_owned())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        UserLock {
            trading: self,
            user_id: user_id.to_owned(),
            lock,
            _guard: guard,
        }
    }
}

/// A held per-user lock; forgets the user's mutex on release when nobody
/// else holds or waits for it (bounded memory).
struct UserLock<'a> {
    trading: &'a Trading,
    user_id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for UserLock<'_> {
    fn drop(&mut self) {
        // References: the map's, `self.lock`, and the guard's. Waiters
        // clone under the map's shard lock, which `remove_if` holds.
        self.trading.user_locks.remove_if(&self.user_id, |_, l| {
            Arc::ptr_eq(l, &self.lock) && Arc::strong_count(l) <= 3
        });
    }
}

/// Whether a venue error means the venue is down (counts against the
/// breaker) rather than an answer.
pub fn venue_failure(e: &VenueError) -> bool {
    // `PartUnavailable` is not: one venue of several down must not open
    // the breaker in front of all of them (docs/ARCHITECTURE.md,
    // "Several venues").
    matches!(e, VenueError::Unavailable(_))
}

/// The API error of a venue answer.
pub fn venue_error(e: VenueError) -> ApiError {
    match e {
        VenueError::InsufficientFunds => {
            ApiError::unprocessable("insufficient_funds", "insufficient funds")
        }
        VenueError::UnknownPair(p) => {
            ApiError::unprocessable("unknown_pair", format!("no such pair: {p}"))
        }
        VenueError::UnknownAsset(a) => {
            ApiError::unprocessable("unsupported_asset", format!("no such asset: {a}"))
        }
        VenueError::InvalidOrder(why) => ApiError::unprocessable("invalid_order", why),
        VenueError::InvalidAmount(why) => ApiError::unprocessable("invalid_amount", why),
        VenueError::OrderNotFound => ApiError::not_found("order_not_found", "no such order"),
        VenueError::OrderNotOpen => ApiError::conflict("order_not_open", "the order is not open"),
        VenueError::MarketHalted { pair, reason } => ApiError::conflict(
            "market_halted",
            format!("trading in {pair} is halted: {reason}"),
        ),
        VenueError::Unavailable(why) => ApiError::unavailable(
            "upstream_unavailable",
            format!("venue unavailable: {why}"),
            1,
        ),
        part @ VenueError::PartUnavailable { .. } => {
            ApiError::unavailable("upstream_unavailable", part.to_string(), 1)
        }
    }
}

/// `/orders` and `/trades/history`, on any state both [`TradingState`]
/// and the [`Auth`] can be had from.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    TradingState: FromRef<S>,
    Arc<Auth>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(place::place_order, orders::list_orders))
        .routes(routes!(orders::get_order, orders::cancel_order))
        .routes(routes!(orders::trade_history))
}
