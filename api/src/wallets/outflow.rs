//! Taking a withdrawal in (crypto or fiat): KYC, idempotency, the venue
//! debit and the record of it.
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
use super::idempotency;
use super::movement::{state_event, Movement, FAILED, PENDING};
use super::{settle, upstream};
use crate::error::ApiError;
use crate::state::Api;
use crate::store::{Conflict, StoreError, Transaction, TxKind, Write};
use crate::webhooks::notice::Outcome;

/// A validated withdrawal request.
pub struct Outflow<'a> {
    pub user_id: &'a str,
    /// Idempotency scope (`withdraw`, `fiat_withdraw`).
    pub scope: &'static str,
    pub idempotency_key: &'a str,
    pub fingerprint: String,
    pub kind: TxKind,
    pub amount: &'a AssetAmount,
    pub movement: Movement,
}

/// What [`admit`] did.
#[derive(Debug)]
pub enum Admission {
    /// Debited and recorded: a new `pending` transaction.
    New(Transaction),
    /// The key was used before with the same request: its transaction.
    Replay(Transaction),
}

/// Replays an earlier request with the same key, or debits the venue and
/// records a new `pending` withdrawal (see the module doc). 422
/// `insufficient_funds` changes nothing.
pub async fn admit(api: &Api, outflow: Outflow<'_>) -> Result<Admission, ApiError> {
    let Outflow {
        user_id,
        scope,
        idempotency_key,
        fingerprint,
        kind,
        amount,
        movement,
    } = outflow;
    // Held until the commit: a request with this key on another node waits,
    // then replays this one instead of debiting the venue a second time.
    let _claimed = api
        .claims
        .claim(scope, user_id, idempotency_key)
        .await
        .map_err(|_| {
            ApiError::conflict(
                "duplicate_idempotency_key",
                "idempotency_key is being used by another request",
            )
        })?;
    if let Some(tx) = idempotency::prior(api, user_id, scope, idempotency_key, &fingerprint).await?
    {
        return Ok(Admission::Replay(tx));
    }
    upstream::venue_debit(api, user_id, &amount.asset, amount.raw).await?;
    let now = crate::events::now();
    let tx = Transaction {
        user_id: user_id.to_owned(),
        transaction_id: uuid::Uuid::now_v7().to_string(),
        kind,
        status: PENDING.to_owned(),
        pair: Some(amount.asset.clone()),
        created_at: now,
        updated_at: now,
        version: 1,
        detail: movement.to_detail(),
    };
    let writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::CreateIdempotency(idempotency::record(
            user_id,
            scope,
            idempotency_key,
            &fingerprint,
            &tx.transaction_id,
        )),
        Write::Emit(state_event(&tx, &movement, None)),
    ];
    match api.store.commit(writes).await {
        Ok(()) => {
            api.relay.notify();
            Ok(Admission::New(tx))
        }
        Err(e) => {
            credit_back(api, user_id, amount, &e).await;
            if e == StoreError::Conflict(Conflict::IdempotencyKey) {
                if let Some(tx) =
                    idempotency::prior(api, user_id, scope, idempotency_key, &fingerprint).await?
                {
                    return Ok(Admission::Replay(tx));
                }
            }
            Err(e.into())
        }
    }
}

/// Undoes a debit whose record could not be committed.
async fn credit_back(api: &Api, user_id: &str, amount: &AssetAmount, cause: &StoreError) {
    match upstream::venue_credit(api, user_id, &amount.asset, amount.raw).await {
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
    /// Taken; its outcome comes by webhook.
    Accepted,
    /// Refused for good: nothing was or will be sent.
    Refused(String),
    /// No answer (timeout, provider down, breaker open): it may or may not
    /// have been taken.
    Unknown(String),
}

/// Records the answer to a submitted (pending) withdrawal and returns the
/// status to answer the client with. A refusal fails the withdrawal and
/// credits the funds back ([`settle::finish`]); an unknown outcome leaves
/// it `pending` for the provider's webhook or reconciliation, since a
/// refund of a transfer that may have been sent could pay twice.
pub async fn after_submission(
    api: &Api,
    tx: &Transaction,
    mut movement: Movement,
    submission: Submission,
) -> String {
    match submission {
        Submission::Accepted => PENDING.to_owned(),
        Submission::Refused(why) => {
            movement.answer_status = Some(FAILED.to_owned());
            movement.failure_reason = Some(why);
            match settle::finish(api, tx, &movement, Outcome::Failed, Vec::new()).await {
                Ok(_) => FAILED.to_owned(),
                Err(e) => {
                    tracing::error!(transaction_id = %tx.transaction_id, error = %e,
                        "withdrawal refused but its failure was not recorded; left pending");
                    PENDING.to_owned()
                }
            }
        }
        Submission::Unknown(why) => {
            tracing::error!(transaction_id = %tx.transaction_id, error = %why,
                "withdrawal submission outcome unknown; left pending");
            PENDING.to_owned()
        }
    }
}
