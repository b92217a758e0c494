//! The hub: the public WebSocket market-data protocol (docs/PROTOCOL.md), the
//! per-pair book cache, and the fan-out that delivers every change to
//! thousands of clients; plus the wiring of the `nax-hub` binary.

pub mod app;
pub mod config;
pub mod fanout;
pub mod listener;
pub mod logging;
pub mod market;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod session;
pub mod shutdown;
