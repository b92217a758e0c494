//! How a venue server is set up: where it listens, the token it accepts,
//! the sandbox it serves, and the limits on what clients may ask.

use crate::auth::BearerToken;
use crate::schema::QueryLimits;
use feeds::SandboxConfig;
use inbound::JsonBounds;
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
    /// Deepest JSON nesting of a request body or WebSocket message,
    /// checked before it is parsed. The deepest valid one is a `subscribe`
    /// message with an input object in its variables (depth 4).
    pub max_json_depth: usize,
    /// Most JSON values (see `inbound::JsonBounds`) in a request body or
    /// WebSocket message, checked before it is parsed. A valid one holds a
    /// few dozen: the schema takes no list arguments.
    pub max_json_elements: usize,
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
            max_json_depth: 8,
            max_json_elements: 1024,
            max_subscriptions_per_connection: 64,
            connection_init_timeout: Duration::from_secs(10),
            query: QueryLimits::default(),
            max_injected_delay: Duration::from_secs(60),
        }
    }
}

impl ServerLimits {
    /// What a JSON text of at most `max_bytes` (a body's or a WebSocket
    /// message's limit) is checked against before it is parsed.
    pub fn json_bounds(&self, max_bytes: usize) -> JsonBounds {
        JsonBounds {
            max_bytes,
            max_depth: self.max_json_depth,
            max_elements: self.max_json_elements,
        }
    }
}
