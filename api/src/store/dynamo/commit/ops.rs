//! Each [`Write`] as the conditional `Put`s it needs ([`Op`]s: `CreateUser`
//! two, the email guard and the user; every other write one), and an
//! [`Op`] as a `TransactWriteItems` item (a put, or only its condition
//! check).

use super::super::items::{self, Item};
use super::super::outbox;
use super::super::tables::{
    TableSpec, CHAIN_CREDITS, IDEMPOTENCY_KEYS, OUTBOX, REFRESH_FAMILIES, SYNC_CHECKPOINTS,
    TRANSACTIONS, USERS, WEBHOOK_RECEIPTS,
};
use crate::store::{normalize_email, Conflict, StoreError, Write};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::collections::HashMap;

/// What must hold for an item's put.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Condition {
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
    /// The stored checkpoint's `value` attribute is this (an item written
    /// before that attribute existed never matches).
    CheckpointValue(String),
}

/// One put of the transaction.
#[derive(Debug, Clone)]
pub(super) struct Op {
    pub(super) table: TableSpec,
    pub(super) item: Item,
    pub(super) condition: Condition,
    /// What a failed condition means.
    pub(super) conflict: Conflict,
    /// The record's version after this put (versioned records).
    pub(super) version: Option<u64>,
    /// A user's normalized email (user items).
    pub(super) email: Option<String>,
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

    /// The item's table and key: two ops on one item have one identity.
    pub(super) fn identity(&self) -> String {
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
            Condition::CheckpointValue(expected) => {
                names.insert("#value".to_owned(), items::CHECKPOINT_VALUE.to_owned());
                values.insert(":expected".to_owned(), items::s(expected));
                "#value = :expected".to_owned()
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

/// The ops of one write.
pub(super) fn ops_of(write: Write) -> Result<Vec<Op>, StoreError> {
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
        )
        .versioned(r.version)],
        Write::UpdateWebhookReceipt {
            receipt,
            expected_version,
        } => vec![Op::new(
            WEBHOOK_RECEIPTS,
            items::webhook(&receipt)?,
            Condition::Version(expected_version),
            VersionMismatch("webhook receipt"),
        )
        .versioned(receipt.version)],
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
        Write::ReplaceCheckpoint {
            checkpoint,
            expected_value,
        } => vec![Op::new(
            SYNC_CHECKPOINTS,
            items::checkpoint(&checkpoint)?,
            Condition::CheckpointValue(expected_value),
            VersionMismatch("checkpoint"),
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

/// `op` as a transaction item: its put, or (`check_only`) only its
/// condition check.
pub(super) fn transact_item(
    op: &Op,
    table: &str,
    check_only: bool,
) -> Result<TransactWriteItem, StoreError> {
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
