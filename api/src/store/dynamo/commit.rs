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

use super::errors::sdk_error;
use super::items::{self, Item};
use super::outbox;
use super::tables::{
    TableSpec, CHAIN_CREDITS, IDEMPOTENCY_KEYS, OUTBOX, REFRESH_FAMILIES, SYNC_CHECKPOINTS,
    TRANSACTIONS, USERS, WEBHOOK_RECEIPTS,
};
use super::DynamoStore;
use crate::store::{normalize_email, Conflict, StoreError, Write};
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use std::collections::HashMap;
use std::time::Duration;

/// Items per `TransactWriteItems` (DynamoDB's limit).
pub const MAX_ITEMS: usize = 100;
/// Sends of a transaction cancelled only by concurrent transactions.
const CONFLICT_ATTEMPTS: u32 = 3;
const CONFLICT_BACKOFF: Duration = Duration::from_millis(25);

/// What must hold for an item's put.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    None,
    /// The key is free.
    Absent,
    /// The stored `version` is this.
    Version(u64),
    /// The stored user has this version and normalized email.
    UserVersion {
        version: u64,
        email: String,
    },
}

/// One put of the transaction.
#[derive(Debug, Clone)]
struct Op {
    table: TableSpec,
    item: Item,
    condition: Condition,
    /// What a failed condition means.
    conflict: Conflict,
    /// The record's version after this put (versioned records).
    version: Option<u64>,
    /// A user's normalized email (user items).
    email: Option<String>,
}

impl Op {
    fn new(table: TableSpec, item: Item, condition: Condition, conflict: Conflict) -> Self {
        Op {
            table,
            item,
            condition,
            conflict,
            version: None,
            email: None,
        }
    }

    fn versioned(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    fn identity(&self) -> String {
        let part = |name: Option<&str>| match name.and_then(|n| self.item.get(n)) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => String::new(),
        };
        format!(
            "{}\0{}\0{}",
            self.table.name,
            part(Some(self.table.hash_key)),
            part(self.table.range_key)
        )
    }

    /// The condition expression with its names and values.
    fn expression(&self) -> Option<ConditionExpression> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let expression = match &self.condition {
            Condition::None => return None,
            Condition::Absent => {
                names.insert("#key".to_owned(), self.table.hash_key.to_owned());
                "attribute_not_exists(#key)".to_owned()
            }
            Condition::Version(v) => {
                names.insert("#version".to_owned(), items::VERSION.to_owned());
                values.insert(":expected".to_owned(), items::n(v));
                "#version = :expected".to_owned()
            }
            Condition::UserVersion { version, email } => {
                names.insert("#version".to_owned(), items::VERSION.to_owned());
                names.insert("#email".to_owned(), items::EMAIL.to_owned());
                values.insert(":expected".to_owned(), items::n(version));
                values.insert(":email".to_owned(), items::s(email));
                "#version = :expected AND #email = :email".to_owned()
            }
        };
        Some(ConditionExpression {
            expression,
            names,
            // DynamoDB refuses an empty map.
            values: (!values.is_empty()).then_some(values),
        })
    }
}

/// A condition as DynamoDB takes it.
struct ConditionExpression {
    expression: String,
    names: HashMap<String, String>,
    values: Option<HashMap<String, AttributeValue>>,
}

/// The items of `writes` for one transaction, or the write that fails
/// inside the batch and the folded writes before it.
enum Plan {
    Ready(Vec<Op>),
    FailsAt { before: Vec<Op>, error: StoreError },
}

/// DynamoDB items `write` needs.
fn items_needed(write: &Write) -> usize {
    match write {
        Write::CreateUser(_) => 2,
        _ => 1,
    }
}

/// The ops of one write.
fn ops_of(write: Write) -> Result<Vec<Op>, StoreError> {
    use Conflict::*;
    Ok(match write {
        Write::CreateUser(user) => {
            if user.user_id.starts_with(items::EMAIL_GUARD_PREFIX) {
                return Err(StoreError::Corrupt(format!(
                    "user id {} uses the email guard prefix",
                    user.user_id
                )));
            }
            let guard = Op::new(
                USERS,
                items::email_guard(&user),
                Condition::Absent,
                EmailTaken,
            );
            let mut record = Op::new(
                USERS,
                items::user(&user)?,
                Condition::Absent,
                AlreadyExists("user"),
            )
            .versioned(user.version);
            record.email = Some(normalize_email(&user.email));
            vec![guard, record]
        }
        Write::UpdateUser {
            user,
            expected_version,
        } => {
            let email = normalize_email(&user.email);
            let condition = Condition::UserVersion {
                version: expected_version,
                email: email.clone(),
            };
            let mut op = Op::new(
                USERS,
                items::user(&user)?,
                condition,
                VersionMismatch("user"),
            )
            .versioned(user.version);
            op.email = Some(email);
            vec![op]
        }
        Write::CreateTransaction(t) => vec![Op::new(
            TRANSACTIONS,
            items::transaction(&t)?,
            Condition::Absent,
            AlreadyExists("transaction"),
        )
        .versioned(t.version)],
        Write::UpdateTransaction {
            tx,
            expected_version,
        } => vec![Op::new(
            TRANSACTIONS,
            items::transaction(&tx)?,
            Condition::Version(expected_version),
            VersionMismatch("transaction"),
        )
        .versioned(tx.version)],
        Write::CreateIdempotency(r) => vec![Op::new(
            IDEMPOTENCY_KEYS,
            items::idempotency(&r)?,
            Condition::Absent,
            IdempotencyKey,
        )],
        Write::CreateWebhookReceipt(r) => vec![Op::new(
            WEBHOOK_RECEIPTS,
            items::webhook(&r)?,
            Condition::Absent,
            DuplicateWebhook,
        )],
        Write::CreateChainCredit(c) => vec![Op::new(
            CHAIN_CREDITS,
            items::chain_credit(&c)?,
            Condition::Absent,
            DuplicateChainCredit,
        )],
        Write::PutRefreshFamily {
            family,
            expected_version,
        } => {
            let (condition, conflict) = match expected_version {
                None => (Condition::Absent, AlreadyExists("refresh family")),
                Some(v) => (Condition::Version(v), VersionMismatch("refresh family")),
            };
            vec![Op::new(
                REFRESH_FAMILIES,
                items::family(&family)?,
                condition,
                conflict,
            )
            .versioned(family.version)]
        }
        Write::CreateCheckpoint(c) => vec![Op::new(
            SYNC_CHECKPOINTS,
            items::checkpoint(&c)?,
            Condition::Absent,
            AlreadyExists("checkpoint"),
        )],
        Write::PutCheckpoint(c) => vec![Op::new(
            SYNC_CHECKPOINTS,
            items::checkpoint(&c)?,
            Condition::None,
            AlreadyExists("checkpoint"),
        )],
        Write::Emit(event) => {
            let position = outbox::next_position(outbox::shard_of(event.user_id.as_deref()));
            vec![Op::new(
                OUTBOX,
                outbox::entry_item(&event, &position)?,
                Condition::None,
                AlreadyExists("outbox entry"),
            )]
        }
    })
}

/// Folds `writes` into one transaction's ops (see the module docs).
fn plan(writes: Vec<Write>) -> Result<Plan, StoreError> {
    let needed: usize = writes.iter().map(items_needed).sum();
    if needed > MAX_ITEMS {
        return Err(StoreError::Corrupt(format!(
            "a batch of {} writes needs {needed} DynamoDB items; TransactWriteItems takes at most {MAX_ITEMS}: split it",
            writes.len()
        )));
    }
    let mut ops: Vec<Op> = Vec::with_capacity(needed);
    let mut index: HashMap<String, usize> = HashMap::new();
    for write in writes {
        for op in ops_of(write)? {
            let Some(&at) = index.get(&op.identity()) else {
                index.insert(op.identity(), ops.len());
                ops.push(op);
                continue;
            };
            let earlier = &ops[at];
            let failure = match &op.condition {
                Condition::None => None,
                Condition::Absent => Some(StoreError::Conflict(op.conflict)),
                Condition::Version(v) | Condition::UserVersion { version: v, .. } => {
                    if earlier.version != Some(*v) {
                        Some(StoreError::Conflict(op.conflict))
                    } else if earlier.email != op.email {
                        Some(email_change())
                    } else {
                        None
                    }
                }
            };
            if let Some(error) = failure {
                return Ok(Plan::FailsAt { before: ops, error });
            }
            // The earlier write's condition stays: it guards the result.
            let earlier = &mut ops[at];
            earlier.item = op.item;
            earlier.version = op.version.or(earlier.version);
        }
    }
    Ok(Plan::Ready(ops))
}

fn email_change() -> StoreError {
    StoreError::Corrupt("user email cannot change".into())
}

fn transact_item(op: &Op, table: &str, check_only: bool) -> Result<TransactWriteItem, StoreError> {
    let built = |e: aws_sdk_dynamodb::error::BuildError| {
        StoreError::Corrupt(format!("transaction item for {table}: {e}"))
    };
    let condition = op.expression();
    let (expression, names, values) = match condition {
        Some(c) => (Some(c.expression), Some(c.names), c.values),
        None => (None, None, None),
    };
    if check_only {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(items::key_of(&op.item, &op.table)))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        return Ok(TransactWriteItem::builder()
            .condition_check(check.build().map_err(built)?)
            .build());
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(op.item.clone()))
        .set_condition_expression(expression)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(built)?)
        .build())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventType};
    use crate::store::{SyncCheckpoint, Transaction, TxKind};

    fn tx(id: &str, version: u64) -> Transaction {
        let now = crate::events::now();
        Transaction {
            user_id: "u".into(),
            transaction_id: id.into(),
            kind: TxKind::Order,
            status: "open".into(),
            pair: None,
            created_at: now,
            updated_at: now,
            version,
            detail: serde_json::json!({"amount": "1.50"}),
        }
    }

    fn emit() -> Write {
        Write::Emit(Event::new(
            EventType::OrderAccepted,
            Some("u"),
            serde_json::json!({}),
        ))
    }

    #[test]
    fn more_than_a_hundred_items_are_refused() {
        let writes: Vec<Write> = (0..101).map(|_| emit()).collect();
        match plan(writes) {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("at most 100"), "{why}"),
            _ => panic!("a batch of 101 items must be refused"),
        }
        let writes: Vec<Write> = (0..100).map(|_| emit()).collect();
        assert!(matches!(plan(writes), Ok(Plan::Ready(ops)) if ops.len() == 100));
    }

    #[test]
    fn create_then_update_folds_into_one_put() {
        let writes = vec![
            Write::CreateTransaction(tx("t1", 1)),
            Write::UpdateTransaction {
                tx: tx("t1", 2),
                expected_version: 1,
            },
            Write::UpdateTransaction {
                tx: tx("t1", 3),
                expected_version: 2,
            },
        ];
        let Ok(Plan::Ready(ops)) = plan(writes) else {
            panic!("folds");
        };
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].condition, Condition::Absent);
        assert_eq!(ops[0].item["version"], items::n(3));
    }

    #[test]
    fn a_second_create_or_a_skipped_version_fails_in_the_batch() {
        let twice = vec![
            Write::CreateTransaction(tx("t1", 1)),
            Write::CreateTransaction(tx("t1", 1)),
        ];
        assert!(matches!(
            plan(twice),
            Ok(Plan::FailsAt { before, error: StoreError::Conflict(Conflict::AlreadyExists("transaction")) }) if before.len() == 1
        ));
        let skipped = vec![
            Write::CreateTransaction(tx("t1", 1)),
            Write::UpdateTransaction {
                tx: tx("t1", 3),
                expected_version: 2,
            },
        ];
        assert!(matches!(
            plan(skipped),
            Ok(Plan::FailsAt {
                error: StoreError::Conflict(Conflict::VersionMismatch("transaction")),
                ..
            })
        ));
    }

    #[test]
    fn checkpoints_set_twice_keep_the_last() {
        let cp = |value: &str| SyncCheckpoint {
            service_name: "s".into(),
            sync_type: "t".into(),
            value: value.into(),
            updated_at: crate::events::now(),
        };
        let Ok(Plan::Ready(ops)) = plan(vec![
            Write::PutCheckpoint(cp("1")),
            Write::PutCheckpoint(cp("2")),
        ]) else {
            panic!("folds");
        };
        assert_eq!(ops.len(), 1);
        let stored: SyncCheckpoint = items::decode(&ops[0].item).unwrap();
        assert_eq!(stored.value, "2");
    }
}
