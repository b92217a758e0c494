//! A deposit or withdrawal of funds (crypto or fiat): what its
//! transaction's `detail` holds, its statuses, and the event describing a
//! change of it.
//!
//! Status life cycle: `pending` (withdrawal debited / deposit session
//! opened) → `completed` or `failed`. When the outcome needs money put
//! back at the venue (a completed deposit, a failed withdrawal) the
//! transaction passes through `processing`: the outcome is recorded, the
//! venue credit is under way. A transaction left in `processing` names a
//! venue credit that may not have happened (see [`settle`](super::settle)).

use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::fiat::BankInstructions;
use crate::store::{Transaction, TxKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Funds requested / session open; the provider has not answered.
pub const PENDING: &str = "pending";
/// Outcome recorded, venue credit under way.
pub const PROCESSING: &str = "processing";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// The `detail` of a deposit or withdrawal transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The venue's asset (fiat currency or crypto asset).
    pub asset: String,
    /// Decimal string at the asset's scale.
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `stripe`, `banxa`, `bcb` (fiat) or `fireblocks` (custody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Fiat payout destination (bank account reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The provider's id of the payment, payout or custody transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<BankInstructions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// The status the creating request answered with, when not `pending`
    /// (replays of its idempotency key answer the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

impl Movement {
    /// The movement of a deposit or withdrawal transaction.
    pub fn of(tx: &Transaction) -> Result<Movement, ApiError> {
        serde_json::from_value(tx.detail.clone()).map_err(|e| {
            ApiError::internal(format!(
                "transaction {} has an unreadable detail: {e}",
                tx.transaction_id
            ))
        })
    }

    /// As a transaction `detail`.
    pub fn to_detail(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("invariant: Movement serializes to JSON")
    }

    /// The status replays of the creating request answer with.
    pub fn answered_status(&self) -> &str {
        self.answer_status.as_deref().unwrap_or(PENDING)
    }
}

/// True for kinds that move money into the user's balance.
pub fn is_inflow(kind: TxKind) -> bool {
    matches!(kind, TxKind::Deposit | TxKind::FiatDeposit)
}

/// True for the kinds this module describes.
pub fn is_movement(kind: TxKind) -> bool {
    matches!(
        kind,
        TxKind::Deposit | TxKind::Withdrawal | TxKind::FiatDeposit | TxKind::FiatWithdrawal
    )
}

/// `deposit` or `withdrawal` (the `type` of listed transactions).
pub fn direction_name(kind: TxKind) -> &'static str {
    if is_inflow(kind) {
        "deposit"
    } else {
        "withdrawal"
    }
}

/// `deposit.state_changed` or `withdrawal.state_changed` for `tx` (in its
/// new state), naming the previous status when there was one.
pub fn state_event(tx: &Transaction, movement: &Movement, previous: Option<&str>) -> Event {
    let event_type = if is_inflow(tx.kind) {
        EventType::DepositStateChanged
    } else {
        EventType::WithdrawalStateChanged
    };
    let channel = match tx.kind {
        TxKind::FiatDeposit | TxKind::FiatWithdrawal => "fiat",
        _ => "crypto",
    };
    Event::new(
        event_type,
        Some(&tx.user_id),
        json!({
            "transaction_id": tx.transaction_id,
            "channel": channel,
            "asset": movement.asset,
            "amount": movement.amount,
            "provider": movement.provider,
            "status": tx.status,
            "previous_status": previous,
        }),
    )
}
