//! The embedded store's tables ([`Table`]) and their reads and writes in
//! the redb file, the base the overlay of recent writes lies on
//! (`layer.rs`). Keys are bytes here: a string table's key is its UTF-8,
//! the outbox's a big-endian `u64` (so byte order is number order).

use super::layer::Bytes;
use super::{unavailable, StoreError};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use std::ops::Bound;

/// A table of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Table {
    Users,
    /// Normalised email → user id.
    Emails,
    Transactions,
    Idempotency,
    WebhookReceipts,
    ChainCredits,
    RefreshFamilies,
    SyncCheckpoints,
    /// Position → event, keyed by `u64`.
    Outbox,
}

/// How many tables there are.
pub(super) const COUNT: usize = 9;

/// Every table, in [`Table::index`] order.
pub(super) const ALL: [Table; COUNT] = [
    Table::Users,
    Table::Emails,
    Table::Transactions,
    Table::Idempotency,
    Table::WebhookReceipts,
    Table::ChainCredits,
    Table::RefreshFamilies,
    Table::SyncCheckpoints,
    Table::Outbox,
];

type BytesTable = TableDefinition<'static, &'static str, &'static [u8]>;
const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("users_by_email");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// The last write-ahead log segment whose writes are all in the file
/// (`checkpoint.rs`), under [`CHECKPOINTED`].
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("wal_meta");
pub(super) const CHECKPOINTED: &str = "checkpointed_segment";

impl Table {
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The redb table of a table keyed by string with bytes as values.
    fn bytes(self) -> BytesTable {
        TableDefinition::new(match self {
            Table::Users => "users",
            Table::Transactions => "transactions",
            Table::Idempotency => "idempotency",
            Table::WebhookReceipts => "webhook_receipts",
            Table::ChainCredits => "chain_credits",
            Table::RefreshFamilies => "refresh_families",
            Table::SyncCheckpoints => "sync_checkpoints",
            Table::Emails | Table::Outbox => unreachable!("{self:?} is not a bytes table"),
        })
    }
}

fn text(key: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(key).map_err(|_| StoreError::Corrupt("a key is not UTF-8".into()))
}

fn position(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt("an outbox key is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Creates every table (and the log's meta table), so that reads never
/// meet a missing one.
pub(super) fn create_all(tx: &WriteTransaction) -> Result<(), StoreError> {
    for t in ALL {
        match t {
            Table::Emails => drop(tx.open_table(EMAILS).map_err(unavailable)?),
            Table::Outbox => drop(tx.open_table(OUTBOX).map_err(unavailable)?),
            _ => drop(tx.open_table(t.bytes()).map_err(unavailable)?),
        }
    }
    tx.open_table(META).map_err(unavailable)?;
    Ok(())
}

/// The value under `key` in the file (copied once, out of redb's page).
pub(super) fn get(tx: &ReadTransaction, t: Table, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
    Ok(match t {
        Table::Emails => {
            let table = tx.open_table(EMAILS).map_err(unavailable)?;
            let value = table.get(text(key)?).map_err(unavailable)?;
            value.map(|v| Bytes::from(v.value().as_bytes()))
        }
        Table::Outbox => {
            let table = tx.open_table(OUTBOX).map_err(unavailable)?;
            let value = table.get(position(key)?).map_err(unavailable)?;
            value.map(|v| Bytes::from(v.value()))
        }
        _ => {
            let table = tx.open_table(t.bytes()).map_err(unavailable)?;
            let value = table.get(text(key)?).map_err(unavailable)?;
            value.map(|v| Bytes::from(v.value()))
        }
    })
}

/// The last outbox position in the file.
pub(super) fn last_position(tx: &ReadTransaction) -> Result<Option<u64>, StoreError> {
    let table = tx.open_table(OUTBOX).map_err(unavailable)?;
    let last = table.last().map_err(unavailable)?;
    Ok(last.map(|(k, _)| k.value()))
}

/// A visitor of a scan's entries (key, value): `Ok(false)` stops it.
pub(super) type Visit<'a, E = StoreError> = dyn FnMut(&[u8], &[u8]) -> Result<bool, E> + 'a;

/// Calls `each` with the entries of the file's table `t` between `lo` and
/// `hi`, in key order (`rev`: the reverse), until it answers `false`.
pub(super) fn scan(
    tx: &ReadTransaction,
    t: Table,
    (lo, hi): (Bound<&[u8]>, Bound<&[u8]>),
    rev: bool,
    each: &mut Visit<'_>,
) -> Result<(), StoreError> {
    macro_rules! walk {
        ($range:expr, $k:ident, $v:ident => $call:expr) => {{
            let range = $range.map_err(unavailable)?;
            if rev {
                for entry in range.rev() {
                    let ($k, $v) = entry.map_err(unavailable)?;
                    if !$call? {
                        break;
                    }
                }
            } else {
                for entry in range {
                    let ($k, $v) = entry.map_err(unavailable)?;
                    if !$call? {
                        break;
                    }
                }
            }
        }};
    }
    match t {
        Table::Outbox => {
            let table = tx.open_table(OUTBOX).map_err(unavailable)?;
            let (lo, hi) = (bound_position(lo)?, bound_position(hi)?);
            walk!(table.range::<u64>((lo, hi)), k, v => each(&k.value().to_be_bytes(), v.value()));
        }
        Table::Emails => {
            let table = tx.open_table(EMAILS).map_err(unavailable)?;
            let (lo, hi) = (bound_text(lo)?, bound_text(hi)?);
            walk!(table.range::<&str>((lo, hi)), k, v => each(k.value().as_bytes(), v.value().as_bytes()));
        }
        _ => {
            let table = tx.open_table(t.bytes()).map_err(unavailable)?;
            let (lo, hi) = (bound_text(lo)?, bound_text(hi)?);
            walk!(table.range::<&str>((lo, hi)), k, v => each(k.value().as_bytes(), v.value()));
        }
    }
    Ok(())
}

fn bound_text(b: Bound<&[u8]>) -> Result<Bound<&str>, StoreError> {
    Ok(match b {
        Bound::Included(k) => Bound::Included(text(k)?),
        Bound::Excluded(k) => Bound::Excluded(text(k)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn bound_position(b: Bound<&[u8]>) -> Result<Bound<u64>, StoreError> {
    Ok(match b {
        Bound::Included(k) => Bound::Included(position(k)?),
        Bound::Excluded(k) => Bound::Excluded(position(k)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

/// Writes `entries` of table `t` into the file (`None`: removes the key).
pub(super) fn write<'e>(
    tx: &WriteTransaction,
    t: Table,
    entries: impl Iterator<Item = (&'e [u8], Option<&'e [u8]>)>,
) -> Result<(), StoreError> {
    match t {
        Table::Emails => {
            let mut table = tx.open_table(EMAILS).map_err(unavailable)?;
            for (key, value) in entries {
                match value {
                    Some(v) => table.insert(text(key)?, text(v)?).map(drop),
                    None => table.remove(text(key)?).map(drop),
                }
                .map_err(unavailable)?;
            }
        }
        Table::Outbox => {
            let mut table = tx.open_table(OUTBOX).map_err(unavailable)?;
            for (key, value) in entries {
                match value {
                    Some(v) => table.insert(position(key)?, v).map(drop),
                    None => table.remove(position(key)?).map(drop),
                }
                .map_err(unavailable)?;
            }
        }
        _ => {
            let mut table = tx.open_table(t.bytes()).map_err(unavailable)?;
            for (key, value) in entries {
                match value {
                    Some(v) => table.insert(text(key)?, v).map(drop),
                    None => table.remove(text(key)?).map(drop),
                }
                .map_err(unavailable)?;
            }
        }
    }
    Ok(())
}
