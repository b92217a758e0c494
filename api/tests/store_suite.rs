//! The store contract (`api::store::Store`), as a suite of functions over
//! `&dyn Store` in `store_suite/`, run against `EmbeddedStore` in a
//! temporary directory and against `DynamoStore` on the shared
//! `moto_server` (`NAX_TEST_MOTO_PORT`; the DynamoDB tests fail loudly
//! without it). Every case uses fresh ids, so a production store can run
//! the same functions against shared tables; each DynamoDB test still
//! gets tables of its own (a random prefix), so tests run in parallel.

/// The cases, in `store_suite/`.
pub mod batches;
pub mod durability;
pub mod dynamo;
pub mod fixtures;
pub mod keys;
pub mod moto;
pub mod outbox;
pub mod receipts;
pub mod transactions;
pub mod users;

use api::store::embedded::EmbeddedStore;
use api::store::Store;
use std::sync::Arc;

/// Every case of the contract, each once per store: `embedded::<name>` on
/// a fresh embedded store, `dynamodb::<name>` on fresh DynamoDB tables;
/// `all_cases_share_one_store` runs them all on one store of each kind.
macro_rules! contract_cases {
    ($($case:path => $name:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = EmbeddedStore::open(dir.path()).expect("open store");
                    $case(&store).await;
                }
            )*

            /// Every case on one store, one after another: cases do not
            /// depend on a fresh store (what shared tables need).
            #[tokio::test]
            async fn all_cases_share_one_store() {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = EmbeddedStore::open(dir.path()).expect("open store");
                let store: &dyn Store = &store;
                $($case(store).await;)*
            }
        }

        mod dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let store = moto::fresh_store().await;
                    $case(&store).await;
                }
            )*

            #[tokio::test]
            async fn all_cases_share_one_store() {
                let store = moto::fresh_store().await;
                let store: &dyn Store = &store;
                $($case(store).await;)*
            }
        }
    };
}

contract_cases! {
    users::create_and_get_user => create_and_get_user,
    users::email_is_unique_ignoring_case_and_the_batch_fails_whole => email_is_unique_ignoring_case,
    users::update_user_checks_the_version => update_user_checks_the_version,
    users::update_user_cannot_change_the_email => update_user_cannot_change_the_email,
    users::batch_failing_on_its_third_write_leaves_no_trace => batch_failing_on_its_third_write_leaves_no_trace,
    batches::writes_to_one_record_apply_in_order => writes_to_one_record_apply_in_order,
    transactions::transaction_create_update_and_version => transaction_create_update_and_version,
    transactions::transactions_list_newest_first_with_filters => transactions_list_newest_first_with_filters,
    transactions::transactions_paginate_without_duplicates_or_gaps => transactions_paginate_without_duplicates_or_gaps,
    transactions::transactions_with_status_across_users_oldest_first => transactions_with_status_across_users_oldest_first,
    keys::idempotency_key_is_recorded_once => idempotency_key_is_recorded_once,
    keys::webhook_receipt_is_recorded_once => webhook_receipt_is_recorded_once,
    receipts::webhook_receipt_update_checks_the_version => webhook_receipt_update_checks_the_version,
    receipts::webhook_receipt_created_and_moved_in_one_batch => webhook_receipt_created_and_moved_in_one_batch,
    keys::chain_credit_is_recorded_once => chain_credit_is_recorded_once,
    keys::refresh_family_create_replace_and_version => refresh_family_create_replace_and_version,
    keys::checkpoints_are_set_and_replaced => checkpoints_are_set_and_replaced,
    keys::a_checkpoint_is_created_once => a_checkpoint_is_created_once,
    keys::a_checkpoint_is_replaced_only_from_the_expected_value => a_checkpoint_is_replaced_only_from_the_expected_value,
    outbox::outbox_keeps_commit_order_and_forgets_acked => outbox_keeps_commit_order_and_forgets_acked,
}

#[test]
fn old_webhook_receipts_read_as_applied() {
    receipts::old_receipts_read_as_applied();
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

/// The same through a new `DynamoStore` on the same tables (another
/// process or node, as far as the store can tell).
#[tokio::test]
async fn dynamodb_committed_data_is_seen_by_a_new_store() {
    let prefix = moto::fresh_prefix();
    let store: Arc<dyn Store> = Arc::new(moto::store_on(&prefix).await);
    let committed = durability::write_everything(&*store).await;
    drop(store);

    let other: Arc<dyn Store> = Arc::new(moto::store_on(&prefix).await);
    durability::assert_everything_there(&*other, &committed).await;
    durability::write_everything(&*other).await;
}

#[tokio::test]
async fn dynamodb_batch_over_the_transaction_limit_is_refused() {
    dynamo::batch_over_the_transaction_limit_is_refused(&moto::fresh_store().await).await;
}

#[tokio::test]
async fn dynamodb_bad_cursor_is_an_error() {
    dynamo::bad_cursor_is_an_error(&moto::fresh_store().await).await;
}

#[tokio::test]
async fn dynamodb_webhook_receipts_expire_by_ttl_on_a_numeric_expires_at() {
    dynamo::webhook_receipts_expire_by_ttl_on_a_numeric_expires_at(&moto::fresh_store().await)
        .await;
}

#[tokio::test]
async fn dynamodb_email_guard_and_index_are_written_with_the_user() {
    dynamo::email_guard_and_index_are_written_with_the_user(&moto::fresh_store().await).await;
}

#[tokio::test]
async fn dynamodb_outbox_order_holds_across_shards() {
    dynamo::outbox_order_holds_across_shards(&moto::fresh_store().await).await;
}

#[tokio::test]
async fn dynamodb_concurrent_committers_keep_each_users_order() {
    dynamo::concurrent_committers_keep_each_users_order(&moto::fresh_prefix()).await;
}

#[tokio::test]
async fn dynamodb_tables_are_created_as_specified() {
    dynamo::tables_are_created_as_specified(&moto::fresh_store().await).await;
}

#[tokio::test]
async fn dynamodb_unreachable_is_unavailable() {
    dynamo::unreachable_dynamodb_is_unavailable().await;
}

#[test]
fn dynamodb_tables_match_terraform() {
    dynamo::tables_match_terraform();
}
