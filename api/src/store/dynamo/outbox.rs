//! The outbox on DynamoDB: `Outbox` (hash `shard`, range `position`).
//!
//! Shard: the acting user's id (or `system`) hashed to one of [`SHARDS`],
//! so one user's events share a partition and sort there by position,
//! while writes spread over several partitions. Changing [`SHARDS`]
//! reorders pending entries: drain the outbox first.
//!
//! Position: `<µs since epoch, 20 digits>-<node, 16 hex>-<shard, 2 digits>`,
//! taken when the commit is prepared from a per-process clock that never
//! repeats or goes back (`max(now, last + 1µs)`), with the process's
//! random node id breaking ties between processes. String order is
//! position order; the shard suffix lets `outbox_ack` find the key.
//!
//! Ordering guarantee, stated plainly (DynamoDB has no global sequence,
//! and a shared counter item would serialize every commit of the fleet):
//! - commits of one process that do not overlap (one acknowledged before
//!   the next is prepared) come out in commit order;
//! - across processes, positions follow wall clocks: non-overlapping
//!   commits keep their order while clock skew is below the time between
//!   them, which is at least one `TransactWriteItems` round trip
//!   (milliseconds; Amazon Time Sync keeps ECS hosts well within that);
//!   a user's commits are sequential in practice (each request reads the
//!   state the previous one wrote, versions enforce it), so a user's
//!   events come out in order, which is what docs/ARCHITECTURE.md asks;
//! - overlapping commits have no order to keep; one may become visible
//!   after a later position was already read. It is not lost: it stays
//!   pending until acknowledged and goes out on the next read (at least
//!   once, consumers deduplicate by event id).

use super::errors::sdk_error;
use super::items::{self, Item};
use super::tables::OUTBOX;
use crate::events::Event;
use crate::store::{OutboxEntry, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Partitions of the outbox (see the module docs before changing it).
pub(super) const SHARDS: u8 = 16;
/// Entries per `BatchWriteItem` (DynamoDB's limit).
const DELETE_BATCH: usize = 25;
/// Rounds of re-sending what `BatchWriteItem` left unprocessed.
const DELETE_ATTEMPTS: u32 = 5;

/// The last microsecond handed out in this process.
static CLOCK: AtomicU64 = AtomicU64::new(0);
static NODE: OnceLock<String> = OnceLock::new();

/// A microsecond tick later than every earlier one of this process.
fn tick() -> u64 {
    let now = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
    let mut last = CLOCK.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match CLOCK.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn node() -> &'static str {
    NODE.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// The shard of an event of `user_id`.
pub(super) fn shard_of(user_id: Option<&str>) -> u8 {
    let digest = Sha256::digest(user_id.unwrap_or("system").as_bytes());
    digest[0] % SHARDS
}

fn shard_name(shard: u8) -> String {
    format!("{shard:02}")
}

/// A fresh position in `shard` (see the module docs).
pub(super) fn next_position(shard: u8) -> String {
    format!("{:020}-{}-{}", tick(), node(), shard_name(shard))
}

/// The shard of a position this store made; `None` for anything else.
fn shard_of_position(position: &str) -> Option<String> {
    let mut parts = position.split('-');
    let (micros, node, shard) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && micros.len() == 20
        && micros.bytes().all(|b| b.is_ascii_digit())
        && node.len() == 16
        && node.bytes().all(|b| b.is_ascii_hexdigit())
        && shard.len() == 2
        && shard.parse::<u8>().is_ok_and(|s| s < SHARDS);
    well_formed.then(|| shard.to_owned())
}

/// The item of `event` at `position`.
pub(super) fn entry_item(event: &Event, position: &str) -> Result<Item, StoreError> {
    let shard = shard_of_position(position).ok_or_else(|| {
        StoreError::Corrupt(format!("outbox position {position} is not well formed"))
    })?;
    let json = serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(format!("encode event: {e}")))?;
    let mut item = items::key(&[("shard", &shard), ("position", position)]);
    item.insert("event_id".to_owned(), items::s(&event.id));
    item.insert(items::DOC.to_owned(), items::s(json));
    Ok(item)
}

/// The oldest `limit` entries of every shard, merged by position.
pub(super) async fn pending(
    client: &Client,
    table: &str,
    limit: usize,
) -> Result<Vec<OutboxEntry>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut reads = tokio::task::JoinSet::new();
    for shard in 0..SHARDS {
        let (client, table) = (client.clone(), table.to_owned());
        reads.spawn(async move { oldest_of_shard(&client, &table, shard, limit).await });
    }
    let mut all = Vec::new();
    while let Some(read) = reads.join_next().await {
        let entries = read.map_err(|e| StoreError::Unavailable(format!("outbox read: {e}")))?;
        all.extend(entries?);
    }
    all.sort_by(|a, b| a.position.cmp(&b.position));
    all.truncate(limit);
    Ok(all)
}

async fn oldest_of_shard(
    client: &Client,
    table: &str,
    shard: u8,
    limit: usize,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#shard = :shard")
            .expression_attribute_names("#shard", OUTBOX.hash_key)
            .expression_attribute_values(":shard", AttributeValue::S(shard_name(shard)))
            .scan_index_forward(true)
            .consistent_read(true)
            .limit(want)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("Query", table, e))?;
        for item in page.items() {
            let position = match item.get("position") {
                Some(AttributeValue::S(p)) => p.clone(),
                _ => return Err(StoreError::Corrupt("outbox item without position".into())),
            };
            out.push(OutboxEntry {
                position,
                event: std::sync::Arc::new(items::decode(item)?),
            });
        }
        match page.last_evaluated_key() {
            Some(k) if out.len() < limit => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

/// Deletes the entries at `positions`; positions this store did not make
/// are ignored, as are repeats and entries already gone.
pub(super) async fn ack(
    client: &Client,
    table: &str,
    positions: &[String],
) -> Result<(), StoreError> {
    // BatchWriteItem refuses a batch naming one key twice.
    let keys: BTreeSet<(String, &str)> = positions
        .iter()
        .filter_map(|p| Some((shard_of_position(p)?, p.as_str())))
        .collect();
    let requests = keys
        .into_iter()
        .map(|(shard, position)| {
            let delete = DeleteRequest::builder()
                .set_key(Some(items::key(&[
                    ("shard", &shard),
                    ("position", position),
                ])))
                .build()
                .map_err(|e| StoreError::Corrupt(format!("outbox delete: {e}")))?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    for chunk in requests.chunks(DELETE_BATCH) {
        let mut pending = chunk.to_vec();
        for attempt in 0..DELETE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| sdk_error("BatchWriteItem", table, e))?;
            pending = out
                .unprocessed_items()
                .and_then(|u| u.get(table))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "dynamodb BatchWriteItem on {table}: {} outbox deletes still unprocessed after {DELETE_ATTEMPTS} attempts",
                pending.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_increase_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2000).map(|_| next_position(3)).collect::<Vec<_>>()))
            .collect();
        let mut all = Vec::new();
        for t in threads {
            let mine = t.join().expect("thread");
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "per thread, increasing"
            );
            all.extend(mine);
        }
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "never repeated");
    }

    #[test]
    fn positions_name_their_shard() {
        let p = next_position(7);
        assert_eq!(shard_of_position(&p).as_deref(), Some("07"));
        for bad in [
            "not-a-position",
            "",
            "00000000000000000001-0123456789abcdef-16",
            "00000000000000000001-0123456789abcdef-07-x",
            "0000000000000000000x-0123456789abcdef-07",
        ] {
            assert_eq!(shard_of_position(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_users_events_share_a_shard() {
        assert_eq!(shard_of(Some("u-1")), shard_of(Some("u-1")));
        assert!(shard_of(Some("u-1")) < SHARDS && shard_of(None) < SHARDS);
        let spread: BTreeSet<u8> = (0..200)
            .map(|i| shard_of(Some(&format!("user-{i}"))))
            .collect();
        assert!(
            spread.len() > SHARDS as usize / 2,
            "users spread over shards"
        );
    }
}
