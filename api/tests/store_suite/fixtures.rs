//! Records for the store suite. Every id and email is fresh (a UUID), so
//! the cases can share one store (a DynamoDB table, say) and run in any
//! order.

use api::events::{self, Event, EventType};
use api::secret::Secret;
use api::store::{
    ChainCredit, IdempotencyRecord, KycStatus, ReceiptStatus, RefreshFamily, SyncCheckpoint,
    Transaction, TxKind, User, WebhookReceipt,
};
use serde_json::json;

/// `prefix-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// A fresh user at version 1 with a unique email in mixed case.
pub fn user() -> User {
    let now = events::now();
    let id = unique("user");
    User {
        email: format!("Mixed.Case+{id}@Example.COM"),
        user_id: id,
        password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        first_name: None,
        last_name: None,
        phone: None,
        country: None,
        kyc_status: KycStatus::None,
        kyc_updated_at: now,
        mfa_secret: None,
        mfa_enabled: false,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// A transaction of `user_id` with a fresh time-ordered id, version 1.
pub fn tx(user_id: &str, kind: TxKind, status: &str, pair: Option<&str>) -> Transaction {
    let now = events::now();
    Transaction {
        user_id: user_id.to_owned(),
        transaction_id: uuid::Uuid::now_v7().to_string(),
        kind,
        status: status.to_owned(),
        pair: pair.map(str::to_owned),
        created_at: now,
        updated_at: now,
        version: 1,
        detail: json!({"amount": "1.50000000"}).into(),
    }
}

pub fn idempotency(user_id: &str, key: &str, fingerprint: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        user_id: user_id.to_owned(),
        scope: "withdraw".into(),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        transaction_id: uuid::Uuid::now_v7().to_string(),
        created_at: events::now(),
    }
}

pub fn receipt(provider: &str, webhook_id: &str) -> WebhookReceipt {
    let now = events::now();
    WebhookReceipt {
        provider: provider.to_owned(),
        webhook_id: webhook_id.to_owned(),
        received_at: now,
        expires_at: now + chrono::TimeDelta::days(30),
        status: ReceiptStatus::Received,
        notice: Some(json!({"kind": "ignored", "webhook_id": webhook_id, "event_type": "x"})),
        action: None,
        error: None,
        updated_at: None,
        version: 1,
    }
}

/// A credit of output `output` of chain transaction `tx_hash` to
/// `user_id`'s transaction `transaction_id`.
pub fn chain_credit(
    asset: &str,
    tx_hash: &str,
    output: &str,
    user_id: &str,
    transaction_id: &str,
) -> ChainCredit {
    ChainCredit {
        asset: asset.to_owned(),
        tx_hash: tx_hash.to_owned(),
        output: output.to_owned(),
        user_id: user_id.to_owned(),
        transaction_id: transaction_id.to_owned(),
        provider: "fireblocks".into(),
        credited_at: events::now(),
    }
}

pub fn family(user_id: &str) -> RefreshFamily {
    RefreshFamily {
        family_id: unique("family"),
        user_id: user_id.to_owned(),
        current_hash: "00".repeat(32),
        generation: 1,
        revoked: false,
        expires_at: events::now() + chrono::TimeDelta::days(7),
        version: 1,
    }
}

pub fn checkpoint(service: &str, sync_type: &str, value: &str) -> SyncCheckpoint {
    SyncCheckpoint {
        service_name: service.to_owned(),
        sync_type: sync_type.to_owned(),
        value: value.to_owned(),
        updated_at: events::now(),
    }
}

/// An event naming `marker` in its data (to find it among others).
pub fn event(marker: &str) -> Event {
    Event::new(
        EventType::WebhookReceived,
        None,
        json!({ "marker": marker }),
    )
}
