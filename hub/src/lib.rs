//! The hub: the public WebSocket market-data protocol (docs/PROTOCOL.md), the
//! per-pair book cache, and the fan-out that delivers every change to
//! thousands of clients; plus the wiring of the `nax-hub` binary.

pub mod app;
/// The configuration (its own crate, shared with `nax-worker`).
pub use nax_config as config;
pub mod fanout;
pub mod healthcheck;
pub mod listener;
/// The log set-up (in this crate: both binaries use it).
pub use nax_config::logging;
pub mod market;
pub mod metrics;
pub mod process;
pub mod protocol;
pub mod server;
pub mod session;
pub mod shift_stats;
pub mod shutdown;
