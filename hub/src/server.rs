//! The HTTP surface of the hub: the trading page (`/`, `/assets/*`,
//! `/client/*`: `server/page.rs`), `/ws`, `/health`, `/ready`, `/markets`,
//! `/markets/{pair}/orderbook`, the market-data reads of
//! `server/market_data.rs`, `/metrics`, `/asyncapi.yaml`. Handlers are
//! thin; state is one `Clone` struct.

mod market_data;
mod page;

pub use page::CONTENT_SECURITY_POLICY;

use crate::market::Markets;
use crate::session::{ws_handler, HubContext};
use api::http::{ApiPath, ApiQuery};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// docs/asyncapi.yaml: the WebSocket protocol as an AsyncAPI 3 document,
/// served as it is in the repository.
pub const ASYNCAPI_YAML: &str = include_str!("../../docs/asyncapi.yaml");

/// Default and maximum `depth` of `GET /markets/{pair}/orderbook`.
const DEFAULT_DEPTH: usize = 50;
const MAX_DEPTH: usize = 1000;

#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<HubContext>,
    pub metrics: PrometheusHandle,
}

impl AppState {
    fn markets(&self) -> &Markets {
        &self.hub.markets
    }
}

/// The OpenAPI description of the hub's own routes (merged into the API's
/// `/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    health,
    ready,
    markets,
    orderbook,
    market_data::ticker,
    market_data::tickers,
    market_data::candles,
    market_data::trades,
    metrics_text,
    asyncapi
))]
pub struct HubDoc;

/// The hub's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/{*file}", get(page::page_asset))
        .route("/client/{*file}", get(page::client_asset))
        .route("/ws", get(ws_handler).with_state(state.hub.clone()))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/markets", get(markets))
        .route("/markets/{pair}/orderbook", get(orderbook))
        .route("/markets/tickers", get(market_data::tickers))
        .route("/markets/{pair}/ticker", get(market_data::ticker))
        .route("/markets/{pair}/candles", get(market_data::candles))
        .route("/markets/{pair}/trades", get(market_data::trades))
        .route("/metrics", get(metrics_text))
        .route("/asyncapi.yaml", get(asyncapi))
        .with_state(state)
}

/// The error body of docs/API.md (with the request's id).
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    api::ApiError::new(status, code.to_owned(), message).into_response()
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when every book is warm and live and every dependency
/// answers; 503 naming what is not ready (`book:PAIR` cold, `stale:PAIR`
/// silent upstream, `upstream` disconnected, `store`, `venue`, `custody`,
/// a payment provider).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ready\"}`"),
              (status = 503, description = "`{\"status\": \"not_ready\", \"not_ready\": [...]}`")))]
async fn ready(State(s): State<AppState>) -> Response {
    let mut not_ready: Vec<String> = s
        .markets()
        .cold_pairs()
        .iter()
        .map(|p| format!("book:{p}"))
        .collect();
    not_ready.extend(
        s.markets()
            .stale_pairs()
            .iter()
            .map(|p| format!("stale:{p}")),
    );
    if let Some(why) = s.markets().upstream_problem() {
        tracing::debug!(reason = %why, "upstream not ready");
        not_ready.push("upstream".to_owned());
    }
    if let Some(api) = &s.hub.api {
        not_ready.extend(api.not_ready().await);
    }
    if not_ready.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let body = json!({"status": "not_ready", "not_ready": not_ready});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// The pairs: `[{pair, base, quote, price_scale, qty_scale, min_qty,
/// status, status_reason}]`. `status` is the pair's market state on this
/// node, as on the `status` WebSocket channel (docs/PROTOCOL.md, "Market
/// status"): `online`, `stale`, `halted` or `resyncing`; `status_reason`
/// says why (`null` when `online`).
#[utoipa::path(get, path = "/markets", tag = "markets", responses((status = 200,
    description = "The pairs, each with `status` (`online`, `stale`, `halted`, `resyncing`) and `status_reason` (string, or null when online)")))]
async fn markets(State(s): State<AppState>) -> Json<serde_json::Value> {
    let statuses = s.markets().statuses();
    let list: Vec<_> = s
        .markets()
        .specs()
        .iter()
        .map(|m| {
            let status = statuses.iter().find(|st| st.pair == m.symbol);
            json!({
                "pair": m.symbol, "base": m.base, "quote": m.quote,
                "price_scale": m.price_scale, "qty_scale": m.qty_scale,
                "min_qty": m.format_qty(m.min_qty),
                "status": status.map(|st| st.state.as_str()),
                "status_reason": status.and_then(|st| st.reason.as_deref()),
            })
        })
        .collect();
    Json(json!(list))
}

#[derive(Deserialize)]
struct DepthQuery {
    depth: Option<String>,
}

/// The in-memory book: `{pair, seq, epoch, ts, bids, asks, checksum}`
/// (same numbers and checksum as the WebSocket protocol).
#[utoipa::path(get, path = "/markets/{pair}/orderbook", tag = "markets",
    params(("pair" = String, Path, description = "e.g. BTC-USD"),
           ("depth" = Option<usize>, Query, description = "levels per side, 1..=1000, default 50")),
    responses((status = 200, description = "The book"),
              (status = 404, description = "unknown_pair", body = api::error::ErrorBody),
              (status = 422, description = "invalid_depth", body = api::error::ErrorBody)))]
async fn orderbook(
    State(s): State<AppState>,
    ApiPath(pair): ApiPath<String>,
    ApiQuery(q): ApiQuery<DepthQuery>,
) -> Response {
    let depth = match q.depth.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_DEPTH,
        Some(Ok(d)) if (1..=MAX_DEPTH).contains(&d) => d,
        Some(_) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_depth",
                format!("depth must be 1..={MAX_DEPTH}"),
            )
        }
    };
    match s.markets().orderbook(&pair, depth).await {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_pair",
            format!("no such pair: {pair}"),
        ),
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
async fn metrics_text(State(s): State<AppState>) -> Response {
    crate::logging::record_dropped_lines();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&s.metrics),
    )
        .into_response()
}

/// The WebSocket protocol of `GET /ws` (docs/PROTOCOL.md) as an AsyncAPI
/// 3.0 document.
#[utoipa::path(get, path = "/asyncapi.yaml", tag = "operations",
    responses((status = 200, description = "docs/asyncapi.yaml", content_type = "application/yaml")))]
async fn asyncapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], ASYNCAPI_YAML).into_response()
}
