//! [`Api`]: the one `Clone` state every handler gets, and how it is built
//! and started (store, venue, auth, limiter, event relay, order sync).

use crate::auth::Auth;
use crate::cluster::backplane::Backplane;
use crate::cluster::RedisLink;
use crate::config::ApiConfig;
use crate::events::relay::Relay;
use crate::events::EventPublisher;
use crate::private::PrivateBus;
use crate::store::Store;
use feeds::Venue;
use std::path::PathBuf;
use std::sync::Arc;

/// What the embedding binary hands the API.
pub struct ApiParts {
    pub config: ApiConfig,
    /// Where generated secrets (and, for the embedded store, data) live.
    pub data_dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub publisher: Arc<dyn EventPublisher>,
    pub venue: Arc<dyn Venue>,
    /// Base URL of this process (`http://127.0.0.1:8080`), for sandbox
    /// providers that call our webhooks.
    pub self_url: String,
}

/// Shared state of the REST routes.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

/// The parts behind [`Api`]; fields are public to the crate's modules.
pub struct Inner {
    pub config: ApiConfig,
    pub store: Arc<dyn Store>,
    pub venue: Arc<dyn Venue>,
    pub auth: Auth,
    pub private: PrivateBus,
    /// The node's Redis, when configured (`redis_url`).
    pub redis: Option<Arc<RedisLink>>,
    pub relay: Arc<Relay>,
    /// Per-client request limits (docs/API.md 429s).
    pub limiter: crate::http::ratelimit::RateLimiter,
    pub self_url: String,
    pub trading: Arc<crate::trading::Trading>,
    /// One request at a time per idempotency key, across nodes (orders,
    /// withdrawals).
    pub claims: Arc<crate::cluster::claim::Claims>,
    /// Secrets and keys webhooks are verified with.
    pub webhook_keys: Arc<crate::webhooks::keys::WebhookKeys>,
    /// Custody (sandbox by default) and its breaker.
    pub wallets: Arc<crate::providers::custody::CustodyAccess>,
    /// Payment providers (sandboxes by default) and their breakers.
    pub fiat: Arc<crate::fiat::Fiat>,
    /// The KYC provider (sandbox by default).
    pub kyc: Arc<dyn crate::providers::kyc::KycProvider>,
    /// Background tasks (order sync), aborted by [`Api::stop`].
    pub background: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::ops::Deref for Api {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Api {
    /// Builds every part and starts the background tasks (outbox relay,
    /// venue order sync). The data directory is made (or tightened to)
    /// mode 0700, and `parts.store` is wrapped in a
    /// [`SealedStore`](crate::seal::SealedStore) with the deployment's
    /// data key, so every part reads and writes users' secrets through it.
    pub async fn start(parts: ApiParts) -> anyhow::Result<Api> {
        use anyhow::Context as _;
        crate::owner_only::dir(&parts.data_dir)
            .with_context(|| format!("data directory {}", parts.data_dir.display()))?;
        let keyring = crate::seal::keyring(&parts.config, &parts.data_dir, parts.store.as_ref())
            .await
            .context("the data key")?;
        let store: Arc<dyn Store> = Arc::new(crate::seal::SealedStore::new(parts.store, keyring));
        let redis = match &parts.config.redis_url {
            Some(url) => {
                let link = RedisLink::new(url.expose(), &parts.config.redis_key_prefix)?;
                // A node starts even while Redis is down (each part falls back).
                if !link.connect(std::time::Duration::from_secs(1)).await {
                    tracing::warn!("redis not reachable at start; serving without it until it is");
                }
                Some(Arc::new(link))
            }
            None => None,
        };
        let auth = Auth::new(&parts.config, &parts.data_dir, store.clone(), redis.clone()).await?;
        // Nodes sharing a store (DynamoDB) relay its outbox one at a time.
        let relay_lease = match (&redis, parts.config.store) {
            (Some(link), crate::config::StoreKind::Dynamodb) => Some(
                crate::cluster::lease::Lease::new(link.clone(), "outbox-relay"),
            ),
            _ => None,
        };
        let relay = Relay::start_gated(
            store.clone(),
            parts.publisher.clone(),
            relay_lease
                .clone()
                .map(|lease| Arc::new(move || lease.held()) as crate::events::relay::Gate),
        );
        let limiter = match &redis {
            Some(link) => crate::http::ratelimit::RateLimiter::with_redis(
                parts.config.requests_per_minute,
                parts.config.request_burst,
                link.clone(),
            ),
            None => crate::http::ratelimit::RateLimiter::new(
                parts.config.requests_per_minute,
                parts.config.request_burst,
            ),
        };
        let private = match &redis {
            Some(link) => PrivateBus::with_backplane(Arc::new(Backplane::new(
                link.clone(),
                parts.config.backplane_stream_len,
            ))),
            None => PrivateBus::default(),
        };
        let trading = crate::trading::Trading::new(&parts.config, parts.venue.as_ref());
        let webhook_keys =
            crate::webhooks::keys::WebhookKeys::open(&parts.config, &parts.data_dir).await?;
        let callback_base = crate::webhooks::callback_base(&parts.config, &parts.self_url);
        let providers = crate::providers::Providers::build(&crate::providers::ProviderContext {
            config: &parts.config,
            data_dir: &parts.data_dir,
            keys: &webhook_keys,
            callback_base: &callback_base,
        })?;
        let wallets =
            crate::providers::custody::CustodyAccess::new(&parts.config, providers.custody);
        let fiat = crate::fiat::Fiat::new(&parts.config, providers.payments);
        let claims = crate::cluster::claim::Claims::new(redis.clone());
        let api = Api(Arc::new(Inner {
            config: parts.config,
            store,
            venue: parts.venue,
            auth,
            private,
            redis,
            relay: Arc::new(relay),
            limiter,
            self_url: parts.self_url,
            trading: Arc::new(trading),
            claims: Arc::new(claims),
            webhook_keys: Arc::new(webhook_keys),
            wallets: Arc::new(wallets),
            fiat: Arc::new(fiat),
            kyc: providers.kyc,
            background: parking_lot::Mutex::new(Vec::new()),
        }));
        if let Some(lease) = relay_lease {
            lease.renew().await;
            api.background.lock().push(tokio::spawn(lease.run()));
        }
        if let Some(backplane) = api.private.backplane() {
            let (node, lost_on) = (api.clone(), api.clone());
            let listener = tokio::spawn(backplane.clone().listen(
                move |update| {
                    node.private.deliver(
                        &update.user,
                        update.channel.into(),
                        update.freshness.as_ref(),
                        update.payload,
                    )
                },
                move || lost_on.private.lost(),
            ));
            api.background.lock().push(listener);
        }
        let sync = crate::trading::sync::start(api.clone()).await?;
        api.background.lock().push(sync);
        Ok(api)
    }

    /// Stops the background tasks after a last outbox drain.
    pub async fn stop(&self) {
        for task in self.background.lock().drain(..) {
            task.abort();
        }
        self.relay.stop().await;
    }
}

impl Api {
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
// KYC), cut out of [`Api`].
impl AsRef<crate::resilience::Upstream> for crate::trading::Trading {
    fn as_ref(&self) -> &crate::resilience::Upstream {
        &self.venue_upstream
    }
}

impl axum::extract::FromRef<Api> for crate::money::Ledger {
    fn from_ref(api: &Api) -> Self {
        crate::money::Ledger {
            store: api.store.clone(),
            venue: crate::money::VenueAccess::new(api.venue.clone(), api.trading.clone()),
            claims: api.claims.clone(),
            relay: api.relay.clone(),
        }
    }
}

impl axum::extract::FromRef<Api> for crate::wallets::WalletsState {
    fn from_ref(api: &Api) -> Self {
        crate::wallets::WalletsState {
            ledger: axum::extract::FromRef::from_ref(api),
            custody: api.wallets.clone(),
        }
    }
}

impl axum::extract::FromRef<Api> for crate::fiat::FiatState {
    fn from_ref(api: &Api) -> Self {
        crate::fiat::FiatState {
            ledger: axum::extract::FromRef::from_ref(api),
            fiat: api.fiat.clone(),
        }
    }
}

impl axum::extract::FromRef<Api> for crate::webhooks::WebhooksState {
    fn from_ref(api: &Api) -> Self {
        crate::webhooks::WebhooksState {
            keys: api.webhook_keys.clone(),
            ledger: axum::extract::FromRef::from_ref(api),
            custody: api.wallets.clone(),
        }
    }
}

impl axum::extract::FromRef<Api> for crate::users::kyc::KycState {
    fn from_ref(api: &Api) -> Self {
        crate::users::kyc::KycState {
            store: api.store.clone(),
            relay: api.relay.clone(),
            provider: api.kyc.clone(),
        }
    }
}
