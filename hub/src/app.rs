//! Builds and runs the whole hub from a [`Config`]: venue, book cache,
//! fan-out, HTTP server; and stops it gracefully. Used by `main` and by
//! the integration tests, which run real hubs on 127.0.0.1.

use crate::config::{Config, VenueKind};
use crate::fanout::ShardPool;
use crate::market::{HistoryLimits, Markets};
use crate::server::{router, AppState};
use crate::session::HubContext;
use crate::shutdown::Shutdown;
use axum::serve::ListenerExt;
use feeds::{MarketFeed, SandboxConfig, SandboxVenue};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A started hub.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub context: Arc<HubContext>,
    /// The in-process sandbox, when the hub runs one.
    pub venue: Option<SandboxVenue>,
    shutdown: Shutdown,
    server: JoinHandle<std::io::Result<()>>,
    drain: Duration,
}

/// Starts everything and binds the port; returns once the hub accepts
/// connections.
pub async fn start(config: &Config) -> anyhow::Result<RunningHub> {
    let venue = match config.venue.kind {
        VenueKind::Sandbox => SandboxVenue::start(SandboxConfig {
            events_per_sec: config.venue.events_per_sec,
            seed: config.venue.seed,
            ..SandboxConfig::default()
        })?,
    };
    start_with_feed(config, &venue.clone(), Some(venue)).await
}

/// Starts the hub on any market feed (e.g. a replay recording in tests);
/// `venue` is stopped with the hub.
pub async fn start_with_feed(
    config: &Config,
    feed: &dyn MarketFeed,
    venue: Option<SandboxVenue>,
) -> anyhow::Result<RunningHub> {
    let metrics = crate::metrics::install()?;
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let history = HistoryLimits {
        max_messages: config.history.max_messages,
        max_age: Duration::from_millis(config.history.max_age_ms),
    };
    let markets = Markets::start(feed, history, ShardPool::start(shards)).await?;
    let shutdown = Shutdown::new();
    let context = Arc::new(HubContext::new(
        markets,
        config.limits.clone(),
        config.reconnect_after_ms,
        shutdown.clone(),
    ));
    let app = router(AppState {
        hub: context.clone(),
        metrics: metrics.clone(),
    });
    let listener = tokio::net::TcpListener::bind((config.bind, config.port)).await?;
    let addr = listener.local_addr()?;
    let send_buffer = config.limits.socket_send_buffer_bytes;
    // Small frames go out at once (no Nagle delay), and a bounded kernel
    // buffer lets the outbound queue, not the kernel, absorb a slow client.
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
    });
    tokio::spawn(crate::metrics::upkeep(
        metrics,
        crate::metrics::DEFAULT_UPKEEP_INTERVAL,
        shutdown.clone(),
    ));
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
    });
    Ok(RunningHub {
        addr,
        context,
        venue,
        shutdown,
        server,
        drain: Duration::from_millis(config.shutdown_drain_ms),
    })
}

impl RunningHub {
    /// Graceful shutdown: stop accepting, tell every client (`shutdown`
    /// message, close 1001), wait up to the drain time for them to go, stop
    /// the venue.
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
        if let Some(venue) = self.venue {
            venue.stop().await;
        }
    }
}
