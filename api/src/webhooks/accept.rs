//! Receiving a verified notice (the route's half): the receipt, in
//! `received` and carrying the notice, and the `webhook.received` event
//! are one commit. The event reaches `webhook-processing-queue` through
//! the outbox relay (at least once), so once that commit is acknowledged
//! the notice is durably queued and the provider can be answered; the
//! applier ([`worker`](super::worker)) then applies it exactly once.
//!
//! A delivery id seen before answers `duplicate` and stores nothing. The
//! read of receipts is only a fast path: the store refuses a second
//! receipt for one id (`DuplicateWebhook`), so of concurrent deliveries
//! of one webhook exactly one is `accepted`.

use super::notice::{Notice, Provider};
use super::process::{WebhookAck, RECEIPT_DAYS};
use super::WebhooksState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::store::{Conflict, ReceiptStatus, StoreError, WebhookReceipt, Write};
use serde_json::json;

/// Stores `notice` from `provider` and queues it, once per delivery id:
/// `accepted` when this call stored it, `duplicate` when the id was
/// received before. A store failure is 503 `store_unavailable` (the
/// provider delivers again).
pub async fn accept(
    state: &WebhooksState,
    provider: Provider,
    notice: &Notice,
) -> Result<WebhookAck, ApiError> {
    let store = &state.ledger.store;
    if store
        .webhook_receipt(provider.as_str(), notice.webhook_id())
        .await?
        .is_some()
    {
        return Ok(WebhookAck::of("duplicate"));
    }
    match store.commit(received_writes(provider, notice)?).await {
        Ok(()) => Ok(WebhookAck::of("accepted")),
        Err(StoreError::Conflict(Conflict::DuplicateWebhook)) => Ok(WebhookAck::of("duplicate")),
        Err(e) => Err(e.into()),
    }
}

/// The new receipt and the `webhook.received` event of a delivery.
pub fn received_writes(provider: Provider, notice: &Notice) -> Result<Vec<Write>, ApiError> {
    let now = crate::events::now();
    let stored = serde_json::to_value(notice).map_err(ApiError::internal)?;
    let (user_id, transaction_id) = match notice {
        Notice::Settlement {
            user_id,
            transaction_id,
            ..
        } => (Some(user_id.as_str()), Some(transaction_id.as_str())),
        Notice::IncomingDeposit { user_id, .. } => (user_id.as_deref(), None),
        Notice::KycReview { user_id, .. } => (Some(user_id.as_str()), None),
        Notice::ProviderSettlement { .. } | Notice::Refund { .. } | Notice::Ignored { .. } => {
            (None, None)
        }
    };
    Ok(vec![
        Write::CreateWebhookReceipt(WebhookReceipt {
            provider: provider.as_str().to_owned(),
            webhook_id: notice.webhook_id().to_owned(),
            received_at: now,
            expires_at: now + chrono::TimeDelta::days(RECEIPT_DAYS),
            status: ReceiptStatus::Received,
            notice: Some(stored),
            action: None,
            error: None,
            updated_at: None,
            version: 1,
        }),
        Write::Emit(Event::new(
            EventType::WebhookReceived,
            user_id,
            json!({
                "provider": provider.as_str(),
                "webhook_id": notice.webhook_id(),
                "event_type": notice.event_type(),
                "transaction_id": transaction_id,
            }),
        )),
    ])
}
