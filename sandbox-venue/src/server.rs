//! Starting and stopping a venue server: the sandbox, the schema, the
//! router (`/graphql` over HTTP and WebSocket, `/health`, `/admin/*`), and graceful
//! shutdown that closes WebSocket connections with 1001.

use crate::auth::BearerToken;
use crate::config::{ServerLimits, VenueServerConfig};
use crate::http::{error_response, graphql_post, require_bearer};
use crate::schema::{build_schema, VenueSchema, VenueState};
use crate::{admin, ws};
use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use feeds::SandboxVenue;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every handler reads. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub schema: VenueSchema,
    pub state: VenueState,
    pub token: BearerToken,
    pub limits: ServerLimits,
    /// Becomes true when the server stops.
    pub shutdown: watch::Receiver<bool>,
}

/// The server's routes over `app`.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/graphql", get(ws::upgrade).post(graphql_post))
        .merge(admin::routes())
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, None, "no such route") })
        .layer(from_fn_with_state(app.clone(), require_bearer))
        // Liveness for container health checks, without the token (added
        // after the bearer layer, so outside it; docs/CONTAINER.md).
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .layer(DefaultBodyLimit::max(app.limits.max_body_bytes))
        .with_state(app)
}

/// A server running on tokio tasks until [`RunningVenueServer::stop`].
pub struct RunningVenueServer {
    addr: SocketAddr,
    venue: SandboxVenue,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Binds `config.bind`, starts the sandbox venue and serves it. Returns
/// once the socket is bound, so [`RunningVenueServer::addr`] is ready for
/// clients. Must be called inside a tokio runtime.
pub async fn serve(config: VenueServerConfig) -> anyhow::Result<RunningVenueServer> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let venue = SandboxVenue::start(config.sandbox).context("starting the sandbox venue")?;
    let state = VenueState::new(venue.clone());
    let (shutdown, stopping) = watch::channel(false);
    let app = App {
        schema: build_schema(state.clone(), config.limits.query),
        state,
        token: config.token,
        limits: config.limits,
        shutdown: stopping.clone(),
    };
    let routes = router(app);
    let task = tokio::spawn(async move {
        let mut stopping = stopping;
        axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(%addr, "venue server listening");
    Ok(RunningVenueServer {
        addr,
        venue,
        shutdown,
        task,
    })
}

impl RunningVenueServer {
    /// The bound address (the real port when `bind` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sandbox being served (for tests that inspect it directly).
    pub fn venue(&self) -> &SandboxVenue {
        &self.venue
    }

    /// Stops accepting, closes WebSocket connections (1001), waits for
    /// in-flight HTTP requests, then stops the sandbox.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.task.await.context("the server task panicked")?;
        self.venue.stop().await;
        served.context("serving")
    }
}
