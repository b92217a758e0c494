//! The hub: the public WebSocket market-data protocol (PROTOCOL.md) and the
//! fan-out that delivers every change to thousands of clients.

pub mod protocol;
