//! `commit`: a batch of [`Write`]s as ONE `TransactWriteItems`, so a
//! state change and its outbox entries land together or not at all.
//!
//! Each write becomes a conditional `Put` of its whole item (`CreateUser`
//! two: the email guard, then the user): creates carry
//! `attribute_not_exists(<hash key>)`, updates `version = :expected`
//! (false for a missing item), `UpdateUser` also `email = :email` (emails
//! cannot change; the guard would go stale). When DynamoDB cancels the
//! transaction, the first item whose reason is `ConditionalCheckFailed`
//! names the failed write and so the [`Conflict`], as the embedded store
//! reports the first failed condition.
//!
//! DynamoDB refuses two operations on one item in a transaction, so the
//! batch is folded first, the way the embedded store applies it in order:
//! an update of a record the batch created or updated (at the version it
//! expects) or a checkpoint set twice becomes one put with the first
//! write's condition; a second create of one key, or an update expecting
//! another version, fails there. Such a failure is reported only after a
//! transaction of `ConditionCheck`s on the writes before it finds them all
//! holding (else theirs is the first failure).
//!
//! At most [`MAX_ITEMS`] items (DynamoDB's limit): a bigger batch is
//! refused before any call. A cancellation only for `TransactionConflict`
//! (a concurrent transaction on one of the items) is retried a few times
//! with a new request token; the SDK's own retries (network, throttling)
//! and a resend after `TransactionInProgressException` reuse the token,
//! so a retried commit that had landed is not applied or reported twice
//! (within DynamoDB's 10-minute token window).

mod ops;
mod plan;

use super::errors::sdk_error;
use super::items;
use super::DynamoStore;
use crate::store::{StoreError, Write};
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use ops::{transact_item, Condition, Op};
use plan::{email_change, plan, Plan};
use std::time::Duration;

/// Items per `TransactWriteItems` (DynamoDB's limit).
pub const MAX_ITEMS: usize = 100;
/// Sends of a transaction cancelled only by concurrent transactions.
const CONFLICT_ATTEMPTS: u32 = 3;
const CONFLICT_BACKOFF: Duration = Duration::from_millis(25);

impl DynamoStore {
    /// See the module docs.
    pub(super) async fn commit_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        match plan(writes)? {
            Plan::Ready(ops) if ops.is_empty() => Ok(()),
            Plan::Ready(ops) => self.transact(&ops, false).await,
            Plan::FailsAt { before, error } => {
                let checked: Vec<Op> = before
                    .into_iter()
                    .filter(|op| op.condition != Condition::None)
                    .collect();
                if !checked.is_empty() {
                    self.transact(&checked, true).await?;
                }
                Err(error)
            }
        }
    }

    /// Sends `ops` as one transaction (puts, or only their condition
    /// checks), retrying cancellations caused only by concurrent
    /// transactions.
    async fn transact(&self, ops: &[Op], check_only: bool) -> Result<(), StoreError> {
        let items = ops
            .iter()
            .map(|op| transact_item(op, &self.table(&op.table), check_only))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // One token per attempt that may have landed: the SDK's retries and
        // a resend after `TransactionInProgress` keep it, so a transaction
        // applied once is answered as such; after a cancellation nothing
        // was applied and a new token is safe.
        let mut token = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let e = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let reasons = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_))
                    if attempt < CONFLICT_ATTEMPTS =>
                {
                    tokio::time::sleep(CONFLICT_BACKOFF * attempt).await;
                    continue;
                }
                _ => {
                    let tables = format!("{}*", self.prefix);
                    return Err(sdk_error("TransactWriteItems", &tables, e));
                }
            };
            let failed = reasons
                .iter()
                .zip(ops)
                .find(|(r, _)| r.code() == Some("ConditionalCheckFailed"));
            if let Some((reason, op)) = failed {
                return Err(self.condition_failed(op, reason).await);
            }
            let only_conflicts = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
                && reasons
                    .iter()
                    .all(|r| matches!(r.code(), None | Some("None" | "TransactionConflict")));
            if !only_conflicts {
                return Err(cancelled(&reasons, e.code()));
            }
            if attempt == CONFLICT_ATTEMPTS {
                return Err(StoreError::Unavailable(format!(
                    "dynamodb TransactWriteItems: still conflicting with concurrent transactions after {attempt} attempts"
                )));
            }
            token = uuid::Uuid::new_v4().to_string();
            let jitter = rand::random::<u32>() % 25;
            tokio::time::sleep(CONFLICT_BACKOFF * attempt + Duration::from_millis(jitter.into()))
                .await;
        }
    }

    /// The error of `op`'s failed condition. `UpdateUser` tells a version
    /// mismatch from an email change by the stored item (returned with the
    /// reason, else read).
    async fn condition_failed(&self, op: &Op, reason: &CancellationReason) -> StoreError {
        let Condition::UserVersion { version, email } = &op.condition else {
            return StoreError::Conflict(op.conflict);
        };
        let stored = match reason.item() {
            Some(item) => Some(item.clone()),
            None => {
                let key = items::key_of(&op.item, &op.table);
                match self.get_item(&op.table, key).await {
                    Ok(item) => item,
                    Err(e) => return e,
                }
            }
        };
        let same_version = stored
            .as_ref()
            .and_then(|s| s.get(items::VERSION))
            .is_some_and(|v| v == &items::n(version));
        let other_email = stored
            .as_ref()
            .and_then(|s| s.get(items::EMAIL))
            .is_some_and(|e| e != &items::s(email));
        if same_version && other_email {
            email_change()
        } else {
            StoreError::Conflict(op.conflict)
        }
    }
}

/// A cancellation for other reasons than conditions or concurrency.
fn cancelled(reasons: &[CancellationReason], code: Option<&str>) -> StoreError {
    let codes: Vec<String> = reasons
        .iter()
        .enumerate()
        .filter(|(_, r)| !matches!(r.code(), None | Some("None")))
        .map(|(i, r)| {
            format!(
                "item {i}: {} {}",
                r.code().unwrap_or(""),
                r.message().unwrap_or("")
            )
        })
        .collect();
    let why = format!(
        "dynamodb TransactWriteItems cancelled ({}): {}",
        code.unwrap_or("?"),
        codes.join("; ")
    );
    if reasons
        .iter()
        .any(|r| matches!(r.code(), Some("ValidationError")))
    {
        StoreError::Corrupt(why)
    } else {
        StoreError::Unavailable(why)
    }
}
