//! User cases, and all-or-nothing batches.

use super::fixtures::{event, idempotency, tx, user};
use super::outbox::pending_of;
use api::store::{normalize_email, Conflict, Store, StoreError, TxKind, TxQuery, Write};

fn conflict(result: Result<(), StoreError>) -> Conflict {
    match result {
        Err(StoreError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn create_and_get_user(store: &dyn Store) {
    let u = user();
    store
        .commit(vec![Write::CreateUser(u.clone())])
        .await
        .unwrap();
    assert_eq!(store.user(&u.user_id).await.unwrap(), Some(u.clone()));
    let by_email = store.user_by_email(&u.email).await.unwrap();
    assert_eq!(by_email.as_ref(), Some(&u));
    // Lookup normalizes: case and surrounding spaces do not matter.
    let shouted = format!("  {}  ", u.email.to_uppercase());
    assert_eq!(
        store.user_by_email(&shouted).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(
        store
            .user_by_email(&normalize_email(&u.email))
            .await
            .unwrap(),
        Some(u)
    );
    assert_eq!(store.user("no-such-user").await.unwrap(), None);
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );
}

pub async fn email_is_unique_ignoring_case_and_the_batch_fails_whole(store: &dyn Store) {
    let first = user();
    store
        .commit(vec![Write::CreateUser(first.clone())])
        .await
        .unwrap();
    let mut second = user();
    second.email = format!(" {} ", first.email.to_lowercase());
    let e = event("email-taken");
    let result = store
        .commit(vec![
            Write::CreateUser(second.clone()),
            Write::Emit(e.clone()),
        ])
        .await;
    assert_eq!(conflict(result), Conflict::EmailTaken);
    assert_eq!(store.user(&second.user_id).await.unwrap(), None);
    assert!(
        pending_of(store, std::slice::from_ref(&e.id))
            .await
            .is_empty(),
        "the failed batch's event must not be in the outbox"
    );
    assert_eq!(
        store.user_by_email(&first.email).await.unwrap(),
        Some(first.clone())
    );

    // Same id, other email.
    let mut same_id = user();
    same_id.user_id = first.user_id.clone();
    let result = store.commit(vec![Write::CreateUser(same_id.clone())]).await;
    assert_eq!(conflict(result), Conflict::AlreadyExists("user"));
    assert_eq!(store.user_by_email(&same_id.email).await.unwrap(), None);
}

pub async fn update_user_checks_the_version(store: &dyn Store) {
    let u = user();
    store
        .commit(vec![Write::CreateUser(u.clone())])
        .await
        .unwrap();
    let mut v2 = u.clone();
    v2.first_name = Some("Ada".into());
    v2.version = 2;
    store
        .commit(vec![Write::UpdateUser {
            user: v2.clone(),
            expected_version: 1,
        }])
        .await
        .unwrap();
    assert_eq!(store.user(&u.user_id).await.unwrap(), Some(v2.clone()));

    // A writer that read version 1 loses.
    let mut stale = u.clone();
    stale.last_name = Some("Lovelace".into());
    stale.version = 2;
    let result = store
        .commit(vec![Write::UpdateUser {
            user: stale,
            expected_version: 1,
        }])
        .await;
    assert_eq!(conflict(result), Conflict::VersionMismatch("user"));
    assert_eq!(store.user(&u.user_id).await.unwrap(), Some(v2));

    // Updating a user that does not exist is a mismatch too.
    let ghost = user();
    let result = store
        .commit(vec![Write::UpdateUser {
            user: ghost.clone(),
            expected_version: 1,
        }])
        .await;
    assert_eq!(conflict(result), Conflict::VersionMismatch("user"));
    assert_eq!(store.user(&ghost.user_id).await.unwrap(), None);
}

/// A batch whose third write fails leaves no trace of the first two (nor
/// of anything after it), whatever makes the third fail.
pub async fn batch_failing_on_its_third_write_leaves_no_trace(store: &dyn Store) {
    let existing = user();
    store
        .commit(vec![Write::CreateUser(existing.clone())])
        .await
        .unwrap();

    // Third write: a stale version.
    let fresh = user();
    let t = tx(&fresh.user_id, TxKind::Order, "open", Some("BTC-USD"));
    let key = idempotency(&fresh.user_id, "k1", "f1");
    let e = event("third-write-fails");
    let result = store
        .commit(vec![
            Write::CreateUser(fresh.clone()),
            Write::CreateTransaction(t.clone()),
            Write::UpdateUser {
                user: existing.clone(),
                expected_version: 7,
            },
            Write::CreateIdempotency(key.clone()),
            Write::Emit(e.clone()),
        ])
        .await;
    assert_eq!(conflict(result), Conflict::VersionMismatch("user"));
    assert_no_trace(store, &fresh, &t, &e).await;
    assert_eq!(
        store
            .idempotency(&key.user_id, &key.scope, &key.key)
            .await
            .unwrap(),
        None
    );

    // Third write: an email the batch's own first write just took.
    let fresh = user();
    let mut twin = user();
    twin.email = fresh.email.to_uppercase();
    let t = tx(&fresh.user_id, TxKind::Deposit, "pending", Some("USD"));
    let e = event("in-batch-conflict");
    let result = store
        .commit(vec![
            Write::CreateUser(fresh.clone()),
            Write::Emit(e.clone()),
            Write::CreateUser(twin.clone()),
            Write::CreateTransaction(t.clone()),
        ])
        .await;
    assert_eq!(conflict(result), Conflict::EmailTaken);
    assert_no_trace(store, &fresh, &t, &e).await;
    assert_eq!(store.user(&twin.user_id).await.unwrap(), None);
}

async fn assert_no_trace(
    store: &dyn Store,
    u: &api::store::User,
    t: &api::store::Transaction,
    e: &api::events::Event,
) {
    assert_eq!(store.user(&u.user_id).await.unwrap(), None, "user landed");
    assert_eq!(store.user_by_email(&u.email).await.unwrap(), None);
    assert_eq!(
        store
            .transaction(&t.user_id, &t.transaction_id)
            .await
            .unwrap(),
        None,
        "transaction landed"
    );
    let listed = store
        .transactions(
            &t.user_id,
            &TxQuery {
                limit: 100,
                ..TxQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(
        pending_of(store, std::slice::from_ref(&e.id))
            .await
            .is_empty(),
        "event landed"
    );
}

/// Emails cannot change through `UpdateUser` (no route changes one; the
/// uniqueness record would go stale): the write is refused, nothing lands.
pub async fn update_user_cannot_change_the_email(store: &dyn Store) {
    let u = user();
    store
        .commit(vec![Write::CreateUser(u.clone())])
        .await
        .unwrap();
    let mut moved = u.clone();
    moved.email = user().email;
    moved.version = 2;
    let e = event("email-change");
    let result = store
        .commit(vec![
            Write::UpdateUser {
                user: moved.clone(),
                expected_version: 1,
            },
            Write::Emit(e.clone()),
        ])
        .await;
    assert!(
        matches!(result, Err(StoreError::Corrupt(ref why)) if why.contains("email")),
        "got {result:?}"
    );
    assert_eq!(store.user(&u.user_id).await.unwrap(), Some(u.clone()));
    assert_eq!(store.user_by_email(&moved.email).await.unwrap(), None);
    assert!(pending_of(store, std::slice::from_ref(&e.id))
        .await
        .is_empty());

    // The same email in another case is the same email: allowed.
    let mut recased = u.clone();
    recased.email = u.email.to_uppercase();
    recased.version = 2;
    store
        .commit(vec![Write::UpdateUser {
            user: recased.clone(),
            expected_version: 1,
        }])
        .await
        .unwrap();
    assert_eq!(store.user_by_email(&u.email).await.unwrap(), Some(recased));
}
