//! Idempotency keys, webhook receipts, chain credits, refresh-token
//! families and sync checkpoints.

use super::fixtures::{chain_credit, checkpoint, family, idempotency, receipt, tx, unique};
use api::store::{Conflict, Store, StoreError, TxKind, Write};

pub async fn idempotency_key_is_recorded_once(store: &dyn Store) {
    let user_id = unique("user");
    let key = unique("key");
    let first = idempotency(&user_id, &key, "body-1");
    store
        .commit(vec![Write::CreateIdempotency(first.clone())])
        .await
        .unwrap();
    let again = idempotency(&user_id, &key, "body-2");
    let result = store.commit(vec![Write::CreateIdempotency(again)]).await;
    assert_eq!(result, Err(StoreError::Conflict(Conflict::IdempotencyKey)));
    assert_eq!(
        store.idempotency(&user_id, "withdraw", &key).await.unwrap(),
        Some(first),
        "the first record stays"
    );
    // Keys are per user and per scope.
    let other_user = idempotency(&unique("user"), &key, "body-3");
    let mut other_scope = idempotency(&user_id, &key, "body-4");
    other_scope.scope = "order".into();
    store
        .commit(vec![
            Write::CreateIdempotency(other_user),
            Write::CreateIdempotency(other_scope.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.idempotency(&user_id, "order", &key).await.unwrap(),
        Some(other_scope)
    );
    assert_eq!(
        store
            .idempotency(&user_id, "withdraw", "nope")
            .await
            .unwrap(),
        None
    );
}

pub async fn webhook_receipt_is_recorded_once(store: &dyn Store) {
    let id = unique("evt");
    let first = receipt("stripe", &id);
    store
        .commit(vec![Write::CreateWebhookReceipt(first.clone())])
        .await
        .unwrap();
    let result = store
        .commit(vec![Write::CreateWebhookReceipt(receipt("stripe", &id))])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::DuplicateWebhook))
    );
    assert_eq!(
        store.webhook_receipt("stripe", &id).await.unwrap(),
        Some(first)
    );
    // The same id from another provider is another webhook.
    store
        .commit(vec![Write::CreateWebhookReceipt(receipt("banxa", &id))])
        .await
        .unwrap();
    assert_eq!(store.webhook_receipt("bcb", &id).await.unwrap(), None);
}

/// A chain transfer is credited once: a second batch crediting it fails
/// whole (its deposit is not created either); another output, hash or
/// asset is another transfer.
pub async fn chain_credit_is_recorded_once(store: &dyn Store) {
    let user_id = unique("user");
    let hash = unique("hash").replace('-', "");
    let deposit = |output: &str, asset: &str| {
        let t = tx(&user_id, TxKind::Deposit, "processing", Some(asset));
        let credit = chain_credit(asset, &hash, output, &user_id, &t.transaction_id);
        (
            t.clone(),
            vec![
                Write::CreateTransaction(t),
                Write::CreateChainCredit(credit),
            ],
        )
    };
    let (first, writes) = deposit("index:0", "BTC");
    store.commit(writes).await.unwrap();
    let (second, writes) = deposit("index:0", "BTC");
    assert_eq!(
        store.commit(writes).await,
        Err(StoreError::Conflict(Conflict::DuplicateChainCredit))
    );
    assert_eq!(
        store
            .transaction(&user_id, &second.transaction_id)
            .await
            .unwrap(),
        None,
        "the refused batch left no deposit"
    );
    assert_eq!(
        store
            .transaction(&user_id, &first.transaction_id)
            .await
            .unwrap(),
        Some(first)
    );
    for (output, asset) in [
        ("index:1", "BTC"),
        ("address:a1", "BTC"),
        ("index:0", "ETH"),
    ] {
        let (_, writes) = deposit(output, asset);
        store.commit(writes).await.unwrap();
    }
}

pub async fn refresh_family_create_replace_and_version(store: &dyn Store) {
    let f = family(&unique("user"));
    store
        .commit(vec![Write::PutRefreshFamily {
            family: f.clone(),
            expected_version: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.refresh_family(&f.family_id).await.unwrap(),
        Some(f.clone())
    );

    let create_again = store
        .commit(vec![Write::PutRefreshFamily {
            family: f.clone(),
            expected_version: None,
        }])
        .await;
    assert_eq!(
        create_again,
        Err(StoreError::Conflict(Conflict::AlreadyExists(
            "refresh family"
        )))
    );

    let mut rotated = f.clone();
    rotated.current_hash = "11".repeat(32);
    rotated.generation = 2;
    rotated.version = 2;
    store
        .commit(vec![Write::PutRefreshFamily {
            family: rotated.clone(),
            expected_version: Some(1),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.refresh_family(&f.family_id).await.unwrap(),
        Some(rotated.clone())
    );

    // A second rotation from the same (now stale) read loses.
    let mut racer = f.clone();
    racer.current_hash = "22".repeat(32);
    racer.version = 2;
    let result = store
        .commit(vec![Write::PutRefreshFamily {
            family: racer,
            expected_version: Some(1),
        }])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "refresh family"
        )))
    );
    assert_eq!(
        store.refresh_family(&f.family_id).await.unwrap(),
        Some(rotated)
    );

    let missing = family(&unique("user"));
    let result = store
        .commit(vec![Write::PutRefreshFamily {
            family: missing.clone(),
            expected_version: Some(1),
        }])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "refresh family"
        )))
    );
    assert_eq!(
        store.refresh_family(&missing.family_id).await.unwrap(),
        None
    );
}

pub async fn checkpoints_are_set_and_replaced(store: &dyn Store) {
    let service = unique("service");
    assert_eq!(store.checkpoint(&service, "orders").await.unwrap(), None);
    store
        .commit(vec![
            Write::PutCheckpoint(checkpoint(&service, "orders", "100")),
            Write::PutCheckpoint(checkpoint(&service, "fills", "7")),
        ])
        .await
        .unwrap();
    let newer = checkpoint(&service, "orders", "250");
    store
        .commit(vec![Write::PutCheckpoint(newer.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint(&service, "orders").await.unwrap(),
        Some(newer)
    );
    assert_eq!(
        store
            .checkpoint(&service, "fills")
            .await
            .unwrap()
            .map(|c| c.value),
        Some("7".into())
    );
}

pub async fn a_checkpoint_is_created_once(store: &dyn Store) {
    let service = unique("service");
    let first = checkpoint(&service, "data-key", "first");
    store
        .commit(vec![Write::CreateCheckpoint(first.clone())])
        .await
        .unwrap();
    let result = store
        .commit(vec![Write::CreateCheckpoint(checkpoint(
            &service, "data-key", "second",
        ))])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::AlreadyExists("checkpoint")))
    );
    assert_eq!(
        store.checkpoint(&service, "data-key").await.unwrap(),
        Some(first)
    );
}

pub async fn a_checkpoint_is_replaced_only_from_the_expected_value(store: &dyn Store) {
    let service = unique("service");
    let replace = |value: &str, expected: &str| Write::ReplaceCheckpoint {
        checkpoint: checkpoint(&service, "contact#u1", value),
        expected_value: expected.to_owned(),
    };
    let mismatch = Err(StoreError::Conflict(Conflict::VersionMismatch(
        "checkpoint",
    )));
    // Nothing stored: nothing to replace.
    assert_eq!(store.commit(vec![replace("1", "")]).await, mismatch);
    assert_eq!(
        store.checkpoint(&service, "contact#u1").await.unwrap(),
        None
    );
    store
        .commit(vec![Write::CreateCheckpoint(checkpoint(
            &service,
            "contact#u1",
            "1",
        ))])
        .await
        .unwrap();
    store.commit(vec![replace("2", "1")]).await.unwrap();
    // A writer that read "1" lost the race: "2" stays.
    assert_eq!(store.commit(vec![replace("9", "1")]).await, mismatch);
    let stored = store.checkpoint(&service, "contact#u1").await.unwrap();
    assert_eq!(stored.map(|c| c.value), Some("2".to_owned()));
    // In one batch: created, then replaced from the value just written.
    let other = checkpoint(&service, "contact#u2", "a");
    store
        .commit(vec![
            Write::CreateCheckpoint(other),
            Write::ReplaceCheckpoint {
                checkpoint: checkpoint(&service, "contact#u2", "b"),
                expected_value: "a".to_owned(),
            },
        ])
        .await
        .unwrap();
    let stored = store.checkpoint(&service, "contact#u2").await.unwrap();
    assert_eq!(stored.map(|c| c.value), Some("b".to_owned()));
    // A failed condition writes nothing of its batch.
    let third = checkpoint(&service, "contact#u3", "x");
    assert_eq!(
        store
            .commit(vec![Write::PutCheckpoint(third), replace("3", "1")])
            .await,
        mismatch
    );
    assert_eq!(
        store.checkpoint(&service, "contact#u3").await.unwrap(),
        None
    );
}
