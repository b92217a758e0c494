//! [`Api`]: the application state the composition root holds, and the
//! `FromRef` impls that give each feature its own state out of it.

use crate::auth::Auth;
use crate::cluster::claim::Claims;
use crate::cluster::RedisLink;
use crate::config::ApiConfig;
use crate::events::relay::Relay;
use crate::http::ratelimit::RateLimiter;
use crate::private::PrivateBus;
use crate::providers::kyc::KycProvider;
use crate::store::Store;
use crate::trading::{Trading, TradingState};
use crate::users::UsersState;
use axum::extract::FromRef;
use feeds::Venue;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Every part of a running API (built by [`Api::start`]). Features never
/// see it whole: the router cuts it into their states (below). The
/// embedding binary and tests read parts of it (its [`Components`],
/// through `Deref`).
///
/// One reference count: axum clones a router's state for every request
/// it hands a handler, which was 17 of them per request (~1 % of the
/// hub's CPU at 1,500 orders/s; docs/BENCHMARKS.md, "Orders: fewer
/// commits").
#[derive(Clone)]
pub struct Api(Arc<Components>);

impl std::ops::Deref for Api {
    type Target = Components;

    fn deref(&self) -> &Components {
        &self.0
    }
}

impl From<Components> for Api {
    fn from(parts: Components) -> Self {
        Api(Arc::new(parts))
    }
}

/// The parts of a running [`Api`].
pub struct Components {
    pub config: Arc<ApiConfig>,
    /// The store with its layers (sealing, relay wake-up).
    pub store: Arc<dyn Store>,
    pub venue: Arc<dyn Venue>,
    pub auth: Arc<Auth>,
    pub private: Arc<PrivateBus>,
    /// The node's Redis, when configured (`redis_url`).
    pub redis: Option<Arc<RedisLink>>,
    pub relay: Arc<Relay>,
    /// Per-client request limits (docs/API.md 429s).
    pub limiter: Arc<RateLimiter>,
    pub trading: Arc<Trading>,
    /// One request at a time per idempotency key, across nodes (orders,
    /// withdrawals).
    pub claims: Arc<Claims>,
    /// Secrets and keys webhooks are verified with.
    pub webhook_keys: Arc<crate::webhooks::keys::WebhookKeys>,
    /// Custody (sandbox by default) and its breaker.
    pub wallets: Arc<crate::providers::custody::CustodyAccess>,
    /// Payment providers (sandboxes by default) and their breakers.
    pub fiat: Arc<crate::fiat::Fiat>,
    /// Where identity documents are reviewed (the sandbox by default).
    pub kyc: Arc<dyn KycProvider>,
    /// The dead-man's switches (`cancel_after`, cancel_on_disconnect).
    pub deadman: Arc<crate::trading::deadman::DeadMan>,
    /// Background tasks, aborted by [`Api::stop`].
    pub(super) background: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
    /// The in-process queue consumers ([`crate::queue::run`]): each one's
    /// stop signal and task, stopped first by [`Api::stop`].
    pub(super) consumers: Arc<parking_lot::Mutex<Vec<Consumer>>>,
}

/// An in-process consumer loop: its stop signal and its task.
pub(super) struct Consumer {
    pub(super) stop: tokio::sync::watch::Sender<bool>,
    pub(super) task: JoinHandle<()>,
}

/// How long [`Api::stop`] lets an in-process consumer finish the batch
/// in hand before it aborts it (what it did not settle comes back).
const CONSUMER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl FromRef<Api> for Arc<Auth> {
    fn from_ref(api: &Api) -> Self {
        api.auth.clone()
    }
}

impl FromRef<Api> for UsersState {
    fn from_ref(api: &Api) -> Self {
        UsersState {
            store: api.store.clone(),
            kyc: api.kyc.clone(),
        }
    }
}

impl FromRef<Api> for TradingState {
    fn from_ref(api: &Api) -> Self {
        TradingState {
            store: api.store.clone(),
            venue: api.venue.clone(),
            trading: api.trading.clone(),
            claims: api.claims.clone(),
            private: api.private.clone(),
        }
    }
}

impl Api {
    /// Keeps a background task to abort on [`stop`](Self::stop).
    pub(super) fn spawn(&self, task: JoinHandle<()>) {
        self.background.lock().push(task);
    }

    /// Stops the in-process consumers (each finishes the batch in hand,
    /// within [`CONSUMER_GRACE`]), then the background tasks, then the
    /// outbox relay after a last drain. Waits until each task is gone: an
    /// abort only asks, and a task that is still being dropped can hold
    /// the store open (a hub restarted in the same data directory found it
    /// locked).
    pub async fn stop(&self) {
        let consumers: Vec<_> = self.consumers.lock().drain(..).collect();
        for consumer in &consumers {
            let _ = consumer.stop.send(true);
        }
        for mut consumer in consumers {
            if tokio::time::timeout(CONSUMER_GRACE, &mut consumer.task)
                .await
                .is_err()
            {
                tracing::warn!(
                    "an in-process consumer was still busy after the stop grace; aborted"
                );
                consumer.task.abort();
                let _ = consumer.task.await;
            }
        }
        let tasks: Vec<_> = self.background.lock().drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        self.relay.stop().await;
    }

    /// The `market:{pair}:orderbook` cache in the node's Redis, when
    /// configured (the hub writes its books there).
    pub fn book_cache(&self) -> Option<crate::cluster::book_cache::BookCache> {
        self.redis
            .clone()
            .map(crate::cluster::book_cache::BookCache::new)
    }

    /// What keeps the API from serving (for `GET /ready`): `store` when the
    /// store does not answer; `venue`, `custody` or a provider while its
    /// circuit breaker is open.
    pub async fn not_ready(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.store.ping().await {
            tracing::warn!(error = %e, "store not ready");
            out.push("store".to_owned());
        }
        // An open breaker means calls fail fast: name what is down.
        let breakers = [&self.trading.venue_upstream, &self.wallets.custody_upstream]
            .into_iter()
            .chain(self.fiat.upstreams());
        out.extend(
            breakers
                .filter(|u| u.is_open())
                .map(|u| u.name().to_owned()),
        );
        out
    }
}

// The per-feature states of the money routes (wallets, fiat, webhooks,
// KYC).
impl AsRef<crate::resilience::Upstream> for Trading {
    fn as_ref(&self) -> &crate::resilience::Upstream {
        &self.venue_upstream
    }
}

impl FromRef<Api> for crate::money::Ledger {
    fn from_ref(api: &Api) -> Self {
        crate::money::Ledger {
            store: api.store.clone(),
            venue: crate::money::VenueAccess::new(api.venue.clone(), api.trading.clone()),
            claims: api.claims.clone(),
        }
    }
}

impl FromRef<Api> for crate::wallets::WalletsState {
    fn from_ref(api: &Api) -> Self {
        crate::wallets::WalletsState {
            ledger: FromRef::from_ref(api),
            custody: api.wallets.clone(),
        }
    }
}

impl FromRef<Api> for crate::fiat::FiatState {
    fn from_ref(api: &Api) -> Self {
        crate::fiat::FiatState {
            ledger: FromRef::from_ref(api),
            fiat: api.fiat.clone(),
        }
    }
}

impl FromRef<Api> for crate::webhooks::WebhooksState {
    fn from_ref(api: &Api) -> Self {
        crate::webhooks::WebhooksState {
            keys: api.webhook_keys.clone(),
            ledger: FromRef::from_ref(api),
            custody: api.wallets.clone(),
        }
    }
}

impl FromRef<Api> for crate::http::ratelimit::LimitState {
    fn from_ref(api: &Api) -> Self {
        crate::http::ratelimit::LimitState {
            auth: api.auth.clone(),
            limiter: api.limiter.clone(),
        }
    }
}
