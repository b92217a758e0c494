//! [`WebhookApplier`]: the consumer of `webhook-processing-queue` that
//! applies each received webhook exactly once (docs/API.md, "Webhooks";
//! docs/ARCHITECTURE.md, "After the queues").
//!
//! A `webhook.received` delivery names a receipt (provider, webhook id)
//! that the route stored in `received` with the verified notice. The
//! applier loads it; a receipt no longer `received` was handled already
//! and the delivery is done (the queue delivers at least once; this makes
//! the effect once). Otherwise the notice is applied
//! ([`process::apply`]): the state change commits together with the
//! receipt's move to `applied` / `ignored`, conditional on the receipt's
//! version, so of two appliers racing on one receipt exactly one changes
//! state; the other sees the receipt moved and is done.
//!
//! Failures:
//! - permanent (the route's former 400 / 404 / 422 answers: unknown
//!   transaction or user, amount mismatch, wrong transaction, unknown
//!   address, unsupported asset, ...): the receipt becomes `rejected` with
//!   the code, a `webhook.rejected` event is emitted, nothing else
//!   changes, a warning is logged for an operator, and the delivery is
//!   done;
//! - transient (store or venue or custody unavailable, the transaction
//!   still changing under us after [`ATTEMPTS`] tries): [`Outcome::Retry`]:
//!   the message comes back after the visibility timeout, and after the
//!   queue's maximum receives (3) it moves to the dead-letter queue
//!   (redriving it is safe: the receipt is still `received`, see
//!   docs/API.md "Webhooks").

use super::notice::{Notice, Provider};
use super::process::{self, rejected_writes, Failure};
use super::WebhooksState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::queue::{Consumer, Delivery, Outcome};
use crate::store::{Conflict, ReceiptStatus, StoreError, WebhookReceipt};
use async_trait::async_trait;
use axum::http::StatusCode;

/// Times a delivery is tried again at once after losing a race (on its
/// transaction or receipt) before it is left to the queue.
pub const ATTEMPTS: usize = 3;

/// Applies `webhook.received` deliveries (see the module doc).
#[derive(Clone)]
pub struct WebhookApplier {
    state: WebhooksState,
}

/// What one try came to.
enum Step {
    /// The delivery is finished.
    Done,
    /// Lost a race: read the receipt again and try again.
    Again(String),
    /// Leave it to the queue.
    Retry(String),
}

impl WebhookApplier {
    /// An applier over the webhook route's state (store, venue, custody).
    pub fn new(state: WebhooksState) -> Self {
        WebhookApplier { state }
    }

    /// Handles one delivered event: `Done` when applied, rejected, seen
    /// before or not a `webhook.received`; `Retry` on a transient failure.
    pub async fn apply_event(&self, event: &Event) -> Outcome {
        if event.event_type != EventType::WebhookReceived.as_str() {
            return Outcome::Done;
        }
        let data = &event.data;
        let names = (data["provider"].as_str(), data["webhook_id"].as_str());
        let (Some(name), Some(webhook_id)) = names else {
            tracing::warn!(event_id = %event.id, "webhook.received without provider or webhook_id; dropped");
            return Outcome::Done;
        };
        let Some(provider) = Provider::parse(name) else {
            // A provider this build does not know: a newer node received
            // it (a rolling deploy). Left to the queue for a newer worker
            // (redelivered, then dead-lettered, never dropped).
            tracing::warn!(event_id = %event.id, provider = %name,
                "webhook.received of a provider this worker does not know; left for a newer one");
            return Outcome::Retry(format!("unknown provider {name}"));
        };
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match self.try_once(provider, webhook_id).await {
                Step::Done => return Outcome::Done,
                Step::Retry(why) => return Outcome::Retry(why),
                Step::Again(why) => last = why,
            }
        }
        Outcome::Retry(format!("kept losing races: {last}"))
    }

    async fn try_once(&self, provider: Provider, webhook_id: &str) -> Step {
        let store = &self.state.ledger.store;
        let receipt = match store.webhook_receipt(provider.as_str(), webhook_id).await {
            Ok(Some(receipt)) => receipt,
            Ok(None) => {
                tracing::warn!(
                    provider = provider.as_str(),
                    webhook_id,
                    "no receipt for a received webhook (expired?); dropped"
                );
                return Step::Done;
            }
            Err(e) => return Step::Retry(e.to_string()),
        };
        if receipt.status != ReceiptStatus::Received {
            return Step::Done;
        }
        let read = receipt.notice.clone().map(serde_json::from_value::<Notice>);
        if let Some(Err(e)) = &read {
            // A notice kind this build does not know was stored by a newer
            // node (a rolling deploy): left for a newer worker, not
            // rejected.
            if e.to_string().starts_with("unknown variant") {
                return Step::Retry(format!("a newer notice than this worker reads: {e}"));
            }
        }
        let Some(Ok(notice)) = read else {
            let e =
                ApiError::unprocessable("invalid_notice", "the receipt holds no readable notice");
            return self.reject(&receipt, None, e).await;
        };
        match process::apply(&self.state, provider, &notice, &receipt).await {
            Ok(status) => {
                tracing::info!(
                    provider = provider.as_str(),
                    webhook_id,
                    status = status.as_str(),
                    "webhook applied"
                );
                Step::Done
            }
            Err(Failure::Api(e)) if permanent(&e) => {
                self.reject(&receipt, user_of(&notice), e).await
            }
            Err(Failure::Api(e)) => Step::Retry(format!("{}: {}", e.code, e.message)),
            Err(Failure::Store(e)) => store_step(e),
        }
    }

    /// Moves `receipt` to `rejected` with `error` (and emits
    /// `webhook.rejected`).
    async fn reject(
        &self,
        receipt: &WebhookReceipt,
        user_id: Option<&str>,
        error: ApiError,
    ) -> Step {
        let writes = rejected_writes(receipt, user_id, &error);
        match self.state.ledger.store.commit(writes).await {
            Ok(()) => {
                tracing::warn!(provider = %receipt.provider, webhook_id = %receipt.webhook_id,
                    code = %error.code, message = %error.message,
                    "webhook rejected: nothing changed; an operator should look");
                Step::Done
            }
            Err(e) => store_step(e),
        }
    }
}

/// What a store failure means for the delivery.
fn store_step(e: StoreError) -> Step {
    match e {
        StoreError::Conflict(Conflict::VersionMismatch(_)) => Step::Again(e.to_string()),
        other => Step::Retry(other.to_string()),
    }
}

/// An answer the route used to give that no redelivery changes.
fn permanent(e: &ApiError) -> bool {
    matches!(
        e.status,
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// The user a notice names.
fn user_of(notice: &Notice) -> Option<&str> {
    match notice {
        Notice::Settlement { user_id, .. } | Notice::KycReview { user_id, .. } => Some(user_id),
        Notice::IncomingDeposit { user_id, .. } => user_id.as_deref(),
        Notice::ProviderSettlement { .. } | Notice::Refund { .. } | Notice::Ignored { .. } => None,
    }
}

#[async_trait]
impl Consumer for WebhookApplier {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(self.apply_event(&delivery.event).await);
        }
        outcomes
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    /// What `try_once` tells apart: a notice kind this build does not know
    /// (left for a newer worker) from a notice it cannot read (rejected).
    #[test]
    fn a_newer_notice_kind_reads_as_an_unknown_variant() {
        let newer = serde_json::json!({"kind": "from_a_newer_build", "webhook_id": "w"});
        let e = serde_json::from_value::<Notice>(newer).unwrap_err();
        assert!(e.to_string().starts_with("unknown variant"), "{e}");
        let broken = serde_json::json!({"kind": "settlement", "webhook_id": "w"});
        let e = serde_json::from_value::<Notice>(broken).unwrap_err();
        assert!(!e.to_string().starts_with("unknown variant"), "{e}");
    }
}
