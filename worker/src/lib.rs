//! The consumers after the queues (docs/ARCHITECTURE.md, "After the
//! queues"): the tamper-evident audit archive ([`audit`]), the HubSpot CRM
//! sync ([`hubspot`]) and reconciliation ([`reconcile`]); the webhook
//! applier is `api::webhooks::worker`. The queue loop and the two sources
//! (SQS, the embedded event log) are `api::queue`; this crate adds the
//! consumers' own dependencies (S3, the HubSpot client) and the
//! `nax-worker` binary. With embedded defaults `nax-hub` runs the
//! same consumers in process over its event log.

pub mod audit;
pub mod hubspot;
pub mod reconcile;
pub mod running;
pub mod serve;

pub use running::{source, Running};
pub mod commands;

pub use commands::Kind;
