//! [`Backplane`]: private updates (`orders`, `balances`) published on one
//! node reach the user's sockets on every node, through one Redis stream.
//!
//! Every node runs the order sync on the venue's `userEvents`, so every
//! node sees every user event and would publish it. Each update has a
//! dedupe key (an order's stored version, a balance's venue time and
//! amounts); one Lua script sets the key (`SET NX`, kept [`DEDUPE_TTL`])
//! and appends the update to the stream only when it was not set before,
//! so each update enters the stream once, whichever node is first. Redis
//! runs scripts one at a time and each node publishes in venue order, so
//! the stream keeps that order.
//!
//! Every node reads the stream from where it last read (on a connection of
//! its own), starting a few seconds before it started, and hands each
//! update to its local [`PrivateBus`](crate::private::PrivateBus), which
//! drops an update not newer than the last it delivered for the same
//! order or asset. A listener that reconnects carries on from its last
//! entry, so a short Redis or network outage loses nothing still in the
//! stream (capped at about `stream_len` entries, [`STREAM_LEN`] by
//! default: `MAXLEN ~` trims whole nodes of the stream, so a little more
//! is kept). While the publish fails (Redis down), the publishing node
//! delivers to its own sockets (metric `nax_backplane_fallbacks_total`);
//! since every node syncs every user event, each node's users still get
//! every venue update then.
//!
//! **Gaps.** A listener away (or slow) for longer than the stream keeps
//! would miss the entries trimmed after its position. Each read is one Lua
//! script that first checks that the last entry the listener read is
//! still in the stream (trimming removes the oldest entries first, so
//! while it is there, nothing after it was trimmed), then reads what
//! follows it; the check and the read are atomic. If the entry is gone
//! (trimmed, or Redis lost its data) the listener reports a gap
//! (`nax_backplane_gaps_total`; the bus then has the hub close every
//! connection with a private subscription, 4008) and carries on from the
//! oldest entry left. The check errs on the side of a gap only when the
//! listener's own entry was the last one trimmed, i.e. when it was as far
//! behind as the stream is long.

use super::link::{RedisLink, RedisUnavailable};
use crate::private::Freshness;
use inbound::JsonBounds;
use redis::streams::StreamReadOptions;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a dedupe key is kept: far longer than nodes' sync lag.
pub const DEDUPE_TTL: Duration = Duration::from_secs(120);
/// Entries the stream keeps by default (approximately; `MAXLEN ~`):
/// `[api] backplane_stream_len`.
pub const STREAM_LEN: u64 = 100_000;
/// Longest a publish waits for Redis before delivering locally.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest one `XREAD` blocks.
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// Entries read at once.
const READ_COUNT: usize = 512;
/// How far before the listener's start it begins reading (covers clock
/// skew between the node and Redis).
const START_BACK: Duration = Duration::from_secs(5);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

const PUBLISH_LUA: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'u', ARGV[3])
end
return false
";

/// KEYS[1] the stream; ARGV[1] the listener's position, ARGV[2] `1` when
/// that position is an entry it read, ARGV[3] how many to read. Returns
/// {1 if that entry is gone else 0, the entries after the position}.
const READ_LUA: &str = r"
local gap = 0
if ARGV[2] == '1' and #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  gap = 1
end
return {gap, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[3])}
";

/// Where a listener reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    /// A stream id; entries after it are read next.
    id: String,
    /// Whether `id` is an entry the listener read (checked for a gap), or
    /// a starting point (nothing read since the start or the last gap).
    read: bool,
}

/// Bounds of one stream entry's update, checked before it is parsed (see
/// docs/SECURITY.md, "Input bounds"). An update is an order view or a
/// balance (a few hundred bytes, depth 3); anything far over it is not
/// one a node published.
pub const ENTRY_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 16,
    max_elements: 4096,
};

/// One entry of a read: its id and its fields (`u` holds the update).
type Entry = (String, Vec<String>);

/// One update as it travels through the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireUpdate {
    pub user: String,
    pub channel: WireChannel,
    /// Which state it carries (stale ones are dropped at delivery).
    #[serde(default)]
    pub freshness: Option<Freshness>,
    pub payload: serde_json::Value,
}

/// The private channel of an update: the API's and the hub's one type
/// ([`PrivateChannel`](crate::private::PrivateChannel), written `"orders"` / `"balances"` in an entry),
/// under the name the stream's users know it by.
pub use crate::private::PrivateChannel as WireChannel;

impl WireUpdate {
    /// Reads an update from a stream entry, within [`ENTRY_BOUNDS`].
    pub fn decode(body: &str) -> Result<WireUpdate, String> {
        ENTRY_BOUNDS
            .check(body.as_bytes())
            .map_err(|e| e.to_string())?;
        serde_json::from_str(body).map_err(|e| e.to_string())
    }
}

/// The Redis side of the private channels (see the module doc).
pub struct Backplane {
    link: Arc<RedisLink>,
    stream: String,
    /// `MAXLEN ~` of every append.
    stream_len: u64,
    script: redis::Script,
    read_script: redis::Script,
    listening: AtomicBool,
    /// When the last fallback warning was logged (ms since the Unix epoch).
    last_warn_ms: AtomicU64,
}

impl Backplane {
    /// The backplane on `link`, its stream kept at about `stream_len`
    /// entries (at least 1).
    pub fn new(link: Arc<RedisLink>, stream_len: u64) -> Self {
        Backplane {
            stream: link.key("nax:private"),
            link,
            stream_len: stream_len.max(1),
            script: redis::Script::new(PUBLISH_LUA),
            read_script: redis::Script::new(READ_LUA),
            listening: AtomicBool::new(false),
            last_warn_ms: AtomicU64::new(0),
        }
    }

    /// Appends `update` to the stream unless an update with `dedupe` was
    /// appended before; true when this call appended it.
    pub async fn publish(
        &self,
        dedupe: &str,
        update: &WireUpdate,
    ) -> Result<bool, RedisUnavailable> {
        let body = serde_json::to_string(update).expect("serializable");
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.link.key(&format!("nax:pv:{dedupe}")))
            .key(&self.stream)
            .arg(DEDUPE_TTL.as_millis() as u64)
            .arg(self.stream_len)
            .arg(body);
        let id: Option<String> = self
            .link
            .call(PUBLISH_TIMEOUT, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(id.is_some())
    }

    /// Counts a publish delivered on this node only because Redis failed
    /// (`nax_backplane_fallbacks_total`); warns at most every 10 s.
    pub fn note_fallback(&self, error: &RedisUnavailable) {
        metrics::counter!("nax_backplane_fallbacks_total").increment(1);
        let now = feeds::event::now_micros() / 1000;
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "backplane unavailable: private updates reach this node's sockets only");
        }
    }

    /// True while the listener is connected and reading.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Reads the stream until the task is aborted, handing each update to
    /// `deliver`, and calling `lost` each time it finds that entries after
    /// its position were trimmed before it read them (see the module doc);
    /// reconnects with backoff and carries on from the last entry read.
    /// Starts [`START_BACK`] before the call (entry ids are Redis' clock in
    /// ms), so nothing published while the first connection is being made
    /// is missed; the few older entries find no subscriber yet, or are
    /// dropped as not newer at delivery.
    pub async fn listen(
        self: Arc<Self>,
        deliver: impl Fn(WireUpdate) + Send + 'static,
        lost: impl Fn() + Send + 'static,
    ) {
        let start_ms =
            (feeds::event::now_micros() / 1000).saturating_sub(START_BACK.as_millis() as u64);
        let mut position = Position {
            id: format!("{start_ms}-0"),
            read: false,
        };
        let mut retry = RETRY_MIN;
        loop {
            match self
                .read_until_error(&mut position, &deliver, &lost, &mut retry)
                .await
            {
                Ok(()) => {}
                Err(e) => {
                    metrics::gauge!("nax_backplane_connected").set(0.0);
                    tracing::warn!(error = %e, retry_ms = retry.as_millis() as u64,
                        "backplane: reading the private stream failed; reconnecting");
                }
            }
            self.listening.store(false, Ordering::Relaxed);
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// One connection's life: read, deliver, until an error.
    async fn read_until_error(
        &self,
        position: &mut Position,
        deliver: &impl Fn(WireUpdate),
        lost: &impl Fn(),
        retry: &mut Duration,
    ) -> Result<(), RedisUnavailable> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(READ_BLOCK + Duration::from_secs(2));
        let mut conn = self
            .link
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.listening.store(true, Ordering::Relaxed);
        metrics::gauge!("nax_backplane_connected").set(1.0);
        tracing::info!("backplane: reading the private stream");
        *retry = RETRY_MIN;
        let options = StreamReadOptions::default()
            .block(READ_BLOCK.as_millis() as usize)
            .count(1);
        loop {
            let (gap, entries): (i64, Vec<Entry>) = self
                .read_script
                .key(&self.stream)
                .arg(&position.id)
                .arg(if position.read { "1" } else { "0" })
                .arg(READ_COUNT)
                .invoke_async(&mut conn)
                .await?;
            if gap != 0 {
                metrics::counter!("nax_backplane_gaps_total").increment(1);
                tracing::warn!(last_read = %position.id,
                    "backplane: private updates after this node's last entry were trimmed before it read them; closing its private channels");
                // Until an entry is read, the position is not one to check.
                position.read = false;
                lost();
            }
            if entries.is_empty() {
                // Wait for an entry after the position (read by the script
                // on the next turn, with its check).
                let _: Option<redis::Value> = redis::cmd("XREAD")
                    .arg(&options)
                    .arg("STREAMS")
                    .arg(&self.stream)
                    .arg(&position.id)
                    .query_async(&mut conn)
                    .await?;
                continue;
            }
            for (id, fields) in entries {
                let body = fields
                    .chunks_exact(2)
                    .find(|pair| pair[0] == "u")
                    .map(|pair| pair[1].as_str());
                match body.map(WireUpdate::decode) {
                    Some(Ok(update)) => deliver(update),
                    Some(Err(why)) => {
                        tracing::warn!(id, %why, "backplane: unreadable entry skipped")
                    }
                    None => tracing::warn!(id, "backplane: entry without an update skipped"),
                }
                *position = Position { id, read: true };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_over_the_bounds_are_refused_before_parsing() {
        let update = WireUpdate {
            user: "u1".into(),
            channel: WireChannel::Balances,
            freshness: None,
            payload: serde_json::json!({"asset": "BTC", "available": "1.5"}),
        };
        let body = serde_json::to_string(&update).unwrap();
        assert_eq!(WireUpdate::decode(&body).unwrap(), update);
        let deep = format!(
            r#"{{"user":"u1","channel":"orders","payload":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(
            WireUpdate::decode(&deep).unwrap_err(),
            "input nests deeper than 16 levels"
        );
        let many = format!(
            r#"{{"user":"u1","channel":"orders","payload":[{}0]}}"#,
            "0,".repeat(5000)
        );
        assert_eq!(
            WireUpdate::decode(&many).unwrap_err(),
            "input holds more than 4096 elements"
        );
    }
}
