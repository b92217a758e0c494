//! Folding a batch into one transaction's [`Op`]s (see the module doc of
//! `commit`): DynamoDB refuses two operations on one item in a
//! transaction, so later writes of an item fold into its first put, or
//! fail inside the batch.

use super::ops::{ops_of, Condition, Op};
use super::MAX_ITEMS;
use crate::store::{StoreError, Write};
use std::collections::HashMap;

/// The items of `writes` for one transaction, or the write that fails
/// inside the batch and the folded writes before it.
pub(super) enum Plan {
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

/// Folds `writes` into one transaction's ops (see the module docs).
pub(super) fn plan(writes: Vec<Write>) -> Result<Plan, StoreError> {
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
                Condition::CheckpointValue(expected) => {
                    let value = earlier.item.get(super::super::items::CHECKPOINT_VALUE);
                    (value != Some(&super::super::items::s(expected)))
                        .then_some(StoreError::Conflict(op.conflict))
                }
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

/// The error of a write that changes a user's email.
pub(super) fn email_change() -> StoreError {
    StoreError::Corrupt("user email cannot change".into())
}

#[cfg(test)]
mod tests {
    use super::super::super::items;
    use super::*;
    use crate::events::{Event, EventType};
    use crate::store::{Conflict, SyncCheckpoint, Transaction, TxKind};

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
            detail: serde_json::json!({"amount": "1.50"}).into(),
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
