//! The hub: the public WebSocket market-data protocol (PROTOCOL.md), the
//! per-pair book cache, and the fan-out that delivers every change to
//! thousands of clients.

pub mod fanout;
pub mod protocol;
