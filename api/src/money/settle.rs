//! Finishing a deposit or withdrawal: recording the provider's outcome and
//! putting money back at the venue when the outcome needs it (a completed
//! deposit, a failed withdrawal).
//!
//! # Venue and store: which goes first
//!
//! The venue and the store are two systems with no shared transaction, so
//! one of them moves first and a crash between the two leaves them apart.
//! We pick the order that can never create money:
//! - **money in (credit) after the record.** The outcome is committed
//!   first, moving the transaction to `processing` in the same batch as
//!   the webhook receipt; only a commit that succeeded goes on to credit
//!   the venue, then a second commit marks it `completed` / `failed`. The
//!   receipt and the expected-version check make that first commit
//!   succeed at most once per transaction, so concurrent or repeated
//!   deliveries can never credit twice. A crash or venue failure between
//!   the commit and the credit leaves the transaction in `processing`: an
//!   under-credit that is visible (status, error log) and reconcilable,
//!   never an over-credit.
//! - **money out (debit) before the record** (see
//!   [`outflow`](super::outflow)): the venue refuses what the user does
//!   not have, and a failed commit is undone by crediting back.

use super::movement::{is_inflow, state_event, Movement, MovementStatus, Outcome};
use super::venue::BalanceChange;
use super::Ledger;
use crate::error::ApiError;
use crate::store::{StoreError, Transaction, Write};
use orderbook::decimal::parse_scaled;

/// Moves `tx` (pending) to `outcome`, with `movement` as its new detail
/// (carrying the failure reason, if any). `extra` writes (webhook
/// receipt, `webhook.received`) join the first commit, so they land
/// exactly when the outcome does. A store conflict (duplicate webhook, a
/// concurrent change of the transaction) is returned and nothing changed.
/// Once the outcome is committed, a venue failure is logged and the
/// transaction returned in `processing`.
pub async fn finish(
    ledger: &Ledger,
    tx: &Transaction,
    movement: &Movement,
    outcome: Outcome,
    extra: Vec<Write>,
) -> Result<Transaction, StoreError> {
    let needs_credit = is_inflow(tx.kind) == (outcome == Outcome::Completed);
    let status = if needs_credit {
        MovementStatus::Processing
    } else {
        outcome.status()
    };
    let next = advance(tx, status, movement);
    let mut writes = vec![
        Write::UpdateTransaction {
            tx: next.clone(),
            expected_version: tx.version,
        },
        Write::Emit(state_event(&next, movement, previous(tx))),
    ];
    writes.extend(extra);
    ledger.store.commit(writes).await?;
    if !needs_credit {
        return Ok(next);
    }
    Ok(credit_and_close(ledger, next, movement, outcome.status()).await)
}

/// Records funds that arrived (a new deposit transaction, created in
/// `processing` together with `extra`), then credits them. Same order and
/// guarantees as [`finish`].
pub async fn record_incoming(
    ledger: &Ledger,
    tx: Transaction,
    movement: &Movement,
    extra: Vec<Write>,
) -> Result<Transaction, StoreError> {
    debug_assert_eq!(tx.status, MovementStatus::Processing.as_str());
    let mut writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::Emit(state_event(&tx, movement, None)),
    ];
    writes.extend(extra);
    ledger.store.commit(writes).await?;
    Ok(credit_and_close(ledger, tx, movement, MovementStatus::Completed).await)
}

/// The status `tx` had before a change (its stored word, kept as it was
/// when it is not a movement status).
fn previous(tx: &Transaction) -> Option<MovementStatus> {
    MovementStatus::of(tx).ok()
}

/// `tx` one version on, in `status`, with `movement` as detail.
fn advance(tx: &Transaction, status: MovementStatus, movement: &Movement) -> Transaction {
    Transaction {
        status: status.as_str().to_owned(),
        updated_at: crate::events::now(),
        version: tx.version + 1,
        detail: movement.to_detail(),
        ..tx.clone()
    }
}

/// Credits the movement's amount to its user, then moves the transaction
/// from `processing` to `final_status`. Failures leave it in `processing`
/// (logged; the commit already guards against a second credit).
async fn credit_and_close(
    ledger: &Ledger,
    processing: Transaction,
    movement: &Movement,
    final_status: MovementStatus,
) -> Transaction {
    let tx_id = processing.transaction_id.clone();
    let raw = match ledger
        .venue
        .scale_of(&movement.asset)
        .and_then(|scale| parse_scaled(&movement.amount, scale).ok())
    {
        Some(raw) => raw,
        None => {
            tracing::error!(transaction_id = %tx_id, asset = %movement.asset, amount = %movement.amount,
                "movement amount unreadable; left in processing, not credited");
            return processing;
        }
    };
    let credit = ledger.venue.change(
        BalanceChange::Credit,
        &processing.user_id,
        &movement.asset,
        raw,
    );
    if let Err(e) = credit.await {
        tracing::error!(transaction_id = %tx_id, error = %e,
            "venue credit failed; left in processing, not credited");
        return processing;
    }
    let closed = advance(&processing, final_status, movement);
    let writes = vec![
        Write::UpdateTransaction {
            tx: closed.clone(),
            expected_version: processing.version,
        },
        Write::Emit(state_event(
            &closed,
            movement,
            Some(MovementStatus::Processing),
        )),
    ];
    match ledger.store.commit(writes).await {
        Ok(()) => closed,
        Err(e) => {
            tracing::error!(transaction_id = %tx_id, error = %e,
                "credited at the venue but the final status was not recorded; left in processing");
            processing
        }
    }
}

/// 422 `amount_mismatch` when a provider reports another amount than
/// the movement's.
pub fn check_amount(
    ledger: &Ledger,
    movement: &Movement,
    reported: Option<&str>,
) -> Result<(), ApiError> {
    let Some(reported) = reported else {
        return Ok(());
    };
    let scale = ledger
        .venue
        .scale_of(&movement.asset)
        .ok_or_else(|| ApiError::internal(format!("asset {} left the venue", movement.asset)))?;
    let ours = parse_scaled(&movement.amount, scale).ok();
    match parse_scaled(reported, scale) {
        Ok(theirs) if Some(theirs) == ours => Ok(()),
        _ => Err(ApiError::unprocessable(
            "amount_mismatch",
            "the reported amount differs from the transaction's",
        )),
    }
}
