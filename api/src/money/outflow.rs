//! The one withdraw path (crypto and fiat): the request key, the venue
//! debit, the record of it, the hand-over to custody or a payment
//! provider and the answer ([`withdraw`]).
//!
//! Order: the venue debit comes first (it checks and takes the funds
//! atomically, so the user can never withdraw what they do not have),
//! then one commit records the transaction, its idempotency key and its
//! `withdrawal.state_changed` event. Requests with one key hold its claim
//! ([`crate::cluster::claim`]) from the check to the commit, so across
//! nodes only one of them debits the venue. If that commit fails the debit is
//! undone by crediting the amount back, and nothing is recorded; a commit
//! refused because a concurrent request with the same key won answers as
//! that request (replay) after crediting back. See
//! [`settle`](super::settle) for why credits go the other way round.

use super::amount::AssetAmount;
use super::movement::{state_event, Movement, MovementStatus, Outcome};
use super::venue::BalanceChange;
use super::{request_keys, settle, Ledger};
use crate::error::ApiError;
use crate::store::{Conflict, StoreError, Transaction, TxKind, Write};
use serde::Serialize;
use std::future::Future;

/// The answer to a withdrawal or fiat request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MovementAccepted {
    pub transaction_id: String,
    /// `pending` (or `failed` when the provider refused it at once; the
    /// funds are then back).
    #[schema(value_type = String)]
    pub status: MovementStatus,
}

/// A validated withdrawal request.
pub struct Outflow<'a> {
    pub user_id: &'a str,
    /// Request-key scope (`withdraw`, `fiat_withdraw`).
    pub scope: &'static str,
    pub idempotency_key: &'a str,
    /// The normalized request fields besides the scope, asset and raw
    /// amount that make it this request (the address; the provider and
    /// the destination), for its fingerprint.
    pub identity: &'a [&'a str],
    pub kind: TxKind,
    pub amount: &'a AssetAmount,
    pub movement: Movement,
}

impl Outflow<'_> {
    fn fingerprint(&self) -> String {
        let raw = self.amount.raw.to_string();
        let mut fields = vec![self.scope, self.amount.asset.as_str(), raw.as_str()];
        fields.extend_from_slice(self.identity);
        request_keys::fingerprint(&fields)
    }
}

/// What [`admit`] did.
#[derive(Debug)]
pub enum Admission {
    /// Debited and recorded: a new `pending` transaction.
    New(Transaction),
    /// The key was used before with the same request: its transaction.
    Replay(Transaction),
}

/// Withdraws: a replay of the request key answers as the first request
/// did; otherwise the amount is debited and recorded ([`admit`]), the
/// recorded withdrawal is handed to `submit` (custody or a payment
/// provider) and its answer recorded ([`after_submission`]).
pub async fn withdraw<F, Fut>(
    ledger: &Ledger,
    outflow: Outflow<'_>,
    submit: F,
) -> Result<MovementAccepted, ApiError>
where
    F: FnOnce(Transaction, Movement) -> Fut,
    Fut: Future<Output = Submission>,
{
    let movement = outflow.movement.clone();
    let (tx, status) = match admit(ledger, outflow).await? {
        Admission::Replay(tx) => {
            let status = Movement::of(&tx)?.answered_status();
            (tx, status)
        }
        Admission::New(tx) => {
            let submission = submit(tx.clone(), movement.clone()).await;
            let status = after_submission(ledger, &tx, movement, submission).await;
            (tx, status)
        }
    };
    Ok(MovementAccepted {
        transaction_id: tx.transaction_id,
        status,
    })
}

/// Replays an earlier request with the same key, or debits the venue and
/// records a new `pending` withdrawal (see the module doc). 422
/// `insufficient_funds` changes nothing.
pub async fn admit(ledger: &Ledger, outflow: Outflow<'_>) -> Result<Admission, ApiError> {
    let fingerprint = outflow.fingerprint();
    let Outflow {
        user_id,
        scope,
        idempotency_key,
        kind,
        amount,
        movement,
        ..
    } = outflow;
    let store = ledger.store.as_ref();
    // Held until the commit: a request with this key on another node waits,
    // then replays this one instead of debiting the venue a second time.
    let _claimed = ledger
        .claims
        .claim(scope, user_id, idempotency_key)
        .await
        .map_err(|_| {
            ApiError::conflict(
                "duplicate_idempotency_key",
                "idempotency_key is being used by another request",
            )
        })?;
    let prior = || request_keys::prior(store, user_id, scope, idempotency_key, &fingerprint);
    if let Some(tx) = prior().await? {
        return Ok(Admission::Replay(tx));
    }
    ledger
        .venue
        .change(BalanceChange::Debit, user_id, &amount.asset, amount.raw)
        .await?;
    let tx = movement.new_transaction(
        super::movement::new_transaction_id(),
        user_id,
        kind,
        MovementStatus::Pending,
    );
    let writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::CreateIdempotency(request_keys::record(
            user_id,
            scope,
            idempotency_key,
            &fingerprint,
            &tx.transaction_id,
        )),
        Write::Emit(state_event(&tx, &movement, None)),
    ];
    match ledger.store.commit(writes).await {
        Ok(()) => Ok(Admission::New(tx)),
        Err(e) => {
            credit_back(ledger, user_id, amount, &e).await;
            if e == StoreError::Conflict(Conflict::IdempotencyKey) {
                if let Some(tx) = prior().await? {
                    return Ok(Admission::Replay(tx));
                }
            }
            Err(e.into())
        }
    }
}

/// Undoes a debit whose record could not be committed.
async fn credit_back(ledger: &Ledger, user_id: &str, amount: &AssetAmount, cause: &StoreError) {
    let credit = ledger
        .venue
        .change(BalanceChange::Credit, user_id, &amount.asset, amount.raw);
    match credit.await {
        Ok(()) => {
            tracing::warn!(user_id, asset = %amount.asset, error = %cause,
                "withdrawal not recorded; debit credited back")
        }
        Err(e) => tracing::error!(user_id, asset = %amount.asset, raw = amount.raw,
            error = %e, cause = %cause,
            "withdrawal not recorded and the debit could not be credited back; reconcile"),
    }
}

/// What custody or a payment provider answered to a submitted withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Taken; its outcome comes by webhook. With the provider's id of it
    /// when its notices name it by that id alone (recorded as a
    /// [`references`](super::references) entry).
    Accepted(Option<Reference>),
    /// Refused for good: nothing was or will be sent.
    Refused(String),
    /// No answer (timeout, provider down, breaker open): it may or may not
    /// have been taken.
    Unknown(String),
}

/// A provider's id of a submitted withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub provider: String,
    pub provider_ref: String,
}

/// Records the answer to a submitted (pending) withdrawal and returns the
/// status to answer the client with. A refusal fails the withdrawal and
/// credits the funds back ([`settle::finish`]); an unknown outcome leaves
/// it `pending` for the provider's webhook or reconciliation, since a
/// refund of a transfer that may have been sent could pay twice.
pub async fn after_submission(
    ledger: &Ledger,
    tx: &Transaction,
    mut movement: Movement,
    submission: Submission,
) -> MovementStatus {
    match submission {
        Submission::Accepted(None) => MovementStatus::Pending,
        Submission::Accepted(Some(r)) => {
            let ours = super::references::Ours {
                user_id: tx.user_id.clone(),
                transaction_id: tx.transaction_id.clone(),
            };
            let write = super::references::record(&r.provider, &r.provider_ref, &ours);
            if let Err(e) = ledger.store.commit(vec![write]).await {
                // Its notice will find no reference: retried, then
                // rejected; the payout stays pending for an operator.
                tracing::error!(transaction_id = %tx.transaction_id, error = %e,
                    "the provider's reference to a payout was not recorded; left pending");
            }
            MovementStatus::Pending
        }
        Submission::Refused(why) => {
            movement.answer_status = Some(MovementStatus::Failed);
            movement.failure_reason = Some(why);
            match settle::finish(ledger, tx, &movement, Outcome::Failed, Vec::new()).await {
                Ok(_) => MovementStatus::Failed,
                Err(e) => {
                    tracing::error!(transaction_id = %tx.transaction_id, error = %e,
                        "withdrawal refused but its failure was not recorded; left pending");
                    MovementStatus::Pending
                }
            }
        }
        Submission::Unknown(why) => {
            tracing::error!(transaction_id = %tx.transaction_id, error = %why,
                "withdrawal submission outcome unknown; left pending");
            MovementStatus::Pending
        }
    }
}
