//! Every call money movement makes to the venue, under the
//! [`resilience`](crate::resilience) policy: a timeout per attempt, the
//! venue's circuit breaker (shared with trading), and retries only where
//! repeating cannot change the outcome (reads). Venue credits and debits
//! carry no idempotency key, so they are tried once: a timeout there is
//! ambiguous and is logged for reconciliation.

use crate::error::ApiError;
use crate::resilience::IntoApiError as _;
use crate::resilience::{CallError, Idempotency, Upstream};
use crate::trading::{venue_error, venue_failure as venue_down};
use feeds::venue::{AssetSpec, Balance};
use feeds::Venue;
use std::sync::Arc;

/// The venue and the breaker in front of it.
#[derive(Clone)]
pub struct VenueAccess {
    pub venue: Arc<dyn Venue>,
    /// Whatever holds the venue's breaker (shared with trading).
    breaker: Arc<dyn AsRef<Upstream> + Send + Sync>,
}

/// Which way a balance moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceChange {
    /// Taken from the available balance (a withdrawal).
    Debit,
    /// Added to it (a deposit, a refund).
    Credit,
}

impl BalanceChange {
    fn name(self) -> &'static str {
        match self {
            BalanceChange::Debit => "debit",
            BalanceChange::Credit => "credit",
        }
    }
}

impl VenueAccess {
    pub fn new(venue: Arc<dyn Venue>, breaker: Arc<dyn AsRef<Upstream> + Send + Sync>) -> Self {
        VenueAccess { venue, breaker }
    }

    fn upstream(&self) -> &Upstream {
        (*self.breaker).as_ref()
    }

    /// The venue's assets.
    pub fn assets(&self) -> Vec<AssetSpec> {
        self.venue.assets()
    }

    /// The scale of a venue asset.
    pub fn scale_of(&self, asset: &str) -> Option<u8> {
        self.assets()
            .into_iter()
            .find(|a| a.symbol == asset)
            .map(|a| a.scale)
    }

    /// The user's balances of every venue asset (a read: retried).
    pub async fn balances(&self, user_id: &str) -> Result<Vec<(String, Balance)>, ApiError> {
        self.upstream()
            .call(Idempotency::Idempotent, venue_down, || {
                self.venue.balances(user_id)
            })
            .await
            .map_err(|e| e.into_api("venue", venue_error))
    }

    /// Takes (`Debit`) or adds (`Credit`) `raw` of `asset` to the user's
    /// available balance, in one attempt.
    pub async fn change(
        &self,
        change: BalanceChange,
        user_id: &str,
        asset: &str,
        raw: u64,
    ) -> Result<(), ApiError> {
        let result = self
            .upstream()
            .call(Idempotency::NotIdempotent, venue_down, || async {
                match change {
                    BalanceChange::Debit => self.venue.debit(user_id, asset, raw).await,
                    BalanceChange::Credit => self.venue.credit(user_id, asset, raw).await,
                }
            })
            .await;
        if matches!(result, Err(CallError::Timeout)) {
            tracing::error!(
                user_id,
                asset,
                raw,
                "venue {} timed out: may or may not have happened; reconcile",
                change.name()
            );
        }
        result
            .map(|_| ())
            .map_err(|e| e.into_api("venue", venue_error))
    }
}
