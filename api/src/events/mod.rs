//! Domain events and the event-publisher boundary.
//!
//! Every state change commits its events to the store's outbox in the same
//! batch ([`crate::store::Write::Emit`]); the [`relay`] drains the outbox to
//! an [`EventPublisher`] at least once, in commit order (so in order per
//! user). Consumers deduplicate by event `id`. Implementations: the
//! embedded [`log::EventLog`] (append-only NDJSON in the data directory)
//! and SQS, optionally with the domain events also on an EventBridge bus
//! ([`eventbridge`]).

pub mod eventbridge;
pub mod log;
pub mod relay;
pub mod sqs;
pub mod trace;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// UTC time, RFC 3339 on the wire.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Current time, truncated to microseconds (what the wire carries).
pub fn now() -> Timestamp {
    let t = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(t, chrono::TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Schema version of every event body this build writes.
pub const EVENT_VERSION: u32 = 1;

/// A versioned event (docs/ARCHITECTURE.md, "Defaults and production").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique, time-ordered; the deduplication key downstream.
    pub id: String,
    /// `user.registered`, `order.accepted`, ... (see [`EventType`]).
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub time: Timestamp,
    /// The acting user, when there is one.
    pub user_id: Option<String>,
    /// The request id of the request that caused it.
    pub correlation_id: String,
    pub data: serde_json::Value,
    /// The W3C trace context of the span that made it, when traces are
    /// exported (absent otherwise): the relay's publish and the workers'
    /// handling join that trace ([`trace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The event types this service emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserRegistered,
    UserProfileUpdated,
    KycStatusChanged,
    OrderAccepted,
    OrderFilled,
    OrderCancelled,
    OrderRejected,
    /// A dead-man's switch fired: `{trigger, order_ids}`.
    OrdersAutoCancelled,
    DepositStateChanged,
    /// A provider refunded (part of) a completed deposit:
    /// `{transaction_id, provider, asset, refunded, debited, unrecovered}`
    /// (the totals refunded and not recovered, and this notice's debit).
    DepositRefunded,
    WithdrawalStateChanged,
    /// A verified webhook was stored and queued:
    /// `{provider, webhook_id, event_type, transaction_id}`.
    WebhookReceived,
    /// The webhook applier acted on one:
    /// `{provider, webhook_id, transaction_id, action}`.
    WebhookApplied,
    /// The webhook applier refused one for good (nothing changed):
    /// `{provider, webhook_id, code, message}`.
    WebhookRejected,
    /// Reconciliation found a provider's final word on a transaction we
    /// still hold open: `{transaction_id, kind, status, provider, provider_ref, provider_status}`
    /// (docs/RECONCILIATION.md).
    ReconcileDiscrepancy,
    /// Reconciliation found a user's venue balance apart from our records:
    /// `{asset, venue, ledger, difference}` (exact decimal strings).
    ReconcileDifference,
    /// An operator's correction was applied: `{transaction_id, asset, amount, reason, operator}`.
    ReconcileCorrection,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegistered => "user.registered",
            EventType::UserProfileUpdated => "user.profile_updated",
            EventType::KycStatusChanged => "kyc.status_changed",
            EventType::OrderAccepted => "order.accepted",
            EventType::OrderFilled => "order.filled",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderRejected => "order.rejected",
            EventType::OrdersAutoCancelled => "orders.auto_cancelled",
            EventType::DepositStateChanged => "deposit.state_changed",
            EventType::DepositRefunded => "deposit.refunded",
            EventType::WithdrawalStateChanged => "withdrawal.state_changed",
            EventType::WebhookReceived => "webhook.received",
            EventType::WebhookApplied => "webhook.applied",
            EventType::WebhookRejected => "webhook.rejected",
            EventType::ReconcileDiscrepancy => "reconcile.discrepancy",
            EventType::ReconcileDifference => "reconcile.difference",
            EventType::ReconcileCorrection => "reconcile.correction",
        }
    }
}

impl Event {
    /// A new event with a fresh id, now, and the current request id as
    /// correlation id.
    pub fn new(event_type: EventType, user_id: Option<&str>, data: serde_json::Value) -> Self {
        let correlation_id = crate::http::request_id::current();
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.as_str().to_owned(),
            version: EVENT_VERSION,
            time: now(),
            user_id: user_id.map(str::to_owned),
            correlation_id: if correlation_id.is_empty() {
                "internal".to_owned()
            } else {
                correlation_id
            },
            data,
            traceparent: trace::current(),
        }
    }
}

/// Why publishing failed; the relay keeps the events and retries.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    #[error("event sink unavailable: {0}")]
    Unavailable(String),
}

/// Where the outbox relay sends events. `publish` returning `Ok` means
/// every event of the batch is durably accepted; on `Err` the relay sends
/// the whole batch again later (at least once). The events are shared
/// (`Arc`), so a publisher that keeps them (the embedded log's
/// [`log::Tail`]) keeps the relay's, not copies.
#[async_trait]
pub trait EventPublisher: Send + Sync + 'static {
    async fn publish(&self, events: &[std::sync::Arc<Event>]) -> Result<(), PublishError>;
}
