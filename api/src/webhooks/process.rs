//! Acting on a verified webhook: deduplication by delivery id, the checks
//! that it names a transaction it may settle, and the state change
//! ([`settle`](crate::money::settle)) committed together with the
//! webhook receipt and a `webhook.received` event.
//!
//! A delivery id seen before answers `duplicate` and changes nothing. The
//! read of receipts is only a fast path: the receipt is written in the
//! same commit as the state change, and the store refuses a second
//! receipt for one id (`DuplicateWebhook`), so concurrent deliveries of
//! one webhook change state once. Custody deposits are also credited once
//! per chain transfer, whatever delivery ids report it
//! ([`incoming`](super::incoming)).

use super::notice::{Direction, Notice, Outcome, Provider};
use super::WebhooksState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::money::movement::{Movement, MovementStatus};
use crate::money::settle;
use crate::store::{Conflict, StoreError, Transaction, TxKind, WebhookReceipt, Write};
use serde::Serialize;
use serde_json::json;

/// How long webhook receipts are kept (DynamoDB TTL).
pub const RECEIPT_DAYS: i64 = 30;
/// Times a webhook is re-applied after losing a race on its transaction.
const ATTEMPTS: usize = 3;

/// The answer to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// `processed` (state changed), `ignored` (nothing to do: another
    /// event type, or the transaction is already settled) or `duplicate`
    /// (this delivery id was received before, or, for a custody deposit,
    /// the chain transfer it reports was already credited under another
    /// id).
    pub status: String,
}

impl WebhookAck {
    pub(super) fn of(status: &str) -> Self {
        WebhookAck {
            status: status.to_owned(),
        }
    }
}

/// Why applying failed.
pub(super) enum Failure {
    Api(ApiError),
    Store(StoreError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Applies a verified notice from `provider` at most once per delivery id.
pub async fn handle(
    state: &WebhooksState,
    provider: Provider,
    notice: &Notice,
) -> Result<WebhookAck, ApiError> {
    let duplicate = || Ok(WebhookAck::of("duplicate"));
    if state
        .ledger
        .store
        .webhook_receipt(provider.as_str(), notice.webhook_id())
        .await?
        .is_some()
    {
        return duplicate();
    }
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match apply(state, provider, notice).await {
            Ok(ack) => return Ok(ack),
            Err(Failure::Api(e)) => return Err(e),
            Err(Failure::Store(StoreError::Conflict(Conflict::DuplicateWebhook))) => {
                return duplicate()
            }
            // The transaction changed under us: read it again.
            Err(Failure::Store(e @ StoreError::Conflict(Conflict::VersionMismatch(_)))) => {
                last = Some(e)
            }
            Err(Failure::Store(e)) => return Err(e.into()),
        }
    }
    tracing::warn!(provider = provider.as_str(), error = ?last, "webhook kept losing races");
    Err(ApiError::conflict(
        "concurrent_update",
        "the transaction changed concurrently; retry the delivery",
    ))
}

/// The receipt and `webhook.received` event of a delivery.
pub(super) fn receipt_writes(
    provider: Provider,
    notice: &Notice,
    user_id: Option<&str>,
    transaction_id: Option<&str>,
    action: &str,
) -> Vec<Write> {
    let now = crate::events::now();
    vec![
        Write::CreateWebhookReceipt(WebhookReceipt {
            provider: provider.as_str().to_owned(),
            webhook_id: notice.webhook_id().to_owned(),
            received_at: now,
            expires_at: now + chrono::TimeDelta::days(RECEIPT_DAYS),
        }),
        Write::Emit(Event::new(
            EventType::WebhookReceived,
            user_id,
            json!({
                "provider": provider.as_str(),
                "webhook_id": notice.webhook_id(),
                "event_type": notice.event_type(),
                "transaction_id": transaction_id,
                "action": action,
            }),
        )),
    ]
}

async fn apply(
    state: &WebhooksState,
    provider: Provider,
    notice: &Notice,
) -> Result<WebhookAck, Failure> {
    let ledger = &state.ledger;
    match notice {
        Notice::Ignored { .. } => {
            ledger
                .store
                .commit(receipt_writes(provider, notice, None, None, "ignored"))
                .await?;
            Ok(WebhookAck::of("ignored"))
        }
        Notice::Settlement {
            user_id,
            transaction_id,
            direction,
            outcome,
            amount,
            event_type,
            ..
        } => {
            let tx = ledger
                .store
                .transaction(user_id, transaction_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("unknown_transaction", "no such transaction for this user")
                })?;
            let mut movement = Movement::of(&tx)?;
            check_settles(provider, *direction, &tx, &movement)?;
            settle::check_amount(ledger, &movement, amount.as_deref())?;
            if tx.status != MovementStatus::Pending.as_str() {
                let action = format!("ignored: already {}", tx.status);
                let writes = receipt_writes(
                    provider,
                    notice,
                    Some(user_id),
                    Some(transaction_id),
                    &action,
                );
                ledger.store.commit(writes).await?;
                return Ok(WebhookAck::of("ignored"));
            }
            if *outcome == Outcome::Failed {
                movement.failure_reason = Some(event_type.clone());
            }
            let extra = receipt_writes(
                provider,
                notice,
                Some(user_id),
                Some(transaction_id),
                outcome.status().as_str(),
            );
            settle::finish(ledger, &tx, &movement, *outcome, extra).await?;
            Ok(WebhookAck::of("processed"))
        }
        Notice::IncomingDeposit { .. } => super::incoming::apply(state, provider, notice).await,
    }
}

/// 422 `wrong_transaction` unless `provider` may settle `tx` in
/// `direction`: custody settles crypto withdrawals; a fiat provider
/// settles the fiat deposits and payouts opened with it.
fn check_settles(
    provider: Provider,
    direction: Direction,
    tx: &Transaction,
    movement: &Movement,
) -> Result<(), ApiError> {
    let custody = provider.payments().is_none();
    let kind_fits = match (custody, direction) {
        (true, Direction::Out) => tx.kind == TxKind::Withdrawal,
        (true, Direction::In) => false,
        (false, Direction::In) => tx.kind == TxKind::FiatDeposit,
        (false, Direction::Out) => tx.kind == TxKind::FiatWithdrawal,
    };
    if kind_fits && movement.provider.as_deref() == Some(provider.as_str()) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "wrong_transaction",
            "the webhook names a transaction of another kind or provider",
        ))
    }
}
