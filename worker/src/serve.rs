//! `nax-worker`'s own HTTP endpoints: `/health` (the process runs),
//! `/ready` (every consumer recovered and its queue answers; 503 with the
//! ones that are not) and `/metrics` (Prometheus text: processed and
//! failed counts, lag, oldest message age, queue and dead-letter depth,
//! and each consumer's own).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone)]
struct Endpoints {
    metrics: PrometheusHandle,
    ready: Arc<Vec<(&'static str, Arc<AtomicBool>)>>,
}

/// Installs the Prometheus recorder (once per process).
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
    Ok(handle)
}

/// Serves the endpoints on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    ready: Vec<(&'static str, Arc<AtomicBool>)>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(readiness))
        .route("/metrics", get(render))
        .with_state(Endpoints {
            metrics,
            ready: Arc::new(ready),
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

/// Binds `addr` (127.0.0.1 by default: a sidecar or the ALB's health
/// check reaches it in the task).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

async fn readiness(State(endpoints): State<Endpoints>) -> (StatusCode, String) {
    let waiting: Vec<&str> = endpoints
        .ready
        .iter()
        .filter(|(_, ready)| !ready.load(Ordering::Relaxed))
        .map(|(name, _)| *name)
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", waiting.join(", ")),
        )
    }
}

async fn render(State(endpoints): State<Endpoints>) -> String {
    nax_config::logging::record_dropped_lines();
    endpoints.metrics.render()
}
