//! The composition root: the one place that turns configuration into
//! running parts and hands each feature only what it uses.
//!
//! - `build.rs`: [`ApiParts`] (what the embedding binary gives: the
//!   configuration, the data directory, the venue, its own URL; the store
//!   and event publisher, built from the configuration by
//!   [`ApiParts::from_config`] or injected by tests) and [`Api::start`],
//!   which builds every backend behind its trait (store layers, outbox
//!   relay, Redis parts, auth, limiter, private bus, custody, payment
//!   providers, KYC) and starts the background tasks.
//! - `state.rs`: [`Api`], the application state, and the `FromRef`
//!   impls that cut it into each feature's own state (`Arc<Auth>` for
//!   `auth`, [`crate::users::UsersState`], [`crate::trading::TradingState`],
//!   [`crate::wallets::WalletsState`], [`crate::fiat::FiatState`],
//!   [`crate::webhooks::WebhooksState`], and [`crate::money::Ledger`] inside
//!   the last three). A feature's handlers take only their state; no
//!   feature names [`Api`].
//! - `router.rs`: every feature's routes merged into one router with the
//!   OpenAPI document.

mod build;
mod router;
pub(crate) mod state;

pub use build::{store as open_store, ApiParts};
pub use router::{router, router_with_doc};
pub use state::{Api, Components};
