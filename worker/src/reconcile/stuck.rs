//! Stuck transactions: deposits and withdrawals (crypto and fiat) still
//! `pending` or `processing` longer than the settings allow, each with
//! what its provider says now (asked by the provider's reference). A
//! provider's final word (`completed`, `failed`) on one of them is a
//! discrepancy: reported as a `reconcile.discrepancy` event, never
//! settled here (docs/RECONCILIATION.md says what an operator does).

use super::{ReconcileContext, ReconcileReport, ReconcileSettings};
use anyhow::Context as _;
use api::events::{Event, EventType};
use api::money::movement::{is_movement, Movement, MovementStatus};
use api::providers::RemoteStatus;
use api::store::{Transaction, TxKind, Write};
use serde_json::json;

/// What the provider said about a stuck transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAnswer {
    /// Its status (`NotFound`: it knows no such reference).
    Status(RemoteStatus),
    /// The transaction names no provider reference (nothing to ask).
    NoReference,
    /// The provider named is not one we have.
    UnknownProvider(String),
    /// It did not answer (down, timeout, no status queries).
    Unreachable(String),
}

impl ProviderAnswer {
    /// The word reports and events carry.
    pub fn as_str(&self) -> &str {
        match self {
            ProviderAnswer::Status(s) => s.as_str(),
            ProviderAnswer::NoReference => "no_reference",
            ProviderAnswer::UnknownProvider(_) => "unknown_provider",
            ProviderAnswer::Unreachable(_) => "unreachable",
        }
    }

    /// True when the provider calls the transaction final.
    pub fn is_final(&self) -> bool {
        matches!(self, ProviderAnswer::Status(s) if s.is_final())
    }
}

/// A deposit or withdrawal left open, and its provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckTransaction {
    pub user_id: String,
    pub transaction_id: String,
    pub kind: TxKind,
    /// `pending` or `processing`.
    pub status: String,
    pub asset: String,
    /// Exact decimal string, as stored.
    pub amount: String,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub created_at: api::events::Timestamp,
    pub provider_says: ProviderAnswer,
}

/// Finds the stuck transactions, asks their providers, records them in
/// `report` and commits one `reconcile.discrepancy` event per final
/// answer.
pub(super) async fn check(
    ctx: &ReconcileContext,
    settings: &ReconcileSettings,
    report: &mut ReconcileReport,
) -> anyhow::Result<()> {
    let age = chrono::TimeDelta::from_std(settings.stuck_after).context("stuck_after too large")?;
    let until = api::events::now() - age;
    let store = ctx.ledger.store.as_ref();
    let mut open = Vec::new();
    for status in [MovementStatus::Pending, MovementStatus::Processing] {
        let found = store
            .transactions_with_status(status.as_str(), until, settings.scan_limit)
            .await
            .with_context(|| format!("reading {} transactions", status.as_str()))?;
        report.truncated |= found.len() >= settings.scan_limit;
        open.extend(found.into_iter().filter(|tx| is_movement(tx.kind)));
    }
    open.sort_by(|a, b| (a.created_at, &a.transaction_id).cmp(&(b.created_at, &b.transaction_id)));
    let mut events = Vec::new();
    for tx in open {
        let stuck = ask(ctx, settings, &tx).await;
        if stuck.provider_says.is_final() {
            tracing::warn!(user_id = %stuck.user_id, transaction_id = %stuck.transaction_id,
                status = %stuck.status, provider_says = stuck.provider_says.as_str(),
                "reconcile: provider's final word on an open transaction");
            report.discrepancies += 1;
            events.push(Write::Emit(discrepancy_event(&stuck)));
        }
        report.stuck.push(stuck);
    }
    if !events.is_empty() {
        store
            .commit(events)
            .await
            .context("committing reconcile.discrepancy events")?;
    }
    Ok(())
}

/// `tx` with what its provider says about it now.
async fn ask(
    ctx: &ReconcileContext,
    settings: &ReconcileSettings,
    tx: &Transaction,
) -> StuckTransaction {
    let movement = Movement::of(tx).unwrap_or_default();
    let provider_says = match movement.provider_ref.as_deref() {
        None => ProviderAnswer::NoReference,
        Some(reference) => query(ctx, settings, tx.kind, &movement, reference).await,
    };
    StuckTransaction {
        user_id: tx.user_id.clone(),
        transaction_id: tx.transaction_id.clone(),
        kind: tx.kind,
        status: tx.status.clone(),
        asset: movement.asset,
        amount: movement.amount,
        provider: movement.provider,
        provider_ref: movement.provider_ref,
        created_at: tx.created_at,
        provider_says,
    }
}

/// Asks custody (crypto) or the movement's payment provider (fiat).
async fn query(
    ctx: &ReconcileContext,
    settings: &ReconcileSettings,
    kind: TxKind,
    movement: &Movement,
    reference: &str,
) -> ProviderAnswer {
    let answer = match kind {
        TxKind::Deposit | TxKind::Withdrawal => {
            let call = ctx.custody.transfer_status(reference);
            tokio::time::timeout(settings.provider_timeout, call)
                .await
                .map(|r| r.map_err(|e| e.to_string()))
        }
        _ => {
            let name = movement.provider.as_deref().unwrap_or("");
            let Some(provider) = ctx.payment(name) else {
                return ProviderAnswer::UnknownProvider(name.to_owned());
            };
            let call = provider.payment_status(reference);
            tokio::time::timeout(settings.provider_timeout, call)
                .await
                .map(|r| r.map_err(|e| e.to_string()))
        }
    };
    match answer {
        Ok(Ok(status)) => ProviderAnswer::Status(status),
        Ok(Err(why)) => ProviderAnswer::Unreachable(why),
        Err(_) => ProviderAnswer::Unreachable("status query timed out".to_owned()),
    }
}

fn discrepancy_event(stuck: &StuckTransaction) -> Event {
    let reason = match &stuck.provider_says {
        ProviderAnswer::Status(RemoteStatus::Failed(why)) => Some(why.clone()),
        _ => None,
    };
    Event::new(
        EventType::ReconcileDiscrepancy,
        Some(&stuck.user_id),
        json!({
            "transaction_id": stuck.transaction_id,
            "kind": stuck.kind,
            "status": stuck.status,
            "asset": stuck.asset,
            "amount": stuck.amount,
            "provider": stuck.provider,
            "provider_ref": stuck.provider_ref,
            "provider_status": stuck.provider_says.as_str(),
            "provider_reason": reason,
            "created_at": stuck.created_at,
        }),
    )
}
