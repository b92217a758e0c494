//! Builds and runs the whole hub from a [`Config`]: venue, book cache,
//! fan-out, HTTP server; and stops it gracefully. Used by `main` and by
//! the integration tests, which run real hubs on 127.0.0.1.

use crate::config::{Config, VenueKind};
use crate::fanout::ShardPool;
use crate::market::{HistoryLimits, Markets, Upstream, UpstreamOptions};
use crate::server::{router, AppState};
use crate::session::HubContext;
use crate::shutdown::Shutdown;
use feeds::{MarketFeed, SandboxConfig, SandboxVenue, Venue};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A started hub.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub context: Arc<HubContext>,
    /// The REST API, when the hub runs one (it needs a venue).
    pub api: Option<api::Api>,
    /// The in-process sandbox, when the hub runs one.
    pub venue: Option<SandboxVenue>,
    /// The queue consumers it runs in process (`[worker] in_process`).
    consumers: Option<worker::Running>,
    shutdown: Shutdown,
    server: JoinHandle<()>,
    drain: Duration,
}

/// Starts everything and binds the port; returns once the hub accepts
/// connections.
pub async fn start(config: &Config) -> anyhow::Result<RunningHub> {
    // The start futures are boxed: unboxed, the callers' futures nest past
    // the compiler's layout depth limit (tests that start hubs in loops).
    if !config.venues.is_empty() {
        return Box::pin(start_venues(config)).await;
    }
    match config.venue.kind {
        VenueKind::Sandbox => {
            let venue = SandboxVenue::start(SandboxConfig {
                events_per_sec: config.venue.events_per_sec,
                seed: config.venue.seed,
                ..SandboxConfig::default()
            })?;
            let api_venue: Arc<dyn Venue> = Arc::new(venue.clone());
            let upstream = Upstream {
                name: "sandbox".into(),
                feed: Arc::new(venue.clone()),
                pairs: Vec::new(),
                options: upstream_options(&config.venue, false),
            };
            Box::pin(start_parts(
                config,
                vec![upstream],
                Some(api_venue),
                Some(venue),
            ))
            .await
        }
        VenueKind::Graphql => {
            let venue = config.venue.connect_graphql().await?;
            crate::shift_stats::export("venue", &venue);
            let feed: Arc<dyn MarketFeed> = venue.clone();
            let api_venue: Arc<dyn Venue> = venue;
            let upstream = Upstream {
                name: "venue".into(),
                feed,
                pairs: Vec::new(),
                options: upstream_options(&config.venue, true),
            };
            Box::pin(start_parts(config, vec![upstream], Some(api_venue), None)).await
        }
    }
}

/// Starts the hub on every venue of `[[venues]]`: each one's pairs served
/// from its own stream, the REST API trading on all of them
/// (docs/ARCHITECTURE.md, "Several venues").
async fn start_venues(config: &Config) -> anyhow::Result<RunningHub> {
    let connected = crate::config::connect_all(&config.venues).await?;
    let api_venue: Arc<dyn Venue> = Arc::new(crate::config::multi_venue(&connected)?);
    let upstreams = connected
        .into_iter()
        .map(|c| {
            crate::shift_stats::export(&c.entry.name, &c.venue);
            let options = upstream_options(&c.entry.as_venue()?, true);
            Ok(Upstream {
                name: c.entry.name,
                feed: c.venue,
                pairs: c.entry.pairs,
                options,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    start_parts(config, upstreams, Some(api_venue), None).await
}

/// How the book cache treats a venue configured as `venue`;
/// `resubscribe` when its stream may end and come back with a new epoch.
fn upstream_options(venue: &crate::config::VenueConfig, resubscribe: bool) -> UpstreamOptions {
    UpstreamOptions {
        resubscribe,
        stale_after: (venue.stale_after_ms > 0)
            .then(|| Duration::from_millis(venue.stale_after_ms)),
        backoff_min: Duration::from_millis(venue.backoff_min_ms.max(1)),
        backoff_max: Duration::from_millis(venue.backoff_max_ms.max(1)),
    }
}

/// Starts the hub on any market feed (e.g. a replay recording in tests);
/// `venue` is stopped with the hub. With a venue the REST API runs too
/// (store and event log in `config.data_dir`); without one, only market
/// data is served.
pub async fn start_with_feed(
    config: &Config,
    feed: Arc<dyn MarketFeed>,
    venue: Option<SandboxVenue>,
) -> anyhow::Result<RunningHub> {
    let api_venue = venue.clone().map(|v| Arc::new(v) as Arc<dyn Venue>);
    let upstream = Upstream {
        name: "feed".into(),
        feed,
        pairs: Vec::new(),
        options: upstream_options(&config.venue, false),
    };
    start_parts(config, vec![upstream], api_venue, venue).await
}

/// Starts the hub: market data from `upstreams`, the REST API on
/// `api_venue` (when given), `venue` (a sandbox) stopped with the hub.
async fn start_parts(
    config: &Config,
    upstreams: Vec<Upstream>,
    api_venue: Option<Arc<dyn Venue>>,
    venue: Option<SandboxVenue>,
) -> anyhow::Result<RunningHub> {
    let metrics = crate::metrics::install()?;
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let history = HistoryLimits {
        max_messages: config.history.max_messages,
        max_age: Duration::from_millis(config.history.max_age_ms),
    };
    let archive = open_archive(config).await?;
    let markets = Markets::start(upstreams, history, ShardPool::start(shards), archive).await?;
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind((config.bind, config.port)).await?;
    let addr = listener.local_addr()?;
    let api = match api_venue {
        Some(venue) => Some(start_api(config, addr, venue).await?),
        None => None,
    };
    let consumers = match &api {
        Some(api) => Some(worker::commands::start_in_hub(config, api).await?),
        None => None,
    };
    if let Some(cache) = api.as_ref().and_then(api::Api::book_cache) {
        tokio::spawn(crate::market::cache::run(
            markets.clone(),
            cache,
            shutdown.clone(),
        ));
    }
    let context = Arc::new(HubContext::new(
        markets,
        config.limits.clone(),
        config.reconnect_after_ms,
        crate::session::OriginPolicy::new(&config.allowed_origins),
        shutdown.clone(),
        api.clone(),
        config.http.max_connections_per_ip,
    ));
    let mut app = router(AppState {
        hub: context.clone(),
        metrics: metrics.clone(),
    });
    if let Some(api) = &api {
        let doc = <crate::server::HubDoc as utoipa::OpenApi>::openapi();
        app = app.merge(api::router_with_doc(api.clone(), doc));
    }
    api::http::access::set_slow_after(std::time::Duration::from_millis(
        config.http.slow_request_ms,
    ));
    let app = api::http::layers(app);
    tokio::spawn(crate::metrics::upkeep(
        metrics,
        crate::metrics::DEFAULT_UPKEEP_INTERVAL,
        shutdown.clone(),
    ));
    let server = tokio::spawn(crate::listener::serve(
        listener,
        app,
        crate::listener::ServerOptions::from_config(config),
        shutdown.clone(),
    ));
    Ok(RunningHub {
        addr,
        context,
        api,
        consumers,
        venue,
        shutdown,
        server,
        drain: Duration::from_millis(config.shutdown_drain_ms),
    })
}

impl RunningHub {
    /// Graceful shutdown: stop accepting, tell every client (`shutdown`
    /// message, close 1001), wait up to the drain time for them to go, stop
    /// reading the market streams and archive what was read, stop the
    /// in-process workers, the REST API and the venue.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let deadline = tokio::time::Instant::now() + self.drain;
        while self.context.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.context.connections();
        if left > 0 {
            tracing::warn!(left, "connections still open after the drain time");
        }
        let _ = tokio::time::timeout(self.drain, self.server).await;
        self.context.markets.stop(self.drain).await;
        if let Some(consumers) = self.consumers {
            consumers.stop().await;
        }
        if let Some(api) = &self.api {
            api.stop().await;
        }
        if let Some(venue) = self.venue {
            venue.stop().await;
        }
    }
}

/// Starts the REST API on the venue: api's composition root builds every
/// backend (store, event publisher, providers, Redis parts) from
/// `config.api`, in `config.data_dir`.
async fn start_api(
    config: &Config,
    addr: SocketAddr,
    venue: Arc<dyn Venue>,
) -> anyhow::Result<api::Api> {
    // Sandbox providers call our webhooks: over loopback when bound to all
    // interfaces.
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let parts = api::ApiParts::from_config(
        config.api.clone(),
        config.data_dir.clone(),
        venue,
        format!("http://{host}"),
    )
    .await?;
    api::Api::start(parts).await
}

/// The market archive (docs/ARCHITECTURE.md, "Market archive"): candles,
/// the 24 h figures and the trade history survive a restart through it.
/// Embedded (`market.redb` in `config.data_dir`) or DynamoDB as
/// `config.api.store` says; an empty `data_dir` with the embedded store
/// runs without one (candles in memory only).
async fn open_archive(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn api::market_archive::MarketArchive>>> {
    let embedded = matches!(config.api.store, api::config::StoreKind::Embedded);
    if embedded && config.data_dir.as_os_str().is_empty() {
        tracing::warn!("no data_dir: candles and trade history are kept in memory only");
        return Ok(None);
    }
    Ok(Some(
        api::market_archive::open(&config.api, &config.data_dir).await?,
    ))
}
