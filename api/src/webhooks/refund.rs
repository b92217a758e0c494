//! Applying a provider's refund of a completed deposit
//! ([`Notice::Refund`](super::notice::Notice), Stripe's `charge.refunded`):
//! the money went back to the payer, so the user's balance gives back
//! what it was credited for it.
//!
//! The notice carries the total refunded so far; the deposit records the
//! total already handled (`Movement::refund`), so a repeated or older
//! notice debits nothing and a later partial refund debits only the
//! difference. Money out goes before the record, as in
//! [`outflow`](crate::money::outflow): the venue debit (refused beyond the
//! balance), then one commit with the deposit's new refund total (on its
//! version), the receipt and a `deposit.refunded` event; a failed commit
//! is undone by crediting back. When the balance does not cover the
//! refund (the user traded or withdrew the funds), nothing is debited,
//! the shortfall is recorded as `unrecovered` on the deposit and in the
//! event, and an error is logged: recovering it is an operator's matter
//! (docs/OPERATIONS.md, "A refund not recovered"). A refund before the
//! deposit is completed is retried by the queue (the success notice may
//! still be on its way). Refunds of one deposit are applied one at a time
//! (a claim on the deposit, shared through Redis across nodes). Known
//! limits: a crash or an ambiguous venue timeout between the debit and
//! its commit leaves a debit unrecorded (a redelivery debits again), as in
//! every debit-first path, visible to reconciliation; a shortfall debits
//! nothing, not the part the balance covers.

use super::notice::Provider;
use super::process::{applied_writes, missing_reference, Failure};
use super::WebhooksState;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::money::movement::{Movement, MovementStatus, Refund};
use crate::money::references;
use crate::money::venue::BalanceChange;
use crate::store::{ReceiptStatus, Transaction, TxKind, WebhookReceipt, Write};
use orderbook::decimal::{format_scaled, parse_scaled};
use serde_json::json;

/// Applies a refund of `refunded` in total of the payment `provider_ref`.
pub(super) async fn apply(
    state: &WebhooksState,
    provider: Provider,
    receipt: &WebhookReceipt,
    provider_ref: &str,
    refunded: &str,
) -> Result<ReceiptStatus, Failure> {
    let ledger = &state.ledger;
    let ours = references::resolve(&*ledger.store, provider.as_str(), provider_ref)
        .await?
        .ok_or_else(|| missing_reference(receipt.received_at, crate::events::now()))?;
    // One refund of a deposit at a time, across nodes: two notices with
    // different totals applied together would each see the other's debit
    // in flight (one could find the balance short and record a shortfall
    // the balance covers).
    let _claim = ledger
        .claims
        .claim("refund", &ours.user_id, &ours.transaction_id)
        .await
        .map_err(|_| {
            ApiError::unavailable(
                "refund_busy",
                "another refund of this deposit is applied",
                1,
            )
        })?;
    let tx = ledger
        .store
        .transaction(&ours.user_id, &ours.transaction_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("unknown_transaction", "the reference names no transaction")
        })?;
    let mut movement = Movement::of(&tx)?;
    if tx.kind != TxKind::FiatDeposit || movement.provider.as_deref() != Some(provider.as_str()) {
        return Err(ApiError::unprocessable(
            "wrong_transaction",
            "a refund names a deposit made with its provider",
        )
        .into());
    }
    match MovementStatus::of(&tx)? {
        MovementStatus::Completed => {}
        MovementStatus::Failed => {
            return Err(ApiError::unprocessable(
                "not_completed",
                "the refunded deposit failed: nothing was credited",
            )
            .into())
        }
        // Not credited yet: the success notice may be queued behind this.
        MovementStatus::Pending | MovementStatus::Processing => {
            return Err(ApiError::unavailable(
                "not_completed",
                "the refunded deposit is not completed yet",
                1,
            )
            .into())
        }
    }
    let scale = ledger
        .venue
        .scale_of(&movement.asset)
        .ok_or_else(|| ApiError::internal(format!("asset {} left the venue", movement.asset)))?;
    let raw = |s: &str| parse_scaled(s, scale).ok();
    let deposit = raw(&movement.amount)
        .ok_or_else(|| ApiError::internal("the deposit's amount is unreadable"))?;
    let total = raw(refunded).filter(|t| *t <= deposit).ok_or_else(|| {
        ApiError::unprocessable(
            "amount_mismatch",
            "the refunded amount is not within the deposit's",
        )
    })?;
    let before = movement.refund.clone().unwrap_or_default();
    let handled = if before.amount.is_empty() {
        0
    } else {
        raw(&before.amount).ok_or_else(|| ApiError::internal("unreadable refund total"))?
    };
    let (user, id) = (Some(tx.user_id.as_str()), Some(tx.transaction_id.as_str()));
    if total <= handled {
        let action = format!("ignored: {} refunded already", before.amount);
        let writes = applied_writes(receipt, ReceiptStatus::Ignored, user, id, &action);
        ledger.store.commit(writes).await?;
        return Ok(ReceiptStatus::Ignored);
    }
    let delta = total - handled;
    let unrecovered_before = before.unrecovered.as_deref().and_then(raw).unwrap_or(0);
    let debit = ledger
        .venue
        .change(BalanceChange::Debit, &tx.user_id, &movement.asset, delta)
        .await;
    let (debited, unrecovered) = match debit {
        Ok(()) => (delta, unrecovered_before),
        Err(e) if e.code == "insufficient_funds" => {
            tracing::error!(user_id = %tx.user_id, transaction_id = %tx.transaction_id,
                asset = %movement.asset, amount = %format_scaled(delta, scale),
                "a refunded deposit's funds are no longer in the balance; not recovered");
            (0, unrecovered_before + delta)
        }
        Err(e) => return Err(e.into()),
    };
    movement.refund = Some(Refund {
        amount: format_scaled(total, scale),
        unrecovered: (unrecovered > 0).then(|| format_scaled(unrecovered, scale)),
    });
    let next = Transaction {
        detail: movement.to_detail(),
        updated_at: crate::events::now(),
        version: tx.version + 1,
        ..tx.clone()
    };
    let action = if debited == delta {
        format!("refunded: debited {}", format_scaled(delta, scale))
    } else {
        format!("refunded: {} not recovered", format_scaled(delta, scale))
    };
    let mut writes = vec![
        Write::UpdateTransaction {
            tx: next,
            expected_version: tx.version,
        },
        Write::Emit(Event::new(
            EventType::DepositRefunded,
            user,
            json!({
                "transaction_id": tx.transaction_id,
                "provider": provider.as_str(),
                "asset": movement.asset,
                "refunded": format_scaled(total, scale),
                "debited": format_scaled(debited, scale),
                "unrecovered": format_scaled(unrecovered, scale),
            }),
        )),
    ];
    writes.extend(applied_writes(
        receipt,
        ReceiptStatus::Applied,
        user,
        id,
        &action,
    ));
    if let Err(e) = ledger.store.commit(writes).await {
        if debited > 0 {
            let back = ledger
                .venue
                .change(BalanceChange::Credit, &tx.user_id, &movement.asset, debited)
                .await;
            if let Err(again) = back {
                tracing::error!(user_id = %tx.user_id, asset = %movement.asset, raw = debited,
                    error = ?again, "refund debit not recorded and not credited back; reconcile");
            }
        }
        return Err(e.into());
    }
    Ok(ReceiptStatus::Applied)
}
