//! How a venue server is set up: where it listens, the token it accepts,
//! the sandbox it serves, and the limits on what clients may ask.

use crate::auth::BearerToken;
use crate::schema::QueryLimits;
use feeds::SandboxConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct VenueServerConfig {
    /// Address to listen on (port 0: any free port; see
    /// `RunningVenueServer::addr`).
    pub bind: SocketAddr,
    pub token: BearerToken,
    pub sandbox: SandboxConfig,
    pub limits: ServerLimits,
}

impl VenueServerConfig {
    /// Default sandbox and limits on `bind`, accepting `token`.
    pub fn new(bind: SocketAddr, token: BearerToken) -> Self {
        VenueServerConfig {
            bind,
            token,
            sandbox: SandboxConfig::default(),
            limits: ServerLimits::default(),
        }
    }
}

/// Limits on everything a client controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest HTTP request body (413 beyond).
    pub max_body_bytes: usize,
    /// Largest WebSocket message a client may send.
    pub max_ws_message_bytes: usize,
    /// Active subscriptions one WebSocket connection may hold; more are
    /// refused with `TOO_MANY_SUBSCRIPTIONS` (the others keep running).
    pub max_subscriptions_per_connection: usize,
    /// Time a WebSocket client has to send an accepted `connection_init`
    /// (closed with 4408 after).
    pub connection_init_timeout: Duration,
    /// Depth and complexity limits of every operation.
    pub query: QueryLimits,
    /// Longest latency or pause the admin routes accept.
    pub max_injected_delay: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_body_bytes: 64 * 1024,
            max_ws_message_bytes: 64 * 1024,
            max_subscriptions_per_connection: 64,
            connection_init_timeout: Duration::from_secs(10),
            query: QueryLimits::default(),
            max_injected_delay: Duration::from_secs(60),
        }
    }
}
