//! `nax-venue`: the sandbox venue (`feeds::SandboxVenue`: our matching
//! engine plus a simulated market) served over the upstream GraphQL
//! contract, feeds/src/shift/schema.graphql, on 127.0.0.1. It is what the
//! Shift Markets adapter and the hub are tested against, over real sockets,
//! instead of Shift itself.
//!
//! This is its own crate because the GraphQL server's dependencies
//! (async-graphql, its parser, WebSocket serving of `graphql-transport-ws`)
//! are needed by neither the hub nor the feeds library.
//!
//! # Usage
//!
//! ```text
//! NAX_VENUE_TOKEN=dev-token cargo run -p sandbox-venue --bin nax-venue -- --port 9090
//! # prints: listening on http://127.0.0.1:9090/graphql
//! curl -s -H 'Authorization: Bearer dev-token' -H 'Content-Type: application/json' \
//!      -d '{"query":"{ markets { pair priceScale qtyScale } }"}' http://127.0.0.1:9090/graphql
//! ```
//!
//! Flags: `--bind` (127.0.0.1), `--port` (9090; 0 picks a free port),
//! `--token` or `NAX_VENUE_TOKEN` (required), `--events-per-sec` (simulated
//! market activity, 0 = none), `--seed`. SIGINT/SIGTERM stop it gracefully.
//!
//! - Queries and mutations: `POST /graphql` with `{"query", "variables"}`
//!   and `Authorization: Bearer <token>` (else 401, `UNAUTHENTICATED`).
//! - Subscriptions: WebSocket on `/graphql`, subprotocol
//!   `graphql-transport-ws`; the `connection_init` payload carries
//!   `{"authorization": "Bearer <token>"}` (else closed with 4403).
//! - Errors carry `extensions.code` as listed in the contract's header,
//!   plus `BAD_USER_INPUT` (an argument out of range, e.g. `depth: 0`) and
//!   `TOO_MANY_SUBSCRIPTIONS` (over the per-connection limit).
//! - Limits ([`ServerLimits`]): 64 KiB bodies and WebSocket messages, JSON
//!   in either nested ≤ 8 deep with ≤ 1,024 values (checked before it is
//!   parsed), 64 subscriptions per connection, operations of depth ≤ 8 and
//!   complexity ≤ 256, 10 s to send `connection_init`.
//! - TEST-ONLY fault injection (same token): `POST /admin/latency
//!   {"ms":N}`, `POST /admin/drop-next-delta {"pair":"BTC-USD"}`, `POST
//!   /admin/pause-stream {"ms":N}`, `POST /admin/halt
//!   {"pair":"BTC-USD","reason":"..."}`, `POST /admin/resume
//!   {"pair":"BTC-USD"}`; see [`admin`].
//!
//! In process (tests): [`serve`] a [`VenueServerConfig`] on `127.0.0.1:0`,
//! read [`RunningVenueServer::addr`], and [`RunningVenueServer::stop`] it.

pub mod admin;
pub mod auth;
pub mod config;
pub mod faults;
pub mod http;
pub mod schema;
pub mod server;
pub mod ws;

pub use auth::BearerToken;
pub use config::{ServerLimits, VenueServerConfig};
pub use schema::sdl;
pub use server::{serve, RunningVenueServer};
