//! The archiver's state in the store's `SyncCheckpoints` (service
//! `audit-archive`): the `head` (last confirmed batch, and the batch
//! being written) and one `stream#<id>` per stream (its last seq and
//! hash, and its last event ids). See docs/AUDIT.md, "Exactly once".

use api::store::{Store, StoreError, SyncCheckpoint, Write};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// `service_name` of every checkpoint of the archive.
pub const SERVICE: &str = "audit-archive";
/// `sync_type` of the head checkpoint.
pub const HEAD: &str = "head";
/// Event ids a stream checkpoint remembers.
pub const RECENT: usize = 32;

/// The archive's head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Number of the last confirmed batch (0: none yet).
    pub batch: u64,
    /// Key of the last confirmed object (empty: none yet).
    pub key: String,
    /// Records archived in all (through the last confirmed batch): what
    /// the archive must hold, to compare with `verify` (truncation).
    #[serde(default)]
    pub records: u64,
    /// Key of the object being written: committed before its PUT,
    /// cleared when it is confirmed (or found never written).
    pub pending: Option<String>,
}

/// Where a stream's chain stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Seq of its last archived record (0: none yet).
    pub seq: u64,
    /// Hash of its last archived record ([`GENESIS`](super::record::GENESIS) before the first).
    pub hash: String,
    /// Its last [`RECENT`] event ids, oldest first.
    pub recent: VecDeque<String>,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            seq: 0,
            hash: super::record::GENESIS.to_owned(),
            recent: VecDeque::new(),
        }
    }
}

impl StreamState {
    /// Appends a record of event `id` with `hash`.
    pub fn push(&mut self, id: &str, hash: String) {
        self.seq += 1;
        self.hash = hash;
        self.recent.push_back(id.to_owned());
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }
}

/// `sync_type` of a stream's checkpoint.
pub fn stream_key(stream: &str) -> String {
    format!("stream#{stream}")
}

fn decode<T: for<'de> Deserialize<'de>>(cp: &SyncCheckpoint) -> Result<T, StoreError> {
    // A checkpoint is a short JSON the archiver wrote itself; bound it anyway.
    const BOUNDS: inbound::JsonBounds = inbound::JsonBounds {
        max_bytes: 64 * 1024,
        max_depth: 4,
        max_elements: 256,
    };
    BOUNDS
        .check(cp.value.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("checkpoint {}: {e}", cp.sync_type)))?;
    serde_json::from_str(&cp.value)
        .map_err(|e| StoreError::Corrupt(format!("checkpoint {}: {e}", cp.sync_type)))
}

/// The head, or the empty head when the archive has none yet.
pub async fn read_head(store: &dyn Store) -> Result<Head, StoreError> {
    match store.checkpoint(SERVICE, HEAD).await? {
        Some(cp) => decode(&cp),
        None => Ok(Head::default()),
    }
}

/// A stream's state, or the state before its first record.
pub async fn read_stream(store: &dyn Store, stream: &str) -> Result<StreamState, StoreError> {
    match store.checkpoint(SERVICE, &stream_key(stream)).await? {
        Some(cp) => decode(&cp),
        None => Ok(StreamState::default()),
    }
}

fn checkpoint(sync_type: String, value: &impl Serialize) -> Write {
    Write::PutCheckpoint(SyncCheckpoint {
        service_name: SERVICE.to_owned(),
        sync_type,
        value: serde_json::to_string(value).expect("invariant: state serializes"),
        updated_at: api::events::now(),
    })
}

/// Commits the head alone.
pub async fn put_head(store: &dyn Store, head: &Head) -> Result<(), StoreError> {
    store.commit(vec![checkpoint(HEAD.to_owned(), head)]).await
}

/// Commits stream states and then the head, in batches the store takes
/// (`api::store::dynamo::MAX_ITEMS`); the head goes in the last one.
pub async fn put_streams_then_head<'a>(
    store: &dyn Store,
    streams: impl IntoIterator<Item = (&'a String, &'a StreamState)>,
    head: &Head,
) -> Result<(), StoreError> {
    let mut writes: Vec<Write> = streams
        .into_iter()
        .map(|(stream, state)| checkpoint(stream_key(stream), state))
        .collect();
    writes.push(checkpoint(HEAD.to_owned(), head));
    for chunk in writes.chunks(api::store::dynamo::MAX_ITEMS) {
        store.commit(chunk.to_vec()).await?;
    }
    Ok(())
}
