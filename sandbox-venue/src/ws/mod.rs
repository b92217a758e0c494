//! Subscriptions (and any other operation) over WebSocket with the
//! `graphql-transport-ws` protocol on `GET /graphql`.
//!
//! The transport loop is ours rather than async-graphql-axum's: the
//! contract needs a refused `connection_init` closed with 4403, a
//! connection-init timeout and a per-connection subscription limit, which
//! that crate's WebSocket service does not offer. Execution is still
//! async-graphql's (`Schema::execute_stream`).

mod connection;
mod protocol;

pub use protocol::SUBPROTOCOL;

use crate::http::error_response;
use crate::server::App;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;

/// `GET /graphql`: upgrades to a `graphql-transport-ws` connection. A plain
/// GET (no upgrade) is 405: operations are POSTed.
pub async fn upgrade(
    State(app): State<App>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "POST operations as JSON; GET is for graphql-transport-ws WebSocket upgrades",
        );
    };
    let upgrade = upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(app.limits.max_ws_message_bytes)
        .max_frame_size(app.limits.max_ws_message_bytes);
    if upgrade.selected_protocol().is_none() {
        return error_response(
            StatusCode::BAD_REQUEST,
            None,
            "the WebSocket subprotocol graphql-transport-ws is required",
        );
    }
    upgrade.on_upgrade(move |socket| connection::run(socket, app))
}
