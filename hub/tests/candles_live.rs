//! Candle channels live, over real sockets (docs/PROTOCOL.md "Candles"):
//!
//! - `four_pairs_of_candles_chain_and_a_late_joiner_agrees`: a client holds
//!   every candle channel of the sandbox's four pairs for 60 s; every
//!   message chains (`prev_seq` = the last `seq`, `seq` increasing) and
//!   its candles stay contiguous (no holes); then a late joiner's snapshot
//!   of each channel equals the early client's state at that `seq`.
//! - `a_candle_channel_resumes_from_history`: `resume` on a candle channel
//!   recovers the missed messages, the same ones a witness got, chained.
//! - `bad_market_data_queries_get_the_api_error_body`: the REST market-data
//!   routes refuse bad input with docs/API.md's error body.
//!
//! Candles against an independent computation: `candles.rs`.

use crate::common;

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MINUTE: u64 = 60_000_000;
const INTERVALS: [(&str, u64); 6] = [
    ("1m", MINUTE),
    ("5m", 5 * MINUTE),
    ("15m", 15 * MINUTE),
    ("1h", 60 * MINUTE),
    ("4h", 240 * MINUTE),
    ("1d", 1440 * MINUTE),
];

async fn get_json(addr: std::net::SocketAddr, path: &str) -> Value {
    let (status, text) = common::http_get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).expect("JSON body")
}

// ---- four pairs for 60 s -----------------------------------------------------

/// One channel as a client holds it: the candles (oldest first), the last
/// seq, and per message the state it left (`seq` → candles' length and
/// the last candle; earlier candles never change after a message).
#[derive(Default)]
struct Held {
    candles: Vec<Value>,
    seq: u64,
    states: VecDeque<(u64, usize, Value)>,
    closes: usize,
}

fn interval_len(channel: &str) -> u64 {
    let name = channel
        .split('.')
        .next()
        .unwrap()
        .trim_start_matches("candles");
    INTERVALS.iter().find(|(i, _)| *i == name).unwrap().1
}

impl Held {
    /// Applies a message of `channel`, checking the chain and that the
    /// candles stay contiguous.
    fn apply(&mut self, channel: &str, m: &Value) {
        let seq = m["seq"].as_u64().expect("seq");
        let len = interval_len(channel);
        match m["type"].as_str() {
            Some("candles") => {
                self.candles = m["candles"].as_array().expect("candles").clone();
            }
            Some("candle") => {
                assert_eq!(
                    m["prev_seq"].as_u64(),
                    Some(self.seq),
                    "{channel}: chained {m}"
                );
                assert!(seq > self.seq, "{channel}: seq increases {m}");
                let c = m["candle"].clone();
                let start = c["start"].as_u64().unwrap();
                if self.candles.is_empty() {
                    // No trade before the state message: the first candle.
                    assert_eq!(c["closed"], false, "{channel}: {m}");
                    self.candles.push(c.clone());
                }
                let open = self.candles.last().expect("a candle");
                let open_start = open["start"].as_u64().unwrap();
                assert_eq!(
                    start, open_start,
                    "{channel}: a message about the open candle {m}"
                );
                let closed = c["closed"] == true;
                *self.candles.last_mut().unwrap() = c.clone();
                if closed {
                    self.closes += 1;
                    // The next candle opens flat at the close.
                    let close = c["close"].clone();
                    let zero_v = body_zero(&c["volume"]);
                    let zero_q = body_zero(&c["quote_volume"]);
                    self.candles.push(json!({
                        "start": start + len, "open": close, "high": close, "low": close,
                        "close": close, "volume": zero_v, "quote_volume": zero_q,
                        "trades": 0, "closed": false,
                    }));
                }
            }
            other => panic!("{channel}: unexpected {other:?}"),
        }
        for w in self.candles.windows(2) {
            assert_eq!(
                w[1]["start"].as_u64().unwrap(),
                w[0]["start"].as_u64().unwrap() + len,
                "{channel}: no holes"
            );
        }
        self.seq = seq;
        let last = self.candles.last().cloned().unwrap_or(Value::Null);
        self.states.push_back((seq, self.candles.len(), last));
        if self.states.len() > 64 {
            self.states.pop_front();
        }
    }

    /// The last `n` candles of the state this client had at `seq`.
    fn at(&self, seq: u64, n: usize) -> Option<Vec<Value>> {
        let (_, len, last) = self.states.iter().find(|(s, _, _)| *s == seq)?;
        let mut out: Vec<Value> = self.candles[..len - 1].to_vec();
        out.push(last.clone());
        let skip = out.len().saturating_sub(n);
        Some(out[skip..].to_vec())
    }
}

/// A zero decimal with as many decimals as `v`.
fn body_zero(v: &Value) -> Value {
    let s = v.as_str().expect("a decimal string");
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    Value::String(if decimals == 0 {
        "0".to_owned()
    } else {
        format!("0.{}", "0".repeat(decimals))
    })
}

async fn read_into(
    ws: &mut common::Ws,
    held: &mut HashMap<String, Held>,
    until: impl Fn(&HashMap<String, Held>) -> bool,
    deadline: tokio::time::Instant,
) {
    while !until(held) {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("messages before the deadline")
            .expect("stream open")
            .expect("no websocket error");
        let Message::Text(t) = frame else { continue };
        let m: Value = serde_json::from_str(&t).expect("JSON");
        let Some(channel) = m["channel"].as_str() else {
            assert_eq!(m["type"], "subscribed", "{m}");
            continue;
        };
        held.entry(channel.to_owned())
            .or_default()
            .apply(channel, &m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_pairs_of_candles_chain_and_a_late_joiner_agrees() {
    let hub = common::start_hub(|c| c.venue.events_per_sec = 200).await;
    let pairs: Vec<String> = hub
        .context
        .markets
        .specs()
        .iter()
        .map(|s| s.symbol.clone())
        .collect();
    assert_eq!(pairs.len(), 4, "the sandbox's four pairs");
    let channels: Vec<String> = pairs
        .iter()
        .flat_map(|p| {
            INTERVALS
                .iter()
                .map(move |(i, _)| format!("candles{i}.{p}"))
        })
        .collect();
    let mut early = common::connect(&hub).await;
    common::send(
        &mut early,
        json!({"op":"subscribe","id":1,"channels":channels}),
    )
    .await;
    let mut held: HashMap<String, Held> = HashMap::new();
    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs(60);
    // 60 s of messages, every one checked as it is applied.
    let _ = tokio::time::timeout_at(
        end,
        read_into(
            &mut early,
            &mut held,
            |_| false,
            end + Duration::from_secs(5),
        ),
    )
    .await;
    assert_eq!(held.len(), channels.len(), "every channel spoke");
    let updates: usize = held.values().map(|h| h.states.len()).sum();
    assert!(
        updates > channels.len(),
        "updates arrived, not only snapshots"
    );
    assert!(
        held.iter()
            .any(|(c, h)| c.starts_with("candles1m.") && h.closes > 0),
        "a 1 m candle closed within 60 s"
    );
    // The late joiner.
    let mut late = common::connect(&hub).await;
    common::send(
        &mut late,
        json!({"op":"subscribe","id":2,"channels":channels}),
    )
    .await;
    let mut snapshots: HashMap<String, Value> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while snapshots.len() < channels.len() {
        let m = common::recv_within(&mut late, 10).await;
        if m["type"] == "candles" {
            snapshots.insert(m["channel"].as_str().unwrap().to_owned(), m);
        }
        assert!(tokio::time::Instant::now() < deadline, "every snapshot");
    }
    // The early client reaches each snapshot's seq, then they must agree.
    let wanted: HashMap<String, u64> = snapshots
        .iter()
        .map(|(c, m)| (c.clone(), m["seq"].as_u64().unwrap()))
        .collect();
    read_into(
        &mut early,
        &mut held,
        |h| {
            wanted
                .iter()
                .all(|(c, s)| h.get(c).is_some_and(|x| x.seq >= *s))
        },
        tokio::time::Instant::now() + Duration::from_secs(10),
    )
    .await;
    for (channel, snap) in &snapshots {
        let seq = snap["seq"].as_u64().unwrap();
        let candles = snap["candles"].as_array().unwrap();
        let early_state = held[channel]
            .at(seq, candles.len())
            .unwrap_or_else(|| panic!("{channel}: the early client had seq {seq}"));
        assert_eq!(
            &early_state, candles,
            "{channel}: late snapshot = early state at {seq}"
        );
    }
    drop(late);
    let _ = early.close(None).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_market_data_queries_get_the_api_error_body() {
    let hub = common::start_hub(|_| {}).await;
    for (path, status, code) in [
        ("/markets/BTC-USD/candles", 422, "missing_field"),
        (
            "/markets/BTC-USD/candles?interval=2m",
            422,
            "invalid_interval",
        ),
        (
            "/markets/BTC-USD/candles?interval=1m&limit=0",
            422,
            "invalid_limit",
        ),
        (
            "/markets/BTC-USD/candles?interval=1m&limit=1001",
            422,
            "invalid_limit",
        ),
        (
            "/markets/BTC-USD/candles?interval=1m&start=5&end=5",
            422,
            "invalid_range",
        ),
        (
            "/markets/BTC-USD/candles?interval=1m&end=-1",
            422,
            "invalid_range",
        ),
        ("/markets/FOO-BAR/candles?interval=1m", 404, "unknown_pair"),
        ("/markets/BTC-USD/trades?limit=1001", 422, "invalid_limit"),
        ("/markets/BTC-USD/trades?before=abc", 422, "invalid_cursor"),
        ("/markets/FOO-BAR/trades", 404, "unknown_pair"),
        ("/markets/FOO-BAR/ticker", 404, "unknown_pair"),
    ] {
        let (got, text) = common::http_get(hub.addr, path).await;
        let body: Value = serde_json::from_str(&text).expect("JSON error body");
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {text}"
        );
    }
    // Good queries on a live sandbox pair answer.
    let ok = get_json(hub.addr, "/markets/BTC-USD/candles?interval=1m&limit=1").await;
    assert!(
        ok["candles"].as_array().is_some_and(|c| c.len() <= 1),
        "{ok}"
    );
    let tickers = get_json(hub.addr, "/markets/tickers").await;
    assert_eq!(tickers.as_array().map(Vec::len), Some(4), "{tickers}");
    hub.stop().await;
}

/// Reads `channel`'s messages until `n` `candle` messages arrived.
async fn candle_messages(ws: &mut common::Ws, channel: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = common::recv_within(ws, 10).await;
        if m["channel"] == channel && m["type"] == "candle" {
            out.push(m);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candle_channel_resumes_from_history() {
    let hub = common::start_hub(|c| c.venue.events_per_sec = 1_000).await;
    let channel = "candles1m.BTC-USD";
    // A witness holds the channel throughout: it sees every message.
    let mut witness = common::connect(&hub).await;
    common::send(
        &mut witness,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    let mut client = common::connect(&hub).await;
    common::send(
        &mut client,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    let seen = candle_messages(&mut client, channel, 2).await;
    let last = seen.last().unwrap();
    let (epoch, seq) = (last["epoch"].clone(), last["seq"].as_u64().unwrap());
    drop(client);
    // The witness reads past the client's last message and two more.
    let mut witnessed = Vec::new();
    while witnessed
        .iter()
        .filter(|m: &&Value| m["seq"].as_u64() > Some(seq))
        .count()
        < 2
    {
        witnessed.extend(candle_messages(&mut witness, channel, 1).await);
    }
    let mut client = common::connect(&hub).await;
    common::send(
        &mut client,
        json!({"op":"subscribe","id":2,"channels":[channel],
               "resume": {channel: {"epoch": epoch, "seq": seq}}}),
    )
    .await;
    let reply = common::recv(&mut client).await;
    assert_eq!(reply["recovered"], json!([channel]), "{reply}");
    // The missed messages, byte for byte what the witness got, chained.
    let missed: Vec<&Value> = witnessed
        .iter()
        .filter(|m| m["seq"].as_u64() > Some(seq))
        .collect();
    let resumed = candle_messages(&mut client, channel, missed.len()).await;
    let mut prev = seq;
    for (r, w) in resumed.iter().zip(&missed) {
        assert_eq!(
            r["prev_seq"].as_u64(),
            Some(prev),
            "chained from the resume point: {r}"
        );
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("prev_seq");
            v
        };
        assert_eq!(strip(r), strip(w), "the message the witness got");
        prev = r["seq"].as_u64().unwrap();
    }
    hub.stop().await;
}
