//! WebSocket sessions: the `GET /ws` upgrade (with the node's connection
//! limit), and per connection the reader (`connection.rs`) with its ops
//! (`ops.rs`, order entry in `orders.rs`) and frame-rate limit
//! (`rate.rs`), the writer (`writer.rs`),
//! the private channels (`private.rs`) and the close codes.

pub mod close_code;
mod connection;
pub mod handshake;
pub mod inflate;
mod ops;
mod orders;
mod private;
mod rate;
mod socket;
mod writer;
pub use handshake::OriginPolicy;

use crate::config::Limits;
use crate::listener::peers::PeerLimits;
use crate::market::Markets;
use crate::metrics as m;
use crate::shutdown::Shutdown;
use api::http::ClientIp;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

/// Bytes the WebSocket codec reads from a socket at a time. Tungstenite
/// allocates (and zero-fills) this much per connection up front; its 128 KiB
/// default made an idle connection cost ~139 KiB. Client frames are small
/// (at most `max_frame_bytes`), so 4 KiB reads lose nothing.
const READ_BUFFER_BYTES: usize = 4096;

/// What every session needs: the markets, the limits, the shutdown signal
/// and the live connection count.
pub struct HubContext {
    pub markets: Markets,
    /// Per-connection limits of docs/PROTOCOL.md.
    pub limits: Limits,
    /// What the `shutdown` message tells clients to wait before reconnecting.
    pub reconnect_after_ms: u64,
    /// Which browser origins may open a socket ([`handshake`]).
    pub origins: OriginPolicy,
    pub shutdown: Shutdown,
    /// The REST API, when the hub runs one: verifies `auth` tokens and
    /// carries the private channels.
    pub api: Option<api::Api>,
    /// Open sockets per client address ([`api::http::ClientIp`]: behind a
    /// trusted proxy, the forwarded address), capped at
    /// `http.max_connections_per_ip`. The accept loop caps TCP connections
    /// per peer, but every client behind the load balancer shares its
    /// peers' addresses, which are exempt there.
    pub client_sockets: Arc<PeerLimits>,
    connections: AtomicUsize,
    next_conn_id: AtomicU64,
}

impl HubContext {
    pub fn new(
        markets: Markets,
        limits: Limits,
        reconnect_after_ms: u64,
        origins: OriginPolicy,
        shutdown: Shutdown,
        api: Option<api::Api>,
        max_sockets_per_client: usize,
    ) -> Self {
        HubContext {
            markets,
            limits,
            reconnect_after_ms,
            origins,
            shutdown,
            api,
            client_sockets: PeerLimits::new(max_sockets_per_client),
            connections: AtomicUsize::new(0),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// Open WebSocket connections now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Decrements the connection count when a session ends, however it ends.
struct ConnectionSlot(Arc<HubContext>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(m::CONNECTIONS).decrement(1.0);
    }
}

/// `GET /ws`: upgrades unless the handshake is invalid (400
/// `bad_handshake`), the origin is not allowed (403
/// `origin_not_allowed`), the client address has
/// `http.max_connections_per_ip` sockets open (429
/// `too_many_connections`), the node is at its connection limit (503) or
/// shutting down (503).
pub async fn ws_handler(
    State(ctx): State<Arc<HubContext>>,
    client: Option<ClientIp>,
    headers: HeaderMap,
    upgrade: Result<socket::UpgradeRequest, socket::Refused>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused.into_response(),
    };
    if let Err(e) = handshake::check(&headers, &ctx.origins) {
        let (status, code) = match e {
            handshake::HandshakeError::BadKey => (StatusCode::BAD_REQUEST, "bad_handshake"),
            handshake::HandshakeError::Origin => (StatusCode::FORBIDDEN, "origin_not_allowed"),
        };
        return api::ApiError::new(status, code, e.to_string()).into_response();
    }
    if ctx.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let client_slot = match client {
        Some(ClientIp(ip)) => match ctx.client_sockets.try_acquire(ip) {
            Some(slot) => Some(slot),
            None => {
                metrics::counter!(m::CONNECTIONS_REJECTED_TOTAL).increment(1);
                return api::ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    "too many open sockets from this address",
                )
                .into_response();
            }
        },
        None => None,
    };
    let taken = ctx.connections.fetch_add(1, Ordering::Relaxed);
    if taken >= ctx.limits.max_connections {
        ctx.connections.fetch_sub(1, Ordering::Relaxed);
        metrics::counter!(m::CONNECTIONS_REJECTED_TOTAL).increment(1);
        return (StatusCode::SERVICE_UNAVAILABLE, "connection limit reached").into_response();
    }
    metrics::gauge!(m::CONNECTIONS).increment(1.0);
    let slot = ConnectionSlot(ctx.clone());
    let conn_id = ctx.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let deflate = upgrade.deflate(ctx.limits.permessage_deflate);
    let response = upgrade.accept(deflate);
    tokio::spawn(async move {
        let _slots = (slot, client_slot);
        let Some(upgraded) = upgrade.upgraded().await else {
            return;
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(ctx.limits.max_frame_bytes))
            .max_frame_size(Some(ctx.limits.max_frame_bytes));
        let span = tracing::info_span!("connection", conn_id, user_id = tracing::field::Empty);
        connection::serve(upgraded, config, deflate, ctx, conn_id)
            .instrument(span)
            .await;
    });
    response
}
