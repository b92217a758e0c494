//! Money movement (docs/API.md "Routes", wallets and fiat): amounts,
//! the movements recorded as deposit / withdrawal transactions and their
//! statuses, taking money out (one withdraw path for crypto and fiat),
//! settling a provider's outcome, the balances and transaction lists
//! (one listing path), request idempotency keys, and the venue calls
//! that debit and credit users.
//!
//! Used by the wallet and fiat routes and by the webhooks; it imports
//! none of them. Its state is a [`Ledger`].
//!
//! # Venue and store
//! The venue and the store share no transaction: see [`settle`] (money
//! in after the record) and [`outflow`] (money out before it).

pub mod address;
pub mod amount;
pub mod chain;
pub mod history;
pub mod movement;
pub mod outflow;
pub mod references;
pub mod request_keys;
pub mod settle;
pub mod venue;

use crate::cluster::claim::Claims;
use crate::store::Store;
use std::sync::Arc;
pub use venue::VenueAccess;

/// What moving money needs: the store, the venue behind its breaker, the
/// cross-node claims of request keys. A commit wakes the outbox relay by
/// itself (the store's relay layer).
#[derive(Clone)]
pub struct Ledger {
    pub store: Arc<dyn Store>,
    pub venue: VenueAccess,
    /// One request at a time per idempotency key, across nodes.
    pub claims: Arc<Claims>,
}
