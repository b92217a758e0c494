//! Applying a stored, verified notice (the applier's half, see
//! [`worker`](super::worker)): the checks that it names a transaction it
//! may settle, and the state change ([`settle`](crate::money::settle))
//! committed together with the receipt's move out of `received`
//! ([`Write::UpdateWebhookReceipt`] on the receipt's version) and a
//! `webhook.applied` event.
//!
//! Because the receipt's move is conditional on its version and joins the
//! state change's commit, two appliers of one delivery change state once:
//! the loser's commit fails (`VersionMismatch`) and nothing of it lands.
//! Custody deposits are also credited once per chain transfer, whatever
//! delivery ids report it ([`incoming`](super::incoming)).

use super::notice::{Direction, Notice, Outcome, Provider};
use super::WebhooksState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::money::movement::{Movement, MovementStatus};
use crate::money::references;
use crate::money::settle;
use crate::providers::kyc::KycDecision;
use crate::store::{ReceiptStatus, StoreError, Transaction, TxKind, WebhookReceipt, Write};
use crate::users::kyc::KycDecisions;
use serde::Serialize;
use serde_json::json;

/// How long webhook receipts are kept (DynamoDB TTL).
pub const RECEIPT_DAYS: i64 = 30;

/// How long a notice naming an unknown provider reference is retried
/// before it is rejected (see `Notice::ProviderSettlement`): far above the
/// milliseconds by which a payout's notice can overtake the commit of its
/// reference, and below the time the queues take to redeliver it twice
/// (visibility 30 s in the embedded log, 120 s on SQS), so that a notice
/// about an order that is not ours is rejected, not dead-lettered.
pub const REFERENCE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(45);

/// The answer to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// `accepted` (verified, stored and queued: it is applied shortly,
    /// once) or `duplicate` (this delivery id was received before;
    /// nothing new was stored).
    pub status: String,
}

impl WebhookAck {
    pub(super) fn of(status: &str) -> Self {
        WebhookAck {
            status: status.to_owned(),
        }
    }
}

/// Why applying failed. An [`ApiError`] with a 4xx status is permanent
/// (the receipt is rejected with its code); anything else is transient.
#[derive(Debug)]
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

/// The receipt's move from `received` to `status` (on its version) and
/// the `webhook.applied` event: the writes that join the state change.
pub(super) fn applied_writes(
    receipt: &WebhookReceipt,
    status: ReceiptStatus,
    user_id: Option<&str>,
    transaction_id: Option<&str>,
    action: &str,
) -> Vec<Write> {
    let next = WebhookReceipt {
        status,
        action: Some(action.to_owned()),
        updated_at: Some(crate::events::now()),
        version: receipt.version + 1,
        ..receipt.clone()
    };
    vec![
        Write::UpdateWebhookReceipt {
            receipt: next,
            expected_version: receipt.version,
        },
        Write::Emit(Event::new(
            EventType::WebhookApplied,
            user_id,
            json!({
                "provider": receipt.provider,
                "webhook_id": receipt.webhook_id,
                "transaction_id": transaction_id,
                "action": action,
            }),
        )),
    ]
}

/// The receipt's move from `received` to `rejected` with `error`, and the
/// `webhook.rejected` event; nothing else changes.
pub(super) fn rejected_writes(
    receipt: &WebhookReceipt,
    user_id: Option<&str>,
    error: &ApiError,
) -> Vec<Write> {
    let next = WebhookReceipt {
        status: ReceiptStatus::Rejected,
        error: Some(format!("{}: {}", error.code, error.message)),
        updated_at: Some(crate::events::now()),
        version: receipt.version + 1,
        ..receipt.clone()
    };
    vec![
        Write::UpdateWebhookReceipt {
            receipt: next,
            expected_version: receipt.version,
        },
        Write::Emit(Event::new(
            EventType::WebhookRejected,
            user_id,
            json!({
                "provider": receipt.provider,
                "webhook_id": receipt.webhook_id,
                "code": error.code,
                "message": error.message,
            }),
        )),
    ]
}

/// Applies `notice` (stored in `receipt`, still `received`): one commit
/// makes the state change and moves the receipt. Returns the receipt's
/// new status.
pub(super) async fn apply(
    state: &WebhooksState,
    provider: Provider,
    notice: &Notice,
    receipt: &WebhookReceipt,
) -> Result<ReceiptStatus, Failure> {
    let ledger = &state.ledger;
    match notice {
        Notice::Ignored { .. } => {
            let writes = applied_writes(receipt, ReceiptStatus::Ignored, None, None, "ignored");
            ledger.store.commit(writes).await?;
            Ok(ReceiptStatus::Ignored)
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
            let named = Named {
                direction: *direction,
                outcome: *outcome,
                amount: amount.as_deref(),
                event_type,
            };
            settle_named(state, provider, receipt, &tx, named).await
        }
        Notice::ProviderSettlement {
            provider_ref,
            outcome,
            amount,
            currency,
            event_type,
            ..
        } => {
            // No reference: transient while the receipt is young (a
            // payout's reference is recorded just after the provider took
            // it, and its notice can overtake that commit); after
            // REFERENCE_GRACE it is a notice about no order of ours (Banxa
            // also reports orders users made at Banxa itself), rejected.
            let ours = references::resolve(&*ledger.store, provider.as_str(), provider_ref)
                .await?
                .ok_or_else(|| missing_reference(receipt.received_at, crate::events::now()))?;
            let tx = ledger
                .store
                .transaction(&ours.user_id, &ours.transaction_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("unknown_transaction", "the reference names no transaction")
                })?;
            // Money in another currency quoting our reference (EUR paid
            // against a USD deposit) is not this deposit's payment.
            if let Some(currency) = currency {
                let ours = Movement::of(&tx)?.asset;
                if !currency.eq_ignore_ascii_case(&ours) {
                    return Err(ApiError::unprocessable(
                        "currency_mismatch",
                        format!("the provider reports {currency}, the transaction is in {ours}"),
                    )
                    .into());
                }
            }
            // The provider's id names one order of one kind: its direction
            // is the transaction's.
            let direction = match tx.kind {
                TxKind::FiatDeposit => Direction::In,
                _ => Direction::Out,
            };
            let named = Named {
                direction,
                outcome: *outcome,
                amount: amount.as_deref(),
                event_type,
            };
            settle_named(state, provider, receipt, &tx, named).await
        }
        Notice::KycReview {
            user_id,
            applicant_id,
            verified,
            reason,
            reviewed_at,
            ..
        } => {
            let decision = if *verified {
                KycDecision::Verified
            } else {
                KycDecision::Rejected {
                    reason: reason.clone().unwrap_or_default(),
                }
            };
            let action = if *verified {
                "kyc verified"
            } else {
                "kyc rejected"
            };
            let writes = |changed: bool| {
                let (status, action) = if changed {
                    (ReceiptStatus::Applied, action)
                } else {
                    (
                        ReceiptStatus::Ignored,
                        "ignored: the user's KYC is not pending, or the review predates the submission",
                    )
                };
                applied_writes(receipt, status, Some(user_id), None, action)
            };
            let submission = format!("{}:{applicant_id}", provider.as_str());
            let changed = KycDecisions::new(ledger.store.clone())
                .decide(user_id, &submission, &decision, *reviewed_at, writes)
                .await?;
            Ok(if changed {
                ReceiptStatus::Applied
            } else {
                ReceiptStatus::Ignored
            })
        }
        Notice::Refund {
            provider_ref,
            refunded,
            ..
        } => super::refund::apply(state, provider, receipt, provider_ref, refunded).await,
        Notice::IncomingDeposit { .. } => {
            super::incoming::apply(state, provider, notice, receipt).await
        }
    }
}

/// The failure of a notice whose provider reference is unknown, received
/// at `received_at`: transient (retried) within [`REFERENCE_GRACE`],
/// permanent (rejected) after.
pub(super) fn missing_reference(
    received_at: crate::events::Timestamp,
    now: crate::events::Timestamp,
) -> ApiError {
    if now - received_at < REFERENCE_GRACE {
        ApiError::unavailable(
            "unknown_reference",
            "no transaction has this provider reference yet",
            1,
        )
    } else {
        ApiError::not_found(
            "unknown_reference",
            "no transaction has this provider reference",
        )
    }
}

/// What a settling notice says about the transaction it names.
struct Named<'a> {
    direction: Direction,
    outcome: Outcome,
    amount: Option<&'a str>,
    event_type: &'a str,
}

/// Settles `tx` as `named` says, once: checks that `provider` may settle
/// it and the amount, then one commit makes the state change and moves
/// the receipt (a transaction no longer pending only moves the receipt).
async fn settle_named(
    state: &WebhooksState,
    provider: Provider,
    receipt: &WebhookReceipt,
    tx: &Transaction,
    named: Named<'_>,
) -> Result<ReceiptStatus, Failure> {
    let ledger = &state.ledger;
    let mut movement = Movement::of(tx)?;
    check_settles(provider, named.direction, tx, &movement)?;
    settle::check_amount(ledger, &movement, named.amount)?;
    let (user, id) = (Some(tx.user_id.as_str()), Some(tx.transaction_id.as_str()));
    if tx.status != MovementStatus::Pending.as_str() {
        let action = format!("ignored: already {}", tx.status);
        let writes = applied_writes(receipt, ReceiptStatus::Ignored, user, id, &action);
        ledger.store.commit(writes).await?;
        return Ok(ReceiptStatus::Ignored);
    }
    if named.outcome == Outcome::Failed {
        movement.failure_reason = Some(named.event_type.to_owned());
    }
    let action = named.outcome.status().as_str();
    let extra = applied_writes(receipt, ReceiptStatus::Applied, user, id, action);
    settle::finish(ledger, tx, &movement, named.outcome, extra).await?;
    Ok(ReceiptStatus::Applied)
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn an_unknown_reference_is_retried_for_the_grace_then_rejected() {
        let received = crate::events::now();
        let later = |seconds| received + chrono::TimeDelta::seconds(seconds);
        // Transient (503: the applier retries) while young ...
        for now in [received, later(1), later(44)] {
            assert_eq!(
                missing_reference(received, now).status,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        // ... permanent (404: the receipt is rejected) after.
        for now in [later(45), later(3_600)] {
            let e = missing_reference(received, now);
            assert_eq!(
                (e.status, &*e.code),
                (StatusCode::NOT_FOUND, "unknown_reference")
            );
        }
    }
}
