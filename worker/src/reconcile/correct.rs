//! What an operator applies after a reconciliation report, explicitly and
//! audited (docs/RECONCILIATION.md, "Corrections"); never called by
//! [`run_once`](super::run_once).
//!
//! - [`apply_correction`]: a venue credit (positive amount) or debit
//!   (negative) recorded as a `correction` transaction with its reason
//!   and operator, and a `reconcile.correction` event. It takes the
//!   ledger's order: money in after the record (a `processing`
//!   correction, then the credit, then `applied`), money out before it
//!   (the debit, which the venue refuses beyond the balance, then the
//!   `applied` record; credited back if that commit fails).
//! - [`close_transaction`]: moves a stuck deposit or withdrawal to the
//!   provider's final word with no venue call (a state-change event and a
//!   `reconcile.correction` event in the same commit); the venue side is
//!   a separate [`apply_correction`] when the balances say so.

use super::{amount, ReconcileContext};
use anyhow::{bail, Context as _};
use api::events::{Event, EventType};
use api::money::movement::{
    is_movement, new_transaction_id, state_event, Movement, MovementStatus, Outcome,
};
use api::money::venue::BalanceChange;
use api::store::{Transaction, TxKind, Write};
use serde_json::json;

/// Longest reason and operator accepted (they are stored and logged).
const MAX_REASON_CHARS: usize = 500;
const MAX_OPERATOR_CHARS: usize = 200;
/// The status of a correction whose venue change is done.
pub const APPLIED: &str = "applied";
/// The status of a credit correction recorded, its venue credit under way
/// (left so when the credit failed: the operator looks at the venue).
pub const CORRECTION_PROCESSING: &str = "processing";

fn check_words(reason: &str, operator: &str) -> anyhow::Result<()> {
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        bail!("a reason of 1 to {MAX_REASON_CHARS} characters is required");
    }
    if operator.trim().is_empty() || operator.chars().count() > MAX_OPERATOR_CHARS {
        bail!("an operator of 1 to {MAX_OPERATOR_CHARS} characters is required");
    }
    Ok(())
}

/// Credits (`amount` > 0) or debits (`amount` < 0) `user_id`'s `asset` at
/// the venue by `amount` (an exact decimal string at most at the asset's
/// scale), recorded as a `correction` transaction (status `applied`) with
/// `reason` and `operator`, and a `reconcile.correction` event. Errors
/// change nothing, except a credit that failed after its record (left
/// `processing`, logged).
pub async fn apply_correction(
    ctx: &ReconcileContext,
    user_id: &str,
    asset: &str,
    amount: &str,
    reason: &str,
    operator: &str,
) -> anyhow::Result<Transaction> {
    check_words(reason, operator)?;
    if user_id.is_empty() || user_id.len() > 200 {
        bail!("a user id of 1 to 200 characters is required");
    }
    let ledger = &ctx.ledger;
    let Some(scale) = ledger.venue.scale_of(asset) else {
        bail!("asset {asset} is not at the venue");
    };
    let Some(signed) = amount::parse(amount, scale).filter(|raw| *raw != 0) else {
        bail!("amount {amount:?} is not a non-zero decimal at {asset}'s scale ({scale})");
    };
    let raw = u64::try_from(signed.unsigned_abs()).context("amount too large")?;
    let now = api::events::now();
    let written = amount::format(signed, scale);
    let mut tx = Transaction {
        user_id: user_id.to_owned(),
        transaction_id: new_transaction_id(),
        kind: TxKind::Correction,
        status: APPLIED.to_owned(),
        pair: Some(asset.to_owned()),
        created_at: now,
        updated_at: now,
        version: 1,
        detail: json!({
            "asset": asset,
            "amount": written,
            "reason": reason,
            "operator": operator,
        })
        .into(),
    };
    let id = tx.transaction_id.clone();
    let event = || {
        Event::new(
            EventType::ReconcileCorrection,
            Some(user_id),
            json!({
                "action": "venue_change",
                "transaction_id": id,
                "asset": asset,
                "amount": written,
                "reason": reason,
                "operator": operator,
            }),
        )
    };
    if signed < 0 {
        ledger
            .venue
            .change(BalanceChange::Debit, user_id, asset, raw)
            .await
            .map_err(|e| anyhow::anyhow!("venue debit refused: {e:?}"))?;
        let writes = vec![Write::CreateTransaction(tx.clone()), Write::Emit(event())];
        if let Err(e) = ledger.store.commit(writes).await {
            let back = ledger
                .venue
                .change(BalanceChange::Credit, user_id, asset, raw)
                .await;
            if let Err(again) = back {
                tracing::error!(user_id, asset, raw, error = %again,
                    "correction debit not recorded and not credited back; reconcile");
            }
            return Err(e).context("recording the correction (debit credited back)");
        }
        tracing::info!(user_id, asset, amount = %written, operator, "correction applied");
        return Ok(tx);
    }
    // Money in: the record first, so a credit never happens unrecorded.
    let mut processing = tx.clone();
    processing.status = CORRECTION_PROCESSING.to_owned();
    ledger
        .store
        .commit(vec![Write::CreateTransaction(processing.clone())])
        .await
        .context("recording the correction")?;
    if let Err(e) = ledger
        .venue
        .change(BalanceChange::Credit, user_id, asset, raw)
        .await
    {
        tracing::error!(user_id, asset, raw, transaction_id = %tx.transaction_id, error = ?e,
            "correction credit failed; left processing");
        bail!("venue credit failed (correction left processing): {e:?}");
    }
    tx.version = 2;
    tx.updated_at = api::events::now();
    let writes = vec![
        Write::UpdateTransaction {
            tx: tx.clone(),
            expected_version: 1,
        },
        Write::Emit(event()),
    ];
    ledger
        .store
        .commit(writes)
        .await
        .context("credited at the venue but the correction stays processing")?;
    tracing::info!(user_id, asset, amount = %written, operator, "correction applied");
    Ok(tx)
}

/// Moves the stuck (`pending` or `processing`) deposit or withdrawal
/// `transaction_id` of `user_id` to `outcome` without any venue call,
/// with its state-change event and a `reconcile.correction` event naming
/// `reason` and `operator`. For a transaction the provider calls final
/// (a `reconcile.discrepancy`); the venue side, if the balances show
/// one, is an [`apply_correction`].
pub async fn close_transaction(
    ctx: &ReconcileContext,
    user_id: &str,
    transaction_id: &str,
    outcome: Outcome,
    reason: &str,
    operator: &str,
) -> anyhow::Result<Transaction> {
    check_words(reason, operator)?;
    let store = ctx.ledger.store.as_ref();
    let Some(tx) = store
        .transaction(user_id, transaction_id)
        .await
        .context("reading the transaction")?
    else {
        bail!("no transaction {transaction_id} of user {user_id}");
    };
    let from = MovementStatus::of(&tx).ok();
    if !is_movement(tx.kind)
        || !matches!(
            from,
            Some(MovementStatus::Pending | MovementStatus::Processing)
        )
    {
        bail!(
            "transaction {transaction_id} is not an open deposit or withdrawal ({:?}, {})",
            tx.kind,
            tx.status
        );
    }
    let mut movement = Movement::of(&tx).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if outcome == Outcome::Failed {
        movement.failure_reason = Some(format!("closed by reconciliation: {reason}"));
    }
    let closed = Transaction {
        status: outcome.status().as_str().to_owned(),
        updated_at: api::events::now(),
        version: tx.version + 1,
        detail: movement.to_detail(),
        ..tx.clone()
    };
    let audit = Event::new(
        EventType::ReconcileCorrection,
        Some(user_id),
        json!({
            "action": "close",
            "transaction_id": transaction_id,
            "from": tx.status,
            "to": closed.status,
            "reason": reason,
            "operator": operator,
        }),
    );
    let writes = vec![
        Write::UpdateTransaction {
            tx: closed.clone(),
            expected_version: tx.version,
        },
        Write::Emit(state_event(&closed, &movement, from)),
        Write::Emit(audit),
    ];
    store
        .commit(writes)
        .await
        .context("closing the transaction")?;
    tracing::info!(user_id, transaction_id, to = %closed.status, operator, "transaction closed by reconciliation");
    Ok(closed)
}
