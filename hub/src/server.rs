//! The HTTP surface of the hub: `/ws`, `/health`, `/ready`, `/markets`,
//! `/markets/{pair}/orderbook`, `/metrics`. Handlers are thin; state is one
//! `Clone` struct.

use crate::market::Markets;
use crate::session::{ws_handler, HubContext};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

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

/// The hub's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws_handler).with_state(state.hub.clone()))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/markets", get(markets))
        .route("/markets/{pair}/orderbook", get(orderbook))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// The error body of API.md.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into(), "request_id": ""}});
    (status, Json(body)).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(s): State<AppState>) -> Response {
    let cold = s.markets().cold_pairs();
    if cold.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let body = json!({"status": "not_ready", "not_ready": cold.iter().map(|p| format!("book:{p}")).collect::<Vec<_>>()});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn markets(State(s): State<AppState>) -> Json<serde_json::Value> {
    let cold = s.markets().cold_pairs();
    let list: Vec<_> = s
        .markets()
        .specs()
        .iter()
        .map(|m| {
            json!({
                "pair": m.symbol, "base": m.base, "quote": m.quote,
                "price_scale": m.price_scale, "qty_scale": m.qty_scale,
                "min_qty": m.format_qty(m.min_qty),
                "status": if cold.contains(&m.symbol) { "stale" } else { "online" },
            })
        })
        .collect();
    Json(json!(list))
}

#[derive(Deserialize)]
struct DepthQuery {
    depth: Option<String>,
}

async fn orderbook(
    State(s): State<AppState>,
    Path(pair): Path<String>,
    Query(q): Query<DepthQuery>,
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

async fn metrics_text(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
