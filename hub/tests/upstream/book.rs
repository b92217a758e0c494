//! A WebSocket client of the hub that keeps `book.PAIR` exactly as
//! docs/PROTOCOL.md "Books and the checksum" says (snapshot, then `update`s at seq + 1,
//! every `prev_seq` chained, every checksum rebuilt and compared), remembers
//! its book at every seq of the current epoch so it can be compared with the
//! venue's and the hub's book "at the same seq", and keeps what else it
//! receives (trades, other frames) for the tests to inspect.

use crate::common::{self, Ws};
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// One side of a book as the wire writes it: (price, qty), best first.
pub type WireLevels = Vec<(String, String)>;

/// The book (bids, asks) and its checksum after one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookState {
    pub bids: WireLevels,
    pub asks: WireLevels,
    pub checksum: u32,
}

/// States kept per epoch (the oldest are forgotten beyond it).
const MAX_STATES: usize = 20_000;

/// A client's `book.PAIR` channel, checked message by message.
pub struct BookChannel {
    spec: MarketSpec,
    pub channel: String,
    book: L2Book,
    pub epoch: Option<String>,
    pub last_seq: u64,
    /// The book after each message of the current epoch, by seq.
    pub states: BTreeMap<u64, BookState>,
    /// Every snapshot's header: type, reason, epoch, seq, prev_seq.
    pub snapshots: Vec<Value>,
    pub updates: u64,
    pub failures: Vec<String>,
    /// When set, every message of the channel is kept in `messages`.
    pub keep_messages: bool,
    pub messages: Vec<Value>,
}

impl BookChannel {
    pub fn new(spec: MarketSpec) -> Self {
        BookChannel {
            channel: format!("book.{}", spec.symbol),
            spec,
            book: L2Book::new(),
            epoch: None,
            last_seq: 0,
            states: BTreeMap::new(),
            snapshots: Vec::new(),
            updates: 0,
            failures: Vec::new(),
            keep_messages: false,
            messages: Vec::new(),
        }
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 20 {
            self.failures.push(what);
        }
    }

    /// The book as the wire writes it (every level).
    pub fn wire(&self) -> BookState {
        let side = |s| {
            self.book
                .top_n(s, usize::MAX)
                .map(|l| (self.spec.format_price(l.price), self.spec.format_qty(l.qty)))
                .collect()
        };
        BookState {
            bids: side(Side::Buy),
            asks: side(Side::Sell),
            checksum: self.book.checksum(),
        }
    }

    fn levels(&self, v: &Value) -> Result<Vec<(Price, Qty)>, String> {
        let list = v.as_array().ok_or("levels are not an array")?;
        list.iter()
            .map(|l| {
                let (Some(p), Some(q)) = (l[0].as_str(), l[1].as_str()) else {
                    return Err(format!("bad level {l}"));
                };
                let price = self.spec.parse_price(p).map_err(|e| e.to_string())?;
                let qty = self.spec.parse_qty(q).map_err(|e| e.to_string())?;
                if self.spec.format_price(price) != p || self.spec.format_qty(qty) != q {
                    return Err(format!("level {l} not written at the pair's scale"));
                }
                Ok((price, qty))
            })
            .collect()
    }

    /// Applies one message of the channel and checks it. A new epoch is
    /// accepted only through a `resync` snapshot with `prev_seq` 0.
    pub fn on_message(&mut self, v: &Value) {
        if self.keep_messages {
            self.messages.push(v.clone());
        }
        let ty = v["type"].as_str().unwrap_or_default().to_owned();
        let (Some(seq), Some(prev)) = (v["seq"].as_u64(), v["prev_seq"].as_u64()) else {
            return self.fail(format!("no seq/prev_seq: {v}"));
        };
        let epoch = v["epoch"].as_str().unwrap_or_default().to_owned();
        let new_epoch = self.epoch.as_ref().is_some_and(|e| *e != epoch);
        if new_epoch {
            if ty != "snapshot" || v["reason"] != "resync" || prev != 0 {
                self.fail(format!(
                    "epoch {:?} -> {epoch} by {ty} reason {} prev_seq {prev}",
                    self.epoch, v["reason"]
                ));
            }
            self.states.clear();
        } else if prev != self.last_seq {
            self.fail(format!(
                "{ty} seq {seq}: prev_seq {prev} != last seq {}",
                self.last_seq
            ));
        }
        self.epoch = Some(epoch.clone());
        let (bids, asks) = match (self.levels(&v["bids"]), self.levels(&v["asks"])) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => {
                self.last_seq = seq;
                return self.fail(format!("{ty} seq {seq}: {e}"));
            }
        };
        match ty.as_str() {
            "snapshot" => {
                let expected = if self.snapshots.is_empty() {
                    "subscribe"
                } else {
                    "resync"
                };
                if v["reason"] != expected {
                    self.fail(format!("snapshot seq {seq}: reason {}", v["reason"]));
                }
                self.snapshots.push(json!({
                    "type": ty, "reason": v["reason"], "epoch": epoch,
                    "seq": seq, "prev_seq": prev,
                }));
                if let Err(e) = self.book.apply_snapshot(&bids, &asks) {
                    self.fail(format!("snapshot seq {seq} refused: {e}"));
                }
            }
            "update" => {
                self.updates += 1;
                if self.snapshots.is_empty() {
                    self.fail(format!("update seq {seq} before any snapshot"));
                }
                if seq != self.last_seq + 1 {
                    self.fail(format!("update seq {seq} after {}", self.last_seq));
                }
                for (side, levels) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
                    for &(price, qty) in levels {
                        self.book.apply_delta(BookDelta { side, price, qty });
                    }
                }
            }
            other => return self.fail(format!("unexpected {other} on {}: {v}", self.channel)),
        }
        self.last_seq = seq;
        let state = self.wire();
        if v["checksum"].as_u64() != Some(u64::from(state.checksum)) {
            self.fail(format!(
                "{ty} seq {seq}: checksum {} != rebuilt {}",
                v["checksum"], state.checksum
            ));
        }
        self.states.insert(seq, state);
        while self.states.len() > MAX_STATES {
            self.states.pop_first();
        }
    }
}

/// A hub WebSocket connection subscribed to a pair's `book` and `trades`.
pub struct MarketClient {
    pub ws: Ws,
    pub book: BookChannel,
    /// Every `trades` message, in order.
    pub trades: Vec<Value>,
    /// Every other frame (after `subscribed`).
    pub other: Vec<Value>,
}

impl MarketClient {
    /// Connects, subscribes `book.PAIR` and `trades.PAIR`, and reads until
    /// the book's first snapshot is in.
    pub async fn subscribe(addr: std::net::SocketAddr, spec: MarketSpec) -> MarketClient {
        let url = format!("ws://{addr}/ws");
        let mut ws = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects")
            .0;
        let pair = spec.symbol.clone();
        let channels = [format!("book.{pair}"), format!("trades.{pair}")];
        common::send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": channels}),
        )
        .await;
        let reply = common::recv_within(&mut ws, 10).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        let mut client = MarketClient {
            ws,
            book: BookChannel::new(spec),
            trades: Vec::new(),
            other: Vec::new(),
        };
        client
            .until(10, "the first book snapshot", |c, _| {
                !c.book.snapshots.is_empty()
            })
            .await;
        client
    }

    /// Reads one frame (within `secs`) and files it.
    pub async fn next(&mut self, secs: u64) -> Value {
        let v = common::recv_within(&mut self.ws, secs).await;
        self.file(v.clone());
        v
    }

    fn file(&mut self, v: Value) {
        if v["channel"] == self.book.channel.as_str() {
            self.book.on_message(&v);
        } else if v["type"] == "trades" {
            self.trades.push(v);
        } else {
            self.other.push(v);
        }
    }

    /// Reads until `done(self, last frame)` holds; panics after `secs`.
    pub async fn until(
        &mut self,
        secs: u64,
        what: &str,
        mut done: impl FnMut(&Self, &Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, self.next(secs)).await;
            let Ok(v) = next else {
                panic!(
                    "no {what} within {secs} s; book at {:?}/{}, snapshots {:?}",
                    self.book.epoch, self.book.last_seq, self.book.snapshots
                );
            };
            if done(self, &v) {
                return v;
            }
        }
    }

    /// Reads until the book has reached `seq` of `epoch`; its state then.
    pub async fn state_at(&mut self, epoch: &str, seq: u64) -> BookState {
        let reached = |c: &Self| c.book.epoch.as_deref() == Some(epoch) && c.book.last_seq >= seq;
        if !reached(self) {
            let what = format!("book seq {seq} of epoch {epoch}");
            self.until(10, &what, |c, _| reached(c)).await;
        }
        match self.book.states.get(&seq) {
            Some(state) => state.clone(),
            None => panic!(
                "the client never held seq {seq} (first kept {:?}, failures {:?})",
                self.book.states.keys().next(),
                self.book.failures
            ),
        }
    }

    /// Reads whatever arrives for `d`.
    pub async fn drain_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout_at(end, futures_util::StreamExt::next(&mut self.ws)).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                self.file(serde_json::from_str(&t).expect("hub sends JSON"));
            }
        }
    }
}
