//! TEST-ONLY fault-injection routes, behind the same bearer token as
//! `/graphql`, for the hub's and the Shift adapter's resilience tests:
//!
//! - `POST /admin/latency` `{"ms": N}`: every trading call (orders,
//!   balances, credit/debit) waits N ms first; 0 restores normal speed.
//! - `POST /admin/drop-next-delta` `{"pair": "BTC-USD"}`: the current
//!   `orderBookUpdates` subscribers of the pair skip its next DELTA, so
//!   they see a seq gap of exactly one.
//! - `POST /admin/pause-stream` `{"ms": N}`: no market-data message (book
//!   or trades) is sent for N ms, to exercise stale-feed detection.
//! - `POST /admin/halt` `{"pair": "BTC-USD", "reason": "..."}`: the venue
//!   halts trading in the pair (`SandboxVenue::halt`): `marketStatus`
//!   subscribers see `halted: true` with the reason (1 to
//!   [`MAX_HALT_REASON`] characters), `createOrder` for the pair answers
//!   `MARKET_HALTED`, cancels still work, the simulated market stops.
//! - `POST /admin/resume` `{"pair": "BTC-USD"}`: trading resumes.
//!
//! Each answers 204; a bad body is 400 (413 beyond the body limit), an
//! unknown pair 404 with `UNKNOWN_PAIR`.

use crate::http::error_response;
use crate::schema::ErrorCode;
use crate::server::App;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

/// A delay in milliseconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayBody {
    pub ms: u64,
}

/// A pair.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairBody {
    pub pair: String,
}

/// Longest halt reason accepted, in characters.
pub const MAX_HALT_REASON: usize = 200;

/// A pair to halt and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltBody {
    pub pair: String,
    pub reason: String,
}

/// The admin routes (the caller applies the token gate).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/latency", post(set_latency))
        .route("/admin/drop-next-delta", post(drop_next_delta))
        .route("/admin/pause-stream", post(pause_stream))
        .route("/admin/halt", post(halt))
        .route("/admin/resume", post(resume))
}

async fn halt(State(app): State<App>, body: Result<Json<HaltBody>, JsonRejection>) -> Response {
    let HaltBody { pair, reason } = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return Refusal::from(rejection).into_response(),
    };
    let chars = reason.chars().count();
    if chars == 0 || chars > MAX_HALT_REASON || reason.chars().any(char::is_control) {
        return Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("reason: 1 to {MAX_HALT_REASON} characters, no control characters"),
        }
        .into_response();
    }
    match app.state.venue.halt(&pair, &reason) {
        Ok(()) => {
            tracing::warn!(%pair, %reason, "fault injection: trading halted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => unknown_pair(&pair),
    }
}

async fn resume(State(app): State<App>, body: Result<Json<PairBody>, JsonRejection>) -> Response {
    let pair = match body {
        Ok(Json(body)) => body.pair,
        Err(rejection) => return Refusal::from(rejection).into_response(),
    };
    match app.state.venue.resume(&pair) {
        Ok(()) => {
            tracing::warn!(%pair, "fault injection: trading resumed");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => unknown_pair(&pair),
    }
}

fn unknown_pair(pair: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        Some(ErrorCode::UnknownPair),
        &format!("unknown pair {pair}"),
    )
}

async fn set_latency(
    State(app): State<App>,
    body: Result<Json<DelayBody>, JsonRejection>,
) -> Response {
    match delay(&app, body) {
        Ok(latency) => {
            tracing::warn!(
                ms = latency.as_millis() as u64,
                "fault injection: venue latency"
            );
            app.state.venue.set_latency(latency);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn pause_stream(
    State(app): State<App>,
    body: Result<Json<DelayBody>, JsonRejection>,
) -> Response {
    match delay(&app, body) {
        Ok(pause) => {
            tracing::warn!(
                ms = pause.as_millis() as u64,
                "fault injection: market data paused"
            );
            app.state.faults.pause_market_data(pause);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn drop_next_delta(
    State(app): State<App>,
    body: Result<Json<PairBody>, JsonRejection>,
) -> Response {
    let pair = match body {
        Ok(Json(body)) => body.pair,
        Err(rejection) => return Refusal::from(rejection).into_response(),
    };
    if !app.state.faults.drop_next_delta(&pair) {
        return error_response(
            StatusCode::NOT_FOUND,
            Some(ErrorCode::UnknownPair),
            &format!("unknown pair {pair}"),
        );
    }
    tracing::warn!(%pair, "fault injection: next delta dropped");
    StatusCode::NO_CONTENT.into_response()
}

/// Why an admin body was refused: 400 (413 beyond the body limit) with
/// `BAD_USER_INPUT`.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl From<JsonRejection> for Refusal {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal {
            status,
            message: rejection.body_text(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_response(self.status, Some(ErrorCode::BadUserInput), &self.message)
    }
}

/// The body's delay, at most the configured maximum.
fn delay(app: &App, body: Result<Json<DelayBody>, JsonRejection>) -> Result<Duration, Refusal> {
    let Json(DelayBody { ms }) = body?;
    let max = app.limits.max_injected_delay;
    let delay = Duration::from_millis(ms);
    if delay > max {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("ms: at most {}", max.as_millis()),
        });
    }
    Ok(delay)
}
