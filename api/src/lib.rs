//! The REST side of NA-X Stream (`docs/API.md`): auth, users and KYC,
//! trading through the [`feeds::Venue`], wallets, fiat, payment webhooks;
//! the [`store::Store`] and [`events::EventPublisher`] boundaries with their
//! embedded implementations; the OpenAPI document generated from the
//! handlers; the composition root ([`root`]) that builds all of it from
//! configuration. The hub binary mounts [`router`] on its port; this crate knows
//! nothing about WebSocket connections (the hub reads [`private::PrivateBus`]).

pub mod auth;
pub mod aws;
pub mod cluster;
pub mod config;
pub mod error;
pub mod events;
pub mod fiat;
pub mod http;
pub mod market_archive;
pub mod money;
pub mod owner_only;
pub mod private;
pub mod providers;
pub mod queue;
pub mod resilience;
pub mod root;
pub mod seal;
pub mod secret;
pub mod secrets;
pub mod store;
pub mod trading;
pub mod users;
pub mod wallets;
pub mod webhooks;

pub use config::ApiConfig;
pub use error::{ApiError, ApiResult};
pub use root::{router, router_with_doc, Api, ApiParts};
