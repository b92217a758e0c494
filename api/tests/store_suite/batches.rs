//! Several writes to one record in one batch apply in order, as if
//! committed one after another (a store that cannot touch an item twice
//! in one transaction, like DynamoDB, has to fold them), and the first
//! failing write is the one reported.

use super::fixtures::{checkpoint, event, tx, unique, user};
use super::outbox::pending_of;
use api::store::{Conflict, Store, StoreError, TxKind, Write};

pub async fn writes_to_one_record_apply_in_order(store: &dyn Store) {
    // Create, then update twice, in one batch.
    let u = user();
    let t1 = tx(&u.user_id, TxKind::Order, "open", Some("BTC-USD"));
    let mut t2 = t1.clone();
    t2.status = "partially_filled".into();
    t2.version = 2;
    let mut t3 = t2.clone();
    t3.status = "filled".into();
    t3.version = 3;
    let mut u2 = u.clone();
    u2.first_name = Some("Ada".into());
    u2.version = 2;
    let service = unique("service");
    store
        .commit(vec![
            Write::CreateUser(u.clone()),
            Write::CreateTransaction(t1.clone()),
            Write::UpdateTransaction {
                tx: t2,
                expected_version: 1,
            },
            Write::UpdateUser {
                user: u2.clone(),
                expected_version: 1,
            },
            Write::UpdateTransaction {
                tx: t3.clone(),
                expected_version: 2,
            },
            Write::PutCheckpoint(checkpoint(&service, "orders", "1")),
            Write::PutCheckpoint(checkpoint(&service, "orders", "2")),
        ])
        .await
        .unwrap();
    assert_eq!(store.user(&u.user_id).await.unwrap(), Some(u2.clone()));
    assert_eq!(store.user_by_email(&u.email).await.unwrap(), Some(u2));
    assert_eq!(
        store
            .transaction(&t1.user_id, &t1.transaction_id)
            .await
            .unwrap(),
        Some(t3)
    );
    let cp = store.checkpoint(&service, "orders").await.unwrap();
    assert_eq!(cp.map(|c| c.value).as_deref(), Some("2"));

    // An update expecting a version the batch did not reach.
    let t = tx(&u.user_id, TxKind::Deposit, "pending", Some("BTC"));
    let mut skipped = t.clone();
    skipped.version = 3;
    let result = store
        .commit(vec![
            Write::CreateTransaction(t.clone()),
            Write::UpdateTransaction {
                tx: skipped,
                expected_version: 2,
            },
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch(
            "transaction"
        )))
    );
    assert_eq!(
        store
            .transaction(&t.user_id, &t.transaction_id)
            .await
            .unwrap(),
        None
    );

    // A record created twice.
    let result = store
        .commit(vec![
            Write::CreateTransaction(t.clone()),
            Write::CreateTransaction(t.clone()),
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::AlreadyExists("transaction")))
    );

    // An earlier write's failed condition comes first, even when a later
    // write clashes with another write of the batch.
    let e = event("first-failure-wins");
    let result = store
        .commit(vec![
            Write::Emit(e.clone()),
            Write::UpdateUser {
                user: u.clone(),
                expected_version: 1,
            },
            Write::CreateTransaction(t.clone()),
            Write::CreateTransaction(t.clone()),
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::Conflict(Conflict::VersionMismatch("user")))
    );
    assert_eq!(
        store
            .transaction(&t.user_id, &t.transaction_id)
            .await
            .unwrap(),
        None
    );
    assert!(pending_of(store, std::slice::from_ref(&e.id))
        .await
        .is_empty());
}
