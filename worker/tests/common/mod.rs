//! Helpers of the audit archive's tests: events and deliveries, a store
//! that fails on demand, an independent reading of archive objects.

#![allow(dead_code)]

use api::events::{Event, Timestamp};
use api::queue::Delivery;
use api::store::embedded::EmbeddedStore;
use api::store::*;
use async_trait::async_trait;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An event of `user` (or `system`) at `time`, with a fresh id.
pub fn event_at(user: Option<&str>, time: Timestamp, n: usize) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        event_type: "order.filled".to_owned(),
        version: 1,
        time,
        user_id: user.map(str::to_owned),
        correlation_id: format!("req-{n}"),
        data: serde_json::json!({"n": n, "price": "101.25", "note": "zeta \"quoted\" \u{e9}", "a": [1, {"b": null}]}),
        traceparent: None,
    }
}

/// An event of `user` now.
pub fn event(user: Option<&str>, n: usize) -> Event {
    event_at(user, api::events::now(), n)
}

/// A first delivery of `event`.
pub fn delivery(event: &Event) -> Delivery {
    Delivery {
        event: std::sync::Arc::new(event.clone()),
        json: None,
        handle: event.id.clone(),
        receives: 1,
        enqueued_at: event.time,
        traceparent: event.traceparent.clone(),
    }
}

/// An embedded store in `dir`.
pub fn embedded(dir: &Path) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(dir).expect("open the embedded store"))
}

/// A store whose commits fail (as an outage would) from the `fail_from`th
/// on (counting from 1), until [`FailingStore::heal`].
pub struct FailingStore {
    inner: Arc<dyn Store>,
    commits: AtomicUsize,
    fail_from: AtomicUsize,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn Store>, fail_from: usize) -> Arc<FailingStore> {
        Arc::new(FailingStore {
            inner,
            commits: AtomicUsize::new(0),
            fail_from: AtomicUsize::new(fail_from),
        })
    }

    /// Commits made or refused so far.
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    pub fn heal(&self) {
        self.fail_from.store(usize::MAX, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for FailingStore {
    async fn commit(&self, writes: Vec<Write>) -> StoreResult<()> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(format!("test outage (commit {n})")));
        }
        self.inner.commit(writes).await
    }
    async fn get(&self, key: RecordKey<'_>) -> StoreResult<Option<Record>> {
        self.inner.get(key).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.inner.user_by_email(email).await
    }
    async fn transactions(&self, user_id: &str, query: &TxQuery) -> StoreResult<Page<Transaction>> {
        self.inner.transactions(user_id, query).await
    }
    async fn in_status(&self, query: &StatusQuery<'_>) -> StoreResult<Vec<Transaction>> {
        self.inner.in_status(query).await
    }
    async fn outbox_pending(&self, limit: usize) -> StoreResult<Vec<OutboxEntry>> {
        self.inner.outbox_pending(limit).await
    }
    async fn outbox_ack(&self, positions: &[String]) -> StoreResult<()> {
        self.inner.outbox_ack(positions).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

/// One record line, read without the crate's parser: the fields from a
/// generic JSON value, the event's bytes cut out of the line by hand.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: String,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub event_id: String,
    pub event_bytes: String,
}

/// Decompresses an object and reads its lines (see [`Line`]).
pub fn read_object(body: &[u8]) -> Vec<Line> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let at = line.find(r#","event":"#).expect("an event field") + r#","event":"#.len();
            assert!(line.ends_with('}'));
            let event_bytes = line[at..line.len() - 1].to_owned();
            Line {
                stream: v["stream"].as_str().unwrap().to_owned(),
                seq: v["seq"].as_u64().unwrap(),
                prev: v["prev"].as_str().unwrap().to_owned(),
                hash: v["hash"].as_str().unwrap().to_owned(),
                event_id: v["event"]["id"].as_str().unwrap().to_owned(),
                event_bytes,
            }
        })
        .collect()
}

/// The chain formula, written out here independently of the crate:
/// SHA-256 hex of `prev \n stream \n seq \n event-bytes`.
pub fn expected_hash(prev: &str, stream: &str, seq: u64, event_bytes: &str) -> String {
    use sha2::Digest;
    let text = format!("{prev}\n{stream}\n{seq}\n{event_bytes}");
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Every file `*.ndjson.gz` under `dir`, as (key relative to `dir`, path), sorted.
pub fn files(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.to_string_lossy().ends_with(".ndjson.gz") {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((key, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `events` as an [`api::events::EventPublisher`] takes them.
pub fn shared(events: &[Event]) -> Vec<std::sync::Arc<Event>> {
    events.iter().cloned().map(std::sync::Arc::new).collect()
}

/// SQS settings for queues named with `prefix` on the moto at `moto`.
pub fn sqs_config(moto: &str, prefix: &str) -> api::events::sqs::SqsConfig {
    api::events::sqs::SqsConfig {
        endpoint: Some(moto.to_owned()),
        static_credentials: Some(api::events::sqs::StaticCredentials::test()),
        queue_prefix: prefix.to_owned(),
        ..Default::default()
    }
}
