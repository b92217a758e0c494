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

use super::movement::{is_inflow, state_event, Movement, COMPLETED, PROCESSING};
use super::upstream;
use crate::state::Api;
use crate::store::{StoreError, Transaction, Write};
use crate::webhooks::notice::Outcome;
use orderbook::decimal::parse_scaled;

/// Moves `tx` (pending) to `outcome`, with `movement` as its new detail
/// (carrying the failure reason, if any). `extra` writes (webhook
/// receipt, `webhook.received`) join the first commit, so they land
/// exactly when the outcome does. A store conflict (duplicate webhook, a
/// concurrent change of the transaction) is returned and nothing changed.
/// Once the outcome is committed, a venue failure is logged and the
/// transaction returned in `processing`.
pub async fn finish(
    api: &Api,
    tx: &Transaction,
    movement: &Movement,
    outcome: Outcome,
    extra: Vec<Write>,
) -> Result<Transaction, StoreError> {
    let needs_credit = is_inflow(tx.kind) == (outcome == Outcome::Completed);
    let status = if needs_credit {
        PROCESSING
    } else {
        outcome.status()
    };
    let next = advance(tx, status, movement);
    let mut writes = vec![
        Write::UpdateTransaction {
            tx: next.clone(),
            expected_version: tx.version,
        },
        Write::Emit(state_event(&next, movement, Some(&tx.status))),
    ];
    writes.extend(extra);
    api.store.commit(writes).await?;
    api.relay.notify();
    if !needs_credit {
        return Ok(next);
    }
    Ok(credit_and_close(api, next, movement, outcome.status()).await)
}

/// Records funds that arrived (a new deposit transaction, created in
/// `processing` together with `extra`), then credits them. Same order and
/// guarantees as [`finish`].
pub async fn record_incoming(
    api: &Api,
    tx: Transaction,
    movement: &Movement,
    extra: Vec<Write>,
) -> Result<Transaction, StoreError> {
    debug_assert_eq!(tx.status, PROCESSING);
    let mut writes = vec![
        Write::CreateTransaction(tx.clone()),
        Write::Emit(state_event(&tx, movement, None)),
    ];
    writes.extend(extra);
    api.store.commit(writes).await?;
    api.relay.notify();
    Ok(credit_and_close(api, tx, movement, COMPLETED).await)
}

/// `tx` one version on, in `status`, with `movement` as detail.
fn advance(tx: &Transaction, status: &str, movement: &Movement) -> Transaction {
    Transaction {
        status: status.to_owned(),
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
    api: &Api,
    processing: Transaction,
    movement: &Movement,
    final_status: &str,
) -> Transaction {
    let tx_id = processing.transaction_id.clone();
    let raw = match scale_of(api, &movement.asset)
        .and_then(|scale| parse_scaled(&movement.amount, scale).ok())
    {
        Some(raw) => raw,
        None => {
            tracing::error!(transaction_id = %tx_id, asset = %movement.asset, amount = %movement.amount,
                "movement amount unreadable; left in processing, not credited");
            return processing;
        }
    };
    if let Err(e) = upstream::venue_credit(api, &processing.user_id, &movement.asset, raw).await {
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
        Write::Emit(state_event(&closed, movement, Some(PROCESSING))),
    ];
    match api.store.commit(writes).await {
        Ok(()) => {
            api.relay.notify();
            closed
        }
        Err(e) => {
            tracing::error!(transaction_id = %tx_id, error = %e,
                "credited at the venue but the final status was not recorded; left in processing");
            processing
        }
    }
}

/// The scale of a venue asset.
pub fn scale_of(api: &Api, asset: &str) -> Option<u8> {
    api.venue
        .assets()
        .into_iter()
        .find(|a| a.symbol == asset)
        .map(|a| a.scale)
}
