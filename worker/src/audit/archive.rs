//! [`AuditArchive`]: the audit queue's consumer. Each batch of
//! deliveries becomes one object (or a few, past the size limit) of
//! hash-chained records, archived exactly once despite at-least-once
//! delivery, sink outages and a crash at any point (docs/AUDIT.md,
//! "Exactly once"):
//!
//! 1. deliveries already archived (in the last confirmed batches, or in
//!    their stream's last ids) and repeats inside the batch are dropped
//!    and answered `Done`;
//! 2. the rest get their stream's next seq, prev and hash;
//! 3. `head.pending = key` is committed;
//! 4. the object is PUT, retried with backoff (the same key and bytes);
//! 5. the stream checkpoints and then the head (confirmed) are committed;
//! 6. the deliveries are answered `Done`.
//!
//! A failure of 3-5 answers `Retry` and leaves the state in memory as it
//! was; the next batch (or [`recover`](api::queue::Consumer::recover)
//! after a restart) first settles a pending object: rolled forward when
//! it exists, forgotten when not.
//!
//! One archiver at a time: two would both extend the same chains (forks
//! that `verify` reports as duplicates and broken links).

use super::record::{self, chain_hash, object_key, stream_of, write_line, MAX_OBJECT_BYTES};
use super::sink::Sink;
use super::state::{self, Head, StreamState};
use api::queue::{Batching, Consumer, Delivery, Outcome};
use api::store::Store;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How the archiver batches and retries.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Most deliveries per batch.
    pub max_deliveries: usize,
    /// Most bytes of records per object (a bigger batch makes several).
    pub max_object_bytes: usize,
    /// How long a batch gathers after its first delivery.
    pub wait: Duration,
    /// Confirmed batches whose event ids are kept for deduplication.
    pub dedupe_batches: usize,
    /// How long a PUT is retried before the batch is answered `Retry`.
    pub put_give_up: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            max_deliveries: 500,
            max_object_bytes: 1024 * 1024,
            wait: Duration::from_secs(2),
            dedupe_batches: 16,
            put_give_up: Duration::from_secs(15 * 60),
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What the archiver holds in memory.
#[derive(Default)]
struct State {
    /// The confirmed head; `None` until recovered (and again after a
    /// failure that may have left a pending object).
    head: Option<Head>,
    /// Cache of the stream checkpoints (never ahead of the store).
    streams: HashMap<String, StreamState>,
    /// Event ids of the last confirmed batches, oldest first.
    recent_batches: VecDeque<HashSet<String>>,
}

/// The audit archive consumer (see the module doc).
pub struct AuditArchive {
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    settings: AuditSettings,
    state: tokio::sync::Mutex<State>,
}

impl AuditArchive {
    /// An archiver keeping its state in `store` and its objects in `sink`.
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn Sink>, settings: AuditSettings) -> Self {
        AuditArchive {
            store,
            sink,
            settings,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Settles a pending object and loads the dedupe ids (see the
    /// module doc).
    async fn recover_locked(&self, st: &mut State) -> anyhow::Result<()> {
        let store = &*self.store;
        let mut head = state::read_head(store).await?;
        st.streams.clear();
        st.recent_batches.clear();
        let previous = head.key.clone();
        if let Some(pending) = head.pending.clone() {
            match self.sink.get(&pending, MAX_OBJECT_BYTES).await? {
                Some(body) => {
                    let (_, batch) = record::parse_key(&pending)
                        .ok_or_else(|| anyhow::anyhow!("pending key {pending:?} is malformed"))?;
                    let records = record::decode_object(&body)
                        .map_err(|e| anyhow::anyhow!("pending object {pending}: {e}"))?;
                    let mut rolled: BTreeMap<String, StreamState> = BTreeMap::new();
                    for r in &records {
                        if !rolled.contains_key(&r.stream) {
                            let s = state::read_stream(store, &r.stream).await?;
                            rolled.insert(r.stream.clone(), s);
                        }
                        let s = rolled.get_mut(&r.stream).expect("inserted above");
                        if r.seq <= s.seq {
                            continue;
                        }
                        anyhow::ensure!(
                            r.seq == s.seq + 1 && r.prev == s.hash && r.hash_holds(),
                            "pending object {pending}: stream {} seq {} does not follow its checkpoint (seq {})",
                            r.stream,
                            r.seq,
                            s.seq
                        );
                        s.push(&r.event_id, r.hash.clone());
                    }
                    head = Head {
                        batch,
                        key: pending.clone(),
                        pending: None,
                        records: head.records + records.len() as u64,
                    };
                    state::put_streams_then_head(store, rolled.iter(), &head).await?;
                    tracing::info!(key = %pending, records = records.len(), "audit: rolled a pending object forward");
                    st.streams.extend(rolled);
                }
                None => {
                    tracing::info!(key = %pending, "audit: the pending object was never written; forgotten");
                    head.pending = None;
                    state::put_head(store, &head).await?;
                }
            }
        }
        let mut keys = vec![previous, head.key.clone()];
        keys.dedup();
        for key in keys.into_iter().filter(|k| !k.is_empty()) {
            match self.sink.get(&key, MAX_OBJECT_BYTES).await? {
                Some(body) => match record::decode_object(&body) {
                    Ok(records) => st
                        .recent_batches
                        .push_back(records.into_iter().map(|r| r.event_id).collect()),
                    Err(e) => tracing::error!(%key, error = %e, "audit: last object unreadable"),
                },
                None => tracing::error!(%key, "audit: the last confirmed object is missing"),
            }
        }
        st.head = Some(head);
        Ok(())
    }

    /// Archives the deliveries `batch[i]` for `i` in `fresh` as one
    /// object, as many as fit; returns how many it took.
    async fn archive_one(
        &self,
        st: &mut State,
        batch: &[Delivery],
        fresh: &[usize],
    ) -> anyhow::Result<usize> {
        let head = st
            .head
            .clone()
            .expect("invariant: recovered before archiving");
        let number = head.batch + 1;
        let mut changed: HashMap<String, StreamState> = HashMap::new();
        let (mut lines, mut bytes, mut ids) = (Vec::new(), 0usize, HashSet::new());
        for &i in fresh {
            let event: &api::events::Event = &batch[i].event;
            // The queue's own line where it has one (the embedded log):
            // the same JSON, not serialized again.
            let json: std::borrow::Cow<'_, str> = match &batch[i].json {
                Some(json) => std::borrow::Cow::Borrowed(json),
                None => std::borrow::Cow::Owned(serde_json::to_string(event)?),
            };
            let stream = stream_of(event.user_id.as_deref());
            if !changed.contains_key(stream) {
                let s = st.streams.get(stream).cloned();
                let s = s.expect("invariant: streams loaded while deduplicating");
                changed.insert(stream.to_owned(), s);
            }
            let s = changed.get_mut(stream).expect("inserted above");
            let hash = chain_hash(&s.hash, stream, s.seq + 1, json.as_bytes());
            let line = write_line(stream, s.seq + 1, &s.hash, &hash, &json);
            if !lines.is_empty() && bytes + line.len() + 1 > self.settings.max_object_bytes {
                break;
            }
            bytes += line.len() + 1;
            s.push(&event.id, hash);
            lines.push(line);
            ids.insert(event.id.clone());
        }
        let first = &batch[fresh[0]].event;
        let mut hour = record::hour_of(first.time);
        if let Some((last, _)) = record::parse_key(&head.key) {
            hour = hour.max(last);
        }
        let key = object_key(hour, number, &key_safe(&first.id));
        let body = record::encode_object(&lines);

        let pending = Head {
            pending: Some(key.clone()),
            ..head.clone()
        };
        state::put_head(&*self.store, &pending).await?;
        if let Err(e) = self.put_with_retry(&key, body).await {
            st.head = None;
            return Err(e);
        }
        let confirmed = Head {
            batch: number,
            key: key.clone(),
            pending: None,
            records: head.records + lines.len() as u64,
        };
        if let Err(e) = state::put_streams_then_head(&*self.store, changed.iter(), &confirmed).await
        {
            st.head = None;
            return Err(e.into());
        }
        st.streams.extend(changed);
        st.head = Some(confirmed);
        st.recent_batches.push_back(ids);
        while st.recent_batches.len() > self.settings.dedupe_batches.max(1) {
            st.recent_batches.pop_front();
        }
        metrics::counter!("nax_audit_records_total").increment(lines.len() as u64);
        metrics::counter!("nax_audit_objects_total").increment(1);
        tracing::debug!(%key, records = lines.len(), "audit: object archived");
        Ok(lines.len())
    }

    /// PUTs `body` under `key` until it lands or the give-up time passes.
    async fn put_with_retry(&self, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let give_up = tokio::time::Instant::now() + self.settings.put_give_up;
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.sink.put(key, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    metrics::counter!("nax_audit_put_failures_total").increment(1);
                    tracing::warn!(%key, error = %e, "audit: put failed; retrying");
                    if tokio::time::Instant::now() + backoff > give_up {
                        anyhow::bail!("put {key}: {e}");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// An event id as a key part: letters, digits, `-`, `_` and `.` kept,
/// anything else `_`, at most 64 characters.
fn key_safe(id: &str) -> String {
    id.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn retry_all(n: usize, why: &anyhow::Error) -> Vec<Outcome> {
    vec![Outcome::Retry(format!("{why:#}")); n]
}

#[async_trait]
impl Consumer for AuditArchive {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn batching(&self) -> Batching {
        Batching {
            max: self.settings.max_deliveries,
            wait: self.settings.wait,
        }
    }

    async fn recover(&self) -> anyhow::Result<()> {
        let mut st = self.state.lock().await;
        let result = self.recover_locked(&mut st).await;
        if result.is_err() {
            st.head = None;
        }
        result
    }

    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut st = self.state.lock().await;
        if st.head.is_none() {
            if let Err(e) = self.recover_locked(&mut st).await {
                st.head = None;
                return retry_all(batch.len(), &e);
            }
        }
        let mut outcomes = vec![Outcome::Done; batch.len()];
        let (mut fresh, mut seen, mut dropped) = (Vec::new(), HashSet::new(), 0u64);
        for (i, delivery) in batch.iter().enumerate() {
            let id = &delivery.event.id;
            let stream = stream_of(delivery.event.user_id.as_deref());
            if !st.streams.contains_key(stream) {
                match state::read_stream(&*self.store, stream).await {
                    Ok(s) => {
                        st.streams.insert(stream.to_owned(), s);
                    }
                    Err(e) => return retry_all(batch.len(), &e.into()),
                }
            }
            let archived = seen.contains(id)
                || st.recent_batches.iter().any(|b| b.contains(id))
                || st.streams[stream].recent.contains(id);
            if archived {
                dropped += 1;
                continue;
            }
            seen.insert(id.clone());
            fresh.push(i);
        }
        if dropped > 0 {
            metrics::counter!("nax_audit_duplicates_dropped_total").increment(dropped);
            tracing::info!(dropped, "audit: deliveries already archived dropped");
        }
        let mut start = 0;
        while start < fresh.len() {
            match self.archive_one(&mut st, batch, &fresh[start..]).await {
                Ok(taken) => start += taken,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "audit: batch not archived");
                    for &i in &fresh[start..] {
                        outcomes[i] = Outcome::Retry(format!("{e:#}"));
                    }
                    break;
                }
            }
        }
        outcomes
    }
}
