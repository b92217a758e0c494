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
use crate::store::{Detail, Transaction, TxKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The status of a deposit or withdrawal transaction (stored and
/// answered as the lowercase word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MovementStatus {
    /// Funds requested / session open; the provider has not answered.
    Pending,
    /// Outcome recorded, venue credit under way.
    Processing,
    Completed,
    Failed,
}

impl MovementStatus {
    pub const ALL: [MovementStatus; 4] = [
        MovementStatus::Pending,
        MovementStatus::Processing,
        MovementStatus::Completed,
        MovementStatus::Failed,
    ];

    /// The stored and answered word.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementStatus::Pending => "pending",
            MovementStatus::Processing => "processing",
            MovementStatus::Completed => "completed",
            MovementStatus::Failed => "failed",
        }
    }

    /// The status of a movement transaction (500 when the stored word is
    /// not one of them).
    pub fn of(tx: &Transaction) -> Result<MovementStatus, ApiError> {
        MovementStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == tx.status)
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "transaction {} has the unknown status {:?}",
                    tx.transaction_id, tx.status
                ))
            })
    }
}

/// Which way the money of a settled transaction moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the user's balance (deposit).
    In,
    /// Out of it (withdrawal, payout).
    Out,
}

/// The provider's final word on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
}

impl Outcome {
    /// The transaction status it leads to.
    pub fn status(self) -> MovementStatus {
        match self {
            Outcome::Completed => MovementStatus::Completed,
            Outcome::Failed => MovementStatus::Failed,
        }
    }
}

/// Where to send a bank transfer (BCB deposits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BankInstructions {
    pub bank_name: String,
    pub account_name: String,
    pub iban: String,
    pub bic: String,
    /// Must be quoted with the transfer; it names the deposit.
    pub reference: String,
}

/// What a provider refunded of a completed deposit (`Movement::refund`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Refunded in total, per the provider (decimal at the asset's scale).
    pub amount: String,
    /// Of that, what the user's balance did not cover when it was
    /// debited (an operator's matter: docs/OPERATIONS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrecovered: Option<String>,
}

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
    /// The client secret of a Stripe PaymentIntent (the deposit's answer
    /// only: Stripe.js confirms the payment with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// What the provider has refunded of a completed deposit, cumulative
    /// (decimal string at the asset's scale), and the venue debit for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Refund>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// The status the creating request answered with, when not `pending`
    /// (replays of its idempotency key answer the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_status: Option<MovementStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

impl Movement {
    /// The movement of a deposit or withdrawal transaction.
    pub fn of(tx: &Transaction) -> Result<Movement, ApiError> {
        tx.detail.decode().map_err(|e| {
            ApiError::internal(format!(
                "transaction {} has an unreadable detail: {e}",
                tx.transaction_id
            ))
        })
    }

    /// As a transaction `detail`.
    pub fn to_detail(&self) -> Detail {
        Detail::new(self).expect("invariant: Movement serializes to JSON")
    }

    /// The status replays of the creating request answer with.
    pub fn answered_status(&self) -> MovementStatus {
        self.answer_status.unwrap_or(MovementStatus::Pending)
    }

    /// A new transaction `transaction_id` (see [`new_transaction_id`])
    /// of `kind` for this movement, version 1, made now, in `status`.
    pub fn new_transaction(
        &self,
        transaction_id: String,
        user_id: &str,
        kind: TxKind,
        status: MovementStatus,
    ) -> Transaction {
        let now = crate::events::now();
        Transaction {
            user_id: user_id.to_owned(),
            transaction_id,
            kind,
            status: status.as_str().to_owned(),
            // The `pair` filter of movements holds their asset.
            pair: Some(self.asset.clone()),
            created_at: now,
            updated_at: now,
            version: 1,
            detail: self.to_detail(),
        }
    }
}

/// A fresh, time-ordered transaction id.
pub fn new_transaction_id() -> String {
    uuid::Uuid::now_v7().to_string()
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
pub fn state_event(
    tx: &Transaction,
    movement: &Movement,
    previous: Option<MovementStatus>,
) -> Event {
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
            "previous_status": previous.map(MovementStatus::as_str),
        }),
    )
}
