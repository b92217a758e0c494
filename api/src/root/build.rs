//! From configuration to running parts: [`ApiParts`] and [`Api::start`]
//! (see the module doc of [`crate::root`]).

use super::state::{Api, Components};
use crate::auth::Auth;
use crate::cluster::backplane::Backplane;
use crate::cluster::lease::Lease;
use crate::cluster::RedisLink;
use crate::config::{ApiConfig, StoreKind};
use crate::events::relay::{Gate, Relay};
use crate::events::EventPublisher;
use crate::http::ratelimit::RateLimiter;
use crate::private::PrivateBus;
use crate::queue::{Consumer, RunOptions, Source};
use crate::store::Store;
use anyhow::Context as _;
use feeds::Venue;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Which process the API parts run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A hub node serving the routes.
    Node,
    /// `nax-worker`, applying what the queues carry.
    Worker,
}

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

impl ApiParts {
    /// The parts `config` names: the store (`store`: embedded in
    /// `data_dir` or DynamoDB, its tables made when
    /// `dynamodb_create_tables`) and the event publisher (`events_to_sqs`:
    /// SQS, its queues made when `sqs_create_queues`, and the domain events
    /// also on the `eventbridge_bus` when set; else the NDJSON log in
    /// `data_dir`).
    pub async fn from_config(
        config: ApiConfig,
        data_dir: PathBuf,
        venue: Arc<dyn Venue>,
        self_url: String,
    ) -> anyhow::Result<ApiParts> {
        Ok(ApiParts {
            store: store(&config, &data_dir).await?,
            publisher: publisher(&config, &data_dir).await?,
            config,
            data_dir,
            venue,
            self_url,
        })
    }
}

/// The store `config.store` names (unlayered: `nax-worker` reads its
/// checkpoints and users through it without the API).
pub async fn store(config: &ApiConfig, dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    use crate::store::dynamo::{DynamoConfig, DynamoStore};
    Ok(match config.store {
        StoreKind::Embedded => Arc::new(
            crate::store::embedded::EmbeddedStore::open(dir)
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        ),
        StoreKind::Dynamodb => {
            let dynamo = DynamoStore::new(&DynamoConfig::from_api(config)).await;
            if config.dynamodb_create_tables {
                dynamo
                    .ensure_tables()
                    .await
                    .context("creating the DynamoDB tables")?;
            }
            Arc::new(dynamo)
        }
    })
}

/// The event publisher `config.events_to_sqs` names.
async fn publisher(config: &ApiConfig, dir: &Path) -> anyhow::Result<Arc<dyn EventPublisher>> {
    use crate::events::sqs::{SqsConfig, SqsPublisher};
    if !config.events_to_sqs {
        let log = crate::events::log::EventLog::open(dir)
            .with_context(|| format!("opening the event log in {}", dir.display()))?;
        return Ok(Arc::new(log));
    }
    let sqs = SqsConfig::from_api(config);
    if config.sqs_create_queues {
        let client = SqsPublisher::client(&sqs).await;
        SqsPublisher::ensure_queues(&client, &sqs.queue_prefix)
            .await
            .context("creating the SQS queues")?;
    }
    let sqs: Arc<dyn EventPublisher> = Arc::new(SqsPublisher::new(&sqs).await);
    if config.eventbridge_bus.is_empty() {
        return Ok(sqs);
    }
    use crate::events::eventbridge::{Both, EventBridgeConfig, EventBridgePublisher};
    let bus = EventBridgeConfig {
        bus: config.eventbridge_bus.clone(),
        endpoint: (!config.eventbridge_endpoint.is_empty())
            .then(|| config.eventbridge_endpoint.clone()),
        region: config.sqs_region.clone(),
        static_credentials: config.aws_credentials(),
    };
    Ok(Arc::new(Both {
        first: sqs,
        second: Arc::new(EventBridgePublisher::new(&bus).await),
    }))
}

/// Where the in-process webhook applier reads `webhook-processing-queue`:
/// the event log in `dir` when events go there, else SQS.
async fn webhook_source(config: &ApiConfig, dir: &Path) -> anyhow::Result<Arc<dyn Source>> {
    use crate::events::sqs::{Queue, SqsConfig};
    use crate::queue::log::{LogOptions, LogSource};
    if !config.events_to_sqs {
        let source = LogSource::open(dir, Queue::WebhookProcessing, LogOptions::default())
            .with_context(|| format!("opening the webhook queue in {}", dir.display()))?;
        return Ok(Arc::new(source));
    }
    let sqs = SqsConfig::from_api(config);
    let source = crate::queue::sqs::SqsSource::connect(&sqs, Queue::WebhookProcessing)
        .await
        .context("connecting to the webhook queue")?;
    Ok(Arc::new(source))
}

/// What [`Api::build`] builds on besides the store: the resolved provider
/// secrets, Redis, this process's URL and the outbox relay.
struct BuiltFrom<'a> {
    secrets: &'a crate::secrets::ProviderSecrets,
    redis: Option<Arc<RedisLink>>,
    self_url: &'a str,
    relay: &'a Arc<Relay>,
}

/// The node's Redis, when configured; a node starts even while it is
/// down (each part falls back).
async fn redis(config: &ApiConfig) -> anyhow::Result<Option<Arc<RedisLink>>> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let link = RedisLink::new(url.expose(), &config.redis_key_prefix)?;
    if !link.connect(Duration::from_secs(1)).await {
        tracing::warn!("redis not reachable at start; serving without it until it is");
    }
    Ok(Some(Arc::new(link)))
}

impl Api {
    /// Builds every part and starts the background tasks (outbox relay,
    /// venue order sync, the relay lease and backplane listener with
    /// Redis). The data directory is made (or tightened to) mode 0700, and
    /// `parts.store` gets two layers every part then uses:
    /// [`Sealing`](crate::seal::Sealing) with the deployment's data key
    /// (users' secrets sealed at rest) and the relay's wake-up (a commit
    /// that emits events wakes the outbox relay).
    pub async fn start(parts: ApiParts) -> anyhow::Result<Api> {
        Self::start_as(parts, Role::Node).await
    }

    /// For `nax-worker`: every part and the outbox relay (what a consumer
    /// commits emits events too), without a node's own loops (venue order
    /// sync, dead-man's switches, the private-channel backplane).
    pub async fn start_for_worker(parts: ApiParts) -> anyhow::Result<Api> {
        Self::start_as(parts, Role::Worker).await
    }

    async fn start_as(parts: ApiParts, role: Role) -> anyhow::Result<Api> {
        let ApiParts {
            config,
            data_dir,
            store: raw,
            publisher,
            venue,
            self_url,
        } = parts;
        crate::owner_only::dir(&data_dir)
            .with_context(|| format!("data directory {}", data_dir.display()))?;
        let keyring = crate::seal::keyring(&config, &data_dir, raw.as_ref())
            .await
            .context("the data key")?;
        let sealed: Arc<dyn Store> = Arc::new(crate::seal::Sealing::store(raw, keyring));
        let redis = redis(&config).await?;
        // Before anything uses them: a reference that cannot be read stops
        // the start here, naming the setting and the secret id.
        let secrets = crate::secrets::ProviderSecrets::resolve(&config)
            .await
            .context("provider secrets")?;
        // Nodes sharing a store (DynamoDB) relay its outbox one at a time.
        let relay_lease = match (&redis, config.store) {
            (Some(link), StoreKind::Dynamodb) => Some(Lease::new(link.clone(), "outbox-relay")),
            _ => None,
        };
        let gate = relay_lease
            .clone()
            .map(|lease| Arc::new(move || lease.held()) as Gate);
        let relay = Arc::new(Relay::start_gated(sealed.clone(), publisher, gate));
        let store: Arc<dyn Store> = Arc::new(relay.waking(sealed));
        let parts = BuiltFrom {
            secrets: &secrets,
            redis,
            self_url: &self_url,
            relay: &relay,
        };
        let built = Self::build(config, &data_dir, store, venue, parts).await;
        let api = match built {
            Ok(api) => api,
            Err(e) => {
                relay.stop().await;
                return Err(e);
            }
        };
        // A start that fails past this point stops what it started: the
        // loops hold the store, which a retry in the same directory needs.
        if let Err(e) = api
            .start_loops(role, &secrets, relay_lease, &data_dir)
            .await
        {
            api.stop().await;
            return Err(e);
        }
        Ok(api)
    }

    /// The node's loops: the secrets' refresh, the relay's lease, and for
    /// a node (not a worker) the backplane, the order sync, the dead-man's
    /// switches and the in-process webhook worker.
    async fn start_loops(
        &self,
        role: Role,
        secrets: &crate::secrets::ProviderSecrets,
        relay_lease: Option<Arc<Lease>>,
        data_dir: &Path,
    ) -> anyhow::Result<()> {
        if let Some(refresh) = secrets.refresh_task() {
            self.spawn(tokio::spawn(refresh));
        }
        if let Some(lease) = relay_lease {
            lease.renew().await;
            self.spawn(tokio::spawn(lease.run()));
        }
        if role == Role::Worker {
            return Ok(());
        }
        if let Some(backplane) = self.private.backplane() {
            let (node, lost_on) = (self.private.clone(), self.private.clone());
            self.spawn(tokio::spawn(backplane.clone().listen(
                move |update| {
                    node.deliver(
                        &update.user,
                        update.channel,
                        update.freshness.as_ref(),
                        update.payload,
                    )
                },
                move || lost_on.lost(),
            )));
        }
        for task in crate::trading::sync::start(axum::extract::FromRef::from_ref(self)).await? {
            self.spawn(task);
        }
        self.spawn(tokio::spawn(self.deadman.clone().run()));
        if self.config.webhook_worker_in_process {
            let source = webhook_source(&self.config, data_dir).await?;
            let applier = crate::webhooks::worker::WebhookApplier::new(
                axum::extract::FromRef::from_ref(self),
            );
            self.spawn_consumer(source, Arc::new(applier));
        }
        Ok(())
    }

    /// Runs `consumer` on `source` ([`crate::queue::run`]) until
    /// [`Api::stop`], which asks the loop to stop (the batch in hand is
    /// finished, the rest released) and waits for it.
    fn spawn_consumer(&self, source: Arc<dyn Source>, consumer: Arc<dyn Consumer>) {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let options = RunOptions {
            stop,
            ready: Arc::new(AtomicBool::new(false)),
        };
        let task = tokio::spawn(crate::queue::run(source, consumer, options));
        self.consumers.lock().push(super::state::Consumer {
            stop: stop_tx,
            task,
        });
    }

    /// Every other part, on `store` (already layered) and `from`.
    async fn build(
        config: ApiConfig,
        data_dir: &Path,
        store: Arc<dyn Store>,
        venue: Arc<dyn Venue>,
        from: BuiltFrom<'_>,
    ) -> anyhow::Result<Api> {
        // Every venue call the API makes is a span of its own
        // (`venue.place_order`, `venue.credit`, ...; docs/OPERATIONS.md,
        // "Traces").
        let venue: Arc<dyn Venue> = Arc::new(feeds::trace::TracedVenue(venue));
        let BuiltFrom {
            secrets,
            redis,
            self_url,
            relay,
        } = from;
        let auth = Auth::new(&config, data_dir, store.clone(), redis.clone()).await?;
        let (per_minute, burst) = (config.requests_per_minute, config.request_burst);
        let limiter = match &redis {
            Some(link) => RateLimiter::with_redis(per_minute, burst, link.clone()),
            None => RateLimiter::new(per_minute, burst),
        };
        let private = match &redis {
            Some(link) => PrivateBus::with_backplane(Arc::new(Backplane::new(
                link.clone(),
                config.backplane_stream_len,
            ))),
            None => PrivateBus::default(),
        };
        let trading = crate::trading::Trading::new(&config, venue.as_ref());
        let webhook_keys =
            crate::webhooks::keys::WebhookKeys::open(&config, data_dir, secrets).await?;
        let callback_base = crate::webhooks::callback_base(&config, self_url);
        let providers = crate::providers::Providers::build(&crate::providers::ProviderContext {
            config: &config,
            data_dir,
            keys: &webhook_keys,
            secrets,
            callback_base: &callback_base,
        })?;
        let wallets = crate::providers::custody::CustodyAccess::new(&config, providers.custody);
        let fiat = crate::fiat::Fiat::new(&config, providers.payments);
        let claims = crate::cluster::claim::Claims::new(redis.clone());
        let switches: Arc<dyn crate::trading::deadman::Switches> = match &redis {
            Some(link) => Arc::new(crate::trading::deadman::shared::RedisSwitches::new(
                link.clone(),
            )),
            None => Arc::new(
                crate::trading::deadman::local::LocalSwitches::load(store.clone())
                    .await
                    .context("loading the dead-man's switches")?,
            ),
        };
        let private = Arc::new(private);
        let trading = Arc::new(trading);
        let claims = Arc::new(claims);
        let deadman = crate::trading::deadman::DeadMan::new(
            switches,
            crate::trading::TradingState {
                store: store.clone(),
                venue: venue.clone(),
                trading: trading.clone(),
                claims: claims.clone(),
                private: private.clone(),
            },
        );
        Ok(Api::from(Components {
            config: Arc::new(config),
            store,
            venue,
            auth: Arc::new(auth),
            private,
            redis,
            relay: relay.clone(),
            limiter: Arc::new(limiter),
            trading,
            claims,
            webhook_keys: Arc::new(webhook_keys),
            wallets: Arc::new(wallets),
            fiat: Arc::new(fiat),
            kyc: providers.kyc,
            deadman,
            background: Default::default(),
            consumers: Default::default(),
        }))
    }
}
