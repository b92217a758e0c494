//! Webhook receipts after they are recorded: the applier's move out of
//! `received` (`Write::UpdateWebhookReceipt`) happens once per version,
//! and receipts written before the status existed still read.

use super::fixtures::{receipt, tx, unique};
use api::store::{Conflict, ReceiptStatus, Store, StoreError, TxKind, WebhookReceipt, Write};

/// `r` moved to `status`, one version on.
fn moved(r: &WebhookReceipt, status: ReceiptStatus, action: &str) -> WebhookReceipt {
    WebhookReceipt {
        status,
        action: Some(action.to_owned()),
        updated_at: Some(api::events::now()),
        version: r.version + 1,
        ..r.clone()
    }
}

/// An update lands on the expected version only; a stale one (a second
/// applier of the same receipt) fails with its whole batch, and an
/// update of a receipt that does not exist fails too.
pub async fn webhook_receipt_update_checks_the_version(store: &dyn Store) {
    let id = unique("evt");
    let first = receipt("stripe", &id);
    store
        .commit(vec![Write::CreateWebhookReceipt(first.clone())])
        .await
        .unwrap();
    let applied = moved(&first, ReceiptStatus::Applied, "completed");
    store
        .commit(vec![Write::UpdateWebhookReceipt {
            receipt: applied.clone(),
            expected_version: 1,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.webhook_receipt("stripe", &id).await.unwrap(),
        Some(applied.clone())
    );
    // A racing applier that read version 1: its state change is refused
    // with the receipt's move.
    let user_id = unique("user");
    let state_change = tx(&user_id, TxKind::Deposit, "processing", Some("BTC"));
    let result = store
        .commit(vec![
            Write::CreateTransaction(state_change.clone()),
            Write::UpdateWebhookReceipt {
                receipt: moved(&first, ReceiptStatus::Rejected, "late"),
                expected_version: 1,
            },
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "webhook receipt"
        )))
    );
    assert_eq!(
        store
            .transaction(&user_id, &state_change.transaction_id)
            .await
            .unwrap(),
        None,
        "nothing of the losing batch landed"
    );
    assert_eq!(
        store.webhook_receipt("stripe", &id).await.unwrap(),
        Some(applied)
    );
    // No receipt: nothing to move.
    let missing = receipt("stripe", &unique("evt"));
    let result = store
        .commit(vec![Write::UpdateWebhookReceipt {
            receipt: moved(&missing, ReceiptStatus::Applied, "x"),
            expected_version: 1,
        }])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "webhook receipt"
        )))
    );
    assert_eq!(
        store
            .webhook_receipt("stripe", &missing.webhook_id)
            .await
            .unwrap(),
        None
    );
}

/// Created and moved in one batch: the moved receipt is stored.
pub async fn webhook_receipt_created_and_moved_in_one_batch(store: &dyn Store) {
    let id = unique("evt");
    let first = receipt("bcb", &id);
    let ignored = moved(&first, ReceiptStatus::Ignored, "ignored");
    store
        .commit(vec![
            Write::CreateWebhookReceipt(first),
            Write::UpdateWebhookReceipt {
                receipt: ignored.clone(),
                expected_version: 1,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.webhook_receipt("bcb", &id).await.unwrap(),
        Some(ignored)
    );
}

/// A receipt stored by a build without the status reads as `applied`
/// (it was written with its state change), version 1.
pub fn old_receipts_read_as_applied() {
    let old = r#"{"provider":"stripe","webhook_id":"evt_1","received_at":"2026-01-02T03:04:05Z","expires_at":"2026-02-01T03:04:05Z"}"#;
    let r: WebhookReceipt = serde_json::from_str(old).expect("an old receipt reads");
    assert_eq!(r.status, ReceiptStatus::Applied);
    assert_eq!(
        (r.version, r.notice, r.action, r.error),
        (1, None, None, None)
    );
}
