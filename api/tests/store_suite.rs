//! The store contract (`api::store::Store`), as a suite of functions over
//! `&dyn Store` in `store_suite/`, run here against `EmbeddedStore` in a
//! temporary directory. Every case uses fresh ids, so a production store
//! (DynamoDB) can run the same functions against shared tables.

/// The suite (crate-root modules resolve next to this file, so the
/// folder is named by this inline module).
mod store_suite {
    pub mod durability;
    pub mod fixtures;
    pub mod keys;
    pub mod outbox;
    pub mod transactions;
    pub mod users;
}

use api::store::embedded::EmbeddedStore;
use api::store::Store;
use std::sync::Arc;
use store_suite::{durability, keys, outbox, transactions, users};

/// One `#[tokio::test]` per case, each on a fresh embedded store.
macro_rules! embedded_cases {
    ($($case:path => $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open(dir.path()).expect("open store");
            $case(&store).await;
        }
    )*};
}

embedded_cases! {
    users::create_and_get_user => create_and_get_user,
    users::email_is_unique_ignoring_case_and_the_batch_fails_whole => email_is_unique_ignoring_case,
    users::update_user_checks_the_version => update_user_checks_the_version,
    users::batch_failing_on_its_third_write_leaves_no_trace => batch_failing_on_its_third_write_leaves_no_trace,
    transactions::transaction_create_update_and_version => transaction_create_update_and_version,
    transactions::transactions_list_newest_first_with_filters => transactions_list_newest_first_with_filters,
    transactions::transactions_paginate_without_duplicates_or_gaps => transactions_paginate_without_duplicates_or_gaps,
    keys::idempotency_key_is_recorded_once => idempotency_key_is_recorded_once,
    keys::webhook_receipt_is_recorded_once => webhook_receipt_is_recorded_once,
    keys::refresh_family_create_replace_and_version => refresh_family_create_replace_and_version,
    keys::checkpoints_are_set_and_replaced => checkpoints_are_set_and_replaced,
    outbox::outbox_keeps_commit_order_and_forgets_acked => outbox_keeps_commit_order_and_forgets_acked,
}

/// Every case on one store, one after another: cases do not depend on a
/// fresh store (what a shared DynamoDB table needs).
#[tokio::test]
async fn all_cases_share_one_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path()).expect("open store");
    let store: &dyn Store = &store;
    users::create_and_get_user(store).await;
    users::email_is_unique_ignoring_case_and_the_batch_fails_whole(store).await;
    users::update_user_checks_the_version(store).await;
    users::batch_failing_on_its_third_write_leaves_no_trace(store).await;
    transactions::transaction_create_update_and_version(store).await;
    transactions::transactions_list_newest_first_with_filters(store).await;
    transactions::transactions_paginate_without_duplicates_or_gaps(store).await;
    keys::idempotency_key_is_recorded_once(store).await;
    keys::webhook_receipt_is_recorded_once(store).await;
    keys::refresh_family_create_replace_and_version(store).await;
    keys::checkpoints_are_set_and_replaced(store).await;
    outbox::outbox_keeps_commit_order_and_forgets_acked(store).await;
}

#[tokio::test]
async fn committed_data_survives_reopening_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    let committed = durability::write_everything(&*store).await;
    durability::assert_everything_there(&*store, &committed).await;
    drop(store);

    let reopened: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("reopen"));
    durability::assert_everything_there(&*reopened, &committed).await;
    // And it keeps working: new commits land after the old ones.
    durability::write_everything(&*reopened).await;
}
