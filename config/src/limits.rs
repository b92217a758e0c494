//! The `[limits]` section: what protects the hub from its clients and from
//! itself (docs/PROTOCOL.md, "Heartbeats and limits").

use serde::{Deserialize, Serialize};

/// Limits that protect the hub from clients and from itself (TOML section
/// `[limits]`). All counts and sizes are at least 1 after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Concurrent WebSocket connections; further upgrades are refused.
    pub max_connections: usize,
    /// Channels per connection (`too_many_subscriptions` beyond).
    pub max_subscriptions: usize,
    /// Sustained client frames per second per connection (`rate_limited`).
    pub frames_per_sec: u32,
    /// Client frames a connection may send at once before rate limiting.
    pub frame_burst: u32,
    /// Rejected client frames after which the hub closes with 1008.
    pub max_invalid_frames: u32,
    /// Largest accepted inbound frame, bytes (close 1009 beyond); ≥ 1024.
    pub max_frame_bytes: usize,
    /// Bytes queued towards one client before it counts as a slow consumer;
    /// ≥ 64 KiB.
    pub outbound_queue_bytes: usize,
    /// Kernel send buffer (SO_SNDBUF) of each client socket, bytes; ≥ 16 KiB.
    /// Kept small so that a slow client fills its outbound queue (and is
    /// conflated or closed) instead of hiding megabytes in the kernel.
    pub socket_send_buffer_bytes: usize,
    /// Interval between WebSocket Pings.
    pub ping_interval_ms: u64,
    /// Silence after which a connection is closed; greater than
    /// `ping_interval_ms`.
    pub pong_timeout_ms: u64,
    /// Accept a client's permessage-deflate offer (docs/PROTOCOL.md,
    /// "Compression"); clients that offer none get plain frames either
    /// way.
    pub permessage_deflate: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_subscriptions: 200,
            frames_per_sec: 20,
            frame_burst: 50,
            max_invalid_frames: 100,
            max_frame_bytes: 16 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            socket_send_buffer_bytes: 256 * 1024,
            ping_interval_ms: 20_000,
            pong_timeout_ms: 60_000,
            permessage_deflate: true,
        }
    }
}
