//! Candles, the 24 h ticker and the public trade history over real
//! sockets (docs/PROTOCOL.md "Candles", docs/API.md "Market data").
//!
//! - `replayed_candles_equal_an_independent_computation_across_a_restart`:
//!   a recording of two days of trades is played through a hub (part 1),
//!   the hub is stopped, and a second hub on the same data directory
//!   plays part 2 (a new epoch) whose stream starts with part 1's last
//!   trades again (already in the archive: not counted twice); each part
//!   has one late trade. After each part, every interval's
//!   `candles` snapshot and every page of `GET /markets/{pair}/candles`
//!   must equal candles computed here, naively, from the recorded trades
//!   (with the documented no-holes rule); REST and WebSocket must agree;
//!   `GET /markets/{pair}/ticker` must equal the 24 h figures computed
//!   here; and `GET /markets/{pair}/trades` must page back through every
//!   trade with the ids, seqs and epochs `trades.PAIR` carried.
//! - `candles_do_not_wait_for_the_book`: a trade before any book snapshot
//!   still reaches a `candles1m` subscriber as a `candle` update.
//! - `a_gap_longer_than_a_snapshot_sends_the_state_again`: a trade 400
//!   minutes after the last one sends `candles1m` subscribers a `candles`
//!   state (`reason: "resync"`) instead of 400 closed messages.
//! - `venue_time_closes_a_quiet_candle_after_the_grace`: without a later
//!   trade, a candle closes once the venue-time estimate passes its end
//!   plus 1 s, numbered (index + 1) + trade seq, and the next one opens flat.
//!
//! The live side (four pairs for 60 s, a late joiner, resume, bad queries):
//! `candles_live.rs`.

use crate::common;

use feeds::replay::{Recorder, ReplayFeed, ReplaySpeed};
use feeds::{MarketEvent, PublicTrade, SnapshotReason};
use orderbook::{MarketSpec, Price, Qty, Side};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const PAIR: &str = "BTC-USD";
const MINUTE: u64 = 60_000_000;
const INTERVALS: [(&str, u64); 6] = [
    ("1m", MINUTE),
    ("5m", 5 * MINUTE),
    ("15m", 15 * MINUTE),
    ("1h", 60 * MINUTE),
    ("4h", 240 * MINUTE),
    ("1d", 1440 * MINUTE),
];
/// 2025-11-23T00:00:00Z.
const T0: u64 = 1_763_856_000_000_000;
/// A century after [`T0`]: a bad `venue_ts`, ahead of venue time and of
/// the hub's clock; sent on `trades.PAIR` only, kept out of the candles,
/// the 24 h figures and the trade history.
const FAR_FUTURE: u64 = T0 + 100 * 365 * 1440 * MINUTE;

// ---- the recording ----------------------------------------------------------

#[derive(Debug, Clone)]
struct Recorded {
    epoch: &'static str,
    seq: u64,
    trade: PublicTrade,
}

/// A small deterministic generator (the test's own).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Batches of 1 to 3 trades from `from` until `until` (venue time), gaps
/// of seconds to minutes, sometimes 20 minutes, once three hours; once,
/// after the 50th batch, a late trade (90 s older than the batch before
/// it: its own 1 m candle is closed); once, after the 60th, a trade at
/// [`FAR_FUTURE`]; the last batch exactly at `last` (an hour start, far
/// from any candle's end).
fn batches(
    rng: &mut Lcg,
    epoch: &'static str,
    ids: &mut u64,
    from: u64,
    until: u64,
    last: u64,
) -> Vec<Vec<Recorded>> {
    let mut out = Vec::new();
    let mut ts = from;
    let mut price: u64 = 6_400_000;
    let mut long_gap_done = false;
    let mut seq = 0;
    loop {
        let at = if ts >= until { last } else { ts };
        seq += 1;
        let n = 1 + rng.next(3);
        let batch = (0..n)
            .map(|_| {
                *ids += 1;
                price = (price + rng.next(2001)).saturating_sub(1000).max(100_000);
                Recorded {
                    epoch,
                    seq,
                    trade: PublicTrade {
                        trade_id: *ids,
                        price: Price(price),
                        qty: Qty(1 + rng.next(2_000_000)),
                        side: if rng.next(2) == 0 {
                            Side::Buy
                        } else {
                            Side::Sell
                        },
                        // A recording stores a batch at its event's time.
                        venue_ts: at,
                    },
                }
            })
            .collect();
        out.push(batch);
        if at == last {
            return out;
        }
        if out.len() == 60 {
            *ids += 1;
            seq += 1;
            out.push(vec![Recorded {
                epoch,
                seq,
                trade: PublicTrade {
                    trade_id: *ids,
                    price: Price(price),
                    qty: Qty(5),
                    side: Side::Sell,
                    venue_ts: FAR_FUTURE,
                },
            }]);
        }
        if out.len() == 50 {
            *ids += 1;
            seq += 1;
            out.push(vec![Recorded {
                epoch,
                seq,
                trade: PublicTrade {
                    trade_id: *ids,
                    price: Price(price),
                    qty: Qty(7),
                    side: Side::Buy,
                    venue_ts: at - 90_000_000,
                },
            }]);
        }
        ts += match rng.next(40) {
            0 if !long_gap_done => {
                long_gap_done = true;
                3 * 60 * MINUTE
            }
            1 | 2 => 20 * MINUTE + rng.next(MINUTE),
            _ => 1_000_000 + rng.next(4 * MINUTE),
        };
    }
}

fn spec() -> MarketSpec {
    feeds::sandbox_pairs::default_pairs()
        .into_iter()
        .find(|p| p.spec.symbol == PAIR)
        .map(|p| p.spec)
        .expect("BTC-USD is a sandbox pair")
}

fn record(path: &Path, epoch: &str, batches: &[Vec<Recorded>]) {
    let spec = spec();
    let pair: Arc<str> = Arc::from(PAIR);
    let mut rec = Recorder::create(path, epoch, std::slice::from_ref(&spec)).unwrap();
    let first = batches[0][0].trade.venue_ts;
    rec.write(&MarketEvent::Snapshot {
        pair: pair.clone(),
        reason: SnapshotReason::Subscribe,
        seq: 1,
        trade_seq: 0,
        venue_ts: first,
        bids: vec![(Price(6_399_000), Qty(1_000_000))],
        asks: vec![(Price(6_401_000), Qty(1_000_000))],
    })
    .unwrap();
    for b in batches {
        rec.write(&MarketEvent::Trades {
            pair: pair.clone(),
            seq: b[0].seq,
            venue_ts: b[0].trade.venue_ts,
            trades: b.iter().map(|r| r.trade).collect(),
        })
        .unwrap();
    }
    rec.finish().unwrap();
}

// ---- the naive computation ---------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Naive {
    start: u64,
    open: u64,
    high: u64,
    low: u64,
    close: u64,
    volume: u128,
    quote_volume: u128,
    trades: u64,
}

/// Every candle of `len` from the first trade's to the last trade's, gaps
/// filled flat at the previous close; a trade older than the last candle
/// (late) goes into the last one.
fn naive(trades: &[PublicTrade], len: u64) -> Vec<Naive> {
    let mut out: Vec<Naive> = Vec::new();
    for t in trades {
        let start = (t.venue_ts / len * len).max(out.last().map_or(0, |c| c.start));
        while let Some(last) = out.last() {
            if last.start >= start {
                break;
            }
            let next = last.start + len;
            if next == start {
                break;
            }
            let c = last.close;
            out.push(Naive {
                start: next,
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 0,
                quote_volume: 0,
                trades: 0,
            });
        }
        match out.last_mut() {
            Some(c) if c.start == start => {
                c.high = c.high.max(t.price.0);
                c.low = c.low.min(t.price.0);
                c.close = t.price.0;
                c.volume += u128::from(t.qty.0);
                c.quote_volume += u128::from(t.price.0) * u128::from(t.qty.0);
                c.trades += 1;
            }
            _ => out.push(Naive {
                start,
                open: t.price.0,
                high: t.price.0,
                low: t.price.0,
                close: t.price.0,
                volume: u128::from(t.qty.0),
                quote_volume: u128::from(t.price.0) * u128::from(t.qty.0),
                trades: 1,
            }),
        }
    }
    out
}

/// `v` with `scale` decimals, written here rather than by the hub's code.
fn dec(v: u128, scale: u32) -> String {
    let p = 10u128.pow(scale);
    if scale == 0 {
        return v.to_string();
    }
    format!("{}.{:0w$}", v / p, v % p, w = scale as usize)
}

fn naive_json(c: &Naive, spec: &MarketSpec) -> Value {
    let (ps, qs) = (u32::from(spec.price_scale), u32::from(spec.qty_scale));
    json!({
        "start": c.start,
        "open": dec(c.open.into(), ps), "high": dec(c.high.into(), ps),
        "low": dec(c.low.into(), ps), "close": dec(c.close.into(), ps),
        "volume": dec(c.volume, qs), "quote_volume": dec(c.quote_volume, ps + qs),
        "trades": c.trades,
    })
}

/// A hub candle without `closed`.
fn body(c: &Value) -> Value {
    let mut c = c.clone();
    c.as_object_mut().expect("a candle object").remove("closed");
    c
}

/// Checks hub candles (oldest first, contiguous: each `len` after the one
/// before) against the naive ones:
/// a candle up to the last naive one equals it (closed, except the last
/// naive one, which may still be open or have been closed by time);
/// later ones (time closed the last candle since) are flat at the last
/// close with no trades.
fn check_against_naive(what: &str, hub: &[Value], naive: &[Naive], len: u64, spec: &MarketSpec) {
    let by_start: HashMap<u64, &Naive> = naive.iter().map(|c| (c.start, c)).collect();
    let last = naive.last().expect("trades were recorded");
    let flat_after = Naive {
        start: 0,
        open: last.close,
        high: last.close,
        low: last.close,
        close: last.close,
        volume: 0,
        quote_volume: 0,
        trades: 0,
    };
    assert!(!hub.is_empty(), "{what}: no candles");
    for (n, c) in hub.iter().enumerate() {
        let start = c["start"].as_u64().expect("start is an integer");
        if n > 0 {
            let prev = hub[n - 1]["start"].as_u64().expect("start");
            assert_eq!(
                start,
                prev + len,
                "{what}: candle {n} follows the one before"
            );
        }
        let expected = match by_start.get(&start) {
            Some(e) => {
                if e.start < last.start {
                    assert_eq!(c["closed"], true, "{what}: {c} is closed");
                }
                naive_json(e, spec)
            }
            None => {
                assert!(
                    start > last.start,
                    "{what}: {c} is not a candle of the trades"
                );
                naive_json(
                    &Naive {
                        start,
                        ..flat_after.clone()
                    },
                    spec,
                )
            }
        };
        assert_eq!(body(c), expected, "{what}: candle {n}");
    }
}

// ---- the hub's side ----------------------------------------------------------

async fn get_json(addr: std::net::SocketAddr, path: &str) -> Value {
    let (status, text) = common::http_get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).expect("JSON body")
}

/// Every candle of `interval` over REST, paging back with `end` = the
/// first start, oldest first.
async fn rest_candles(addr: std::net::SocketAddr, interval: &str) -> Vec<Value> {
    let mut all: VecDeque<Value> = VecDeque::new();
    let mut end: Option<u64> = None;
    loop {
        let mut path = format!("/markets/{PAIR}/candles?interval={interval}&limit=1000");
        if let Some(e) = end {
            path.push_str(&format!("&end={e}"));
        }
        let page = get_json(addr, &path).await;
        let candles = page["candles"].as_array().expect("candles").clone();
        for c in candles.iter().rev() {
            all.push_front(c.clone());
        }
        if candles.len() < 1000 {
            return all.into();
        }
        end = candles[0]["start"].as_u64();
    }
}

/// Every trade over REST, newest first, paging with `next_before`.
async fn rest_trades(addr: std::net::SocketAddr) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = format!("/markets/{PAIR}/trades?limit=1000");
        if let Some(b) = &before {
            path.push_str(&format!("&before={b}"));
        }
        let page = get_json(addr, &path).await;
        all.extend(page["trades"].as_array().expect("trades").iter().cloned());
        match page["next_before"].as_str() {
            Some(b) => before = Some(b.to_owned()),
            None => return all,
        }
    }
}

/// Waits until the hub has applied the trade `id` (the newest in REST).
async fn wait_for_trade(addr: std::net::SocketAddr, id: u64) {
    let want = format!("T-{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, text) =
            common::http_get(addr, &format!("/markets/{PAIR}/trades?limit=1")).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            if v["trades"][0]["id"] == want.as_str() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay did not reach trade {id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `candles` state message of every interval of `PAIR`.
async fn ws_snapshots(hub: &hub::app::RunningHub) -> BTreeMap<String, Vec<Value>> {
    let mut ws = common::connect(hub).await;
    let channels: Vec<String> = INTERVALS
        .iter()
        .map(|(i, _)| format!("candles{i}.{PAIR}"))
        .collect();
    common::send(
        &mut ws,
        json!({"op":"subscribe","id":1,"channels":channels}),
    )
    .await;
    let mut out = BTreeMap::new();
    while out.len() < channels.len() {
        let m = common::recv(&mut ws).await;
        if m["type"] == "candles" {
            let candles = m["candles"].as_array().expect("candles").clone();
            assert!(candles.len() <= 300, "at most 300 candles");
            let open = candles.last().expect("an open candle");
            assert_eq!(open["closed"], false, "the last candle is open: {open}");
            out.insert(m["channel"].as_str().expect("channel").to_owned(), candles);
        }
    }
    out
}

/// Everything a part must show: WS snapshots, REST candles (equal to the
/// snapshots where they overlap), the ticker, the trade history.
async fn check_hub(hub: &hub::app::RunningHub, recorded: &[Recorded], part: &str) {
    let spec = spec();
    let recorded: Vec<Recorded> = recorded
        .iter()
        .filter(|r| r.trade.venue_ts < FAR_FUTURE)
        .cloned()
        .collect();
    let trades: Vec<PublicTrade> = recorded.iter().map(|r| r.trade).collect();
    let snapshots = ws_snapshots(hub).await;
    for (interval, len) in INTERVALS {
        let expected = naive(&trades, len);
        let ws = &snapshots[&format!("candles{interval}.{PAIR}")];
        check_against_naive(&format!("{part} WS {interval}"), ws, &expected, len, &spec);
        let rest = rest_candles(hub.addr, interval).await;
        check_against_naive(
            &format!("{part} REST {interval}"),
            &rest,
            &expected,
            len,
            &spec,
        );
        assert_eq!(
            rest.first().and_then(|c| c["start"].as_u64()),
            expected.first().map(|c| c.start),
            "{part} REST {interval}: every candle since the first trade"
        );
        // Contiguous from the first trade's candle: as many as the naive
        // ones, plus the flat ones time opened after the last trade (none
        // or one: the last trade is far from a candle's end).
        let extra = rest.len().checked_sub(expected.len());
        assert!(
            matches!(extra, Some(0 | 1)),
            "{part} REST {interval}: {} candles for {} naive ones",
            rest.len(),
            expected.len()
        );
        // The snapshot is REST's tail (the open candle may have closed by
        // time between the reads: then REST also has its flat successor).
        let first = ws[0]["start"].as_u64().expect("start");
        let tail: Vec<&Value> = rest
            .iter()
            .filter(|c| c["start"].as_u64() >= Some(first))
            .collect();
        let n = ws.len();
        assert!(
            tail.len() == n || tail.len() == n + 1,
            "{part} REST {interval}: tail"
        );
        for (k, (r, w)) in tail.iter().zip(ws).enumerate() {
            if k + 1 < n {
                assert_eq!(*r, w, "{part} {interval}: snapshot = REST tail");
            } else {
                assert_eq!(body(r), body(w), "{part} {interval}: open candle");
            }
        }
        // REST and WS agree on every candle both show (closed ones: `closed`
        // too; the open one may have closed by time between the reads).
        let rest_by_start: HashMap<u64, &Value> = rest
            .iter()
            .map(|c| (c["start"].as_u64().unwrap(), c))
            .collect();
        for c in ws.iter().filter(|c| c["closed"] == true) {
            let start = c["start"].as_u64().unwrap();
            assert_eq!(
                rest_by_start.get(&start),
                Some(&c),
                "{part} {interval}: REST = WS"
            );
        }
    }
    // The 24 h figures: the minutes (last trade's minute - 1439 ..= it).
    let last = trades.last().expect("trades");
    let last_minute = last.venue_ts / MINUTE * MINUTE;
    let window: Vec<&PublicTrade> = trades
        .iter()
        .filter(|t| t.venue_ts / MINUTE * MINUTE + 1440 * MINUTE > last_minute)
        .collect();
    let (ps, qs) = (u32::from(spec.price_scale), u32::from(spec.qty_scale));
    let open = window[0].price.0;
    let change = i128::from(last.price.0) - i128::from(open);
    let pct = (change * 10_000 * 2 + change.signum() * i128::from(open)) / (2 * i128::from(open));
    let signed = |v: i128, s: u32| {
        let sign = if v < 0 { "-" } else { "" };
        format!("{sign}{}", dec(v.unsigned_abs(), s))
    };
    let ticker = get_json(hub.addr, &format!("/markets/{PAIR}/ticker")).await;
    let expected = json!({
        "last": dec(last.price.0.into(), ps),
        "open_24h": dec(open.into(), ps),
        "high_24h": dec(window.iter().map(|t| t.price.0).max().unwrap().into(), ps),
        "low_24h": dec(window.iter().map(|t| t.price.0).min().unwrap().into(), ps),
        "volume_24h": dec(window.iter().map(|t| u128::from(t.qty.0)).sum(), qs),
        "quote_volume_24h": dec(window.iter().map(|t| u128::from(t.price.0) * u128::from(t.qty.0)).sum(), ps + qs),
        "change_24h": signed(change, ps),
        "change_24h_pct": signed(pct, 2),
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&ticker[k], v, "{part} ticker {k}: {ticker}");
    }
    let tickers = get_json(hub.addr, "/markets/tickers").await;
    assert_eq!(tickers.as_array().map(Vec::len), Some(1));
    assert_eq!(tickers[0]["pair"], PAIR);
    // The trade history: every trade, newest first, as trades.PAIR had it.
    let history = rest_trades(hub.addr).await;
    assert_eq!(history.len(), recorded.len(), "{part}: every trade");
    // Newest first by (venue_ts, id): a late trade by its own time.
    let mut by_key: Vec<&Recorded> = recorded.iter().collect();
    by_key.sort_by_key(|r| std::cmp::Reverse((r.trade.venue_ts, r.trade.trade_id)));
    for (h, r) in history.iter().zip(by_key) {
        let t = &r.trade;
        assert_eq!(
            h,
            &json!({
                "id": format!("T-{}", t.trade_id), "price": dec(t.price.0.into(), ps),
                "qty": dec(t.qty.0.into(), qs), "side": t.side.as_str(),
                "venue_ts": t.venue_ts, "seq": r.seq, "epoch": r.epoch,
            }),
            "{part}: trade history"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_candles_equal_an_independent_computation_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = common::fresh_data_dir();
    let mut rng = Lcg(0x5eed);
    let mut ids = 1000;
    // Part 1: ~29 hours from 00:05; its last trade at an hour start.
    let last1 = T0 + 29 * 60 * MINUTE;
    let part1 = batches(
        &mut rng,
        "ep0001",
        &mut ids,
        T0 + 5 * MINUTE + 7_000_000,
        last1 - MINUTE,
        last1,
    );
    // Part 2: from 30 minutes later, ~5 hours.
    let last2 = last1 + 6 * 60 * MINUTE;
    let part2 = batches(
        &mut rng,
        "ep0002",
        &mut ids,
        last1 + 30 * MINUTE + 3_000_000,
        last2 - MINUTE,
        last2,
    );
    // Part 2's stream starts with part 1's last three batches again (a
    // node that subscribed before rebuilding from a shared archive gets
    // trades the archive already holds): they must not count twice.
    let overlap = 3;
    let mut part2 = part2;
    for r in part2.iter_mut().flatten() {
        r.seq += overlap;
    }
    let replayed: Vec<Vec<Recorded>> = part1[part1.len() - overlap as usize..]
        .iter()
        .zip(1..)
        .map(|(b, seq)| {
            b.iter()
                .map(|r| Recorded {
                    epoch: "ep0002",
                    seq,
                    trade: r.trade,
                })
                .collect()
        })
        .collect();
    let (path1, path2) = (
        dir.path().join("part1.ndjson"),
        dir.path().join("part2.ndjson"),
    );
    record(&path1, "ep0001", &part1);
    record(&path2, "ep0002", &[replayed, part2.clone()].concat());
    let all1: Vec<Recorded> = part1.concat();
    let mut all: Vec<Recorded> = all1.clone();
    all.extend(part2.concat());

    for (path, upto) in [(&path1, &all1), (&path2, &all)] {
        let config = common::test_config(|c| c.data_dir = data_dir.clone());
        let feed = ReplayFeed::open(path, ReplaySpeed::Max).unwrap();
        let hub = hub::app::start_with_feed(&config, Arc::new(feed), None)
            .await
            .expect("hub starts on the replay");
        wait_for_trade(hub.addr, upto.last().unwrap().trade.trade_id).await;
        let part = if upto.len() == all1.len() {
            "part 1"
        } else {
            "part 2 (after a restart)"
        };
        check_hub(&hub, upto, part).await;
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_time_closes_a_quiet_candle_after_the_grace() {
    // One trade half a second before its minute ends, then silence.
    let end = T0 + 10 * MINUTE;
    let trade = Recorded {
        epoch: "ep0003",
        seq: 1,
        trade: PublicTrade {
            trade_id: 1,
            price: Price(6_400_000),
            qty: Qty(1_000_000),
            side: Side::Buy,
            venue_ts: end - 500_000,
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.ndjson");
    record(&path, "ep0003", &[vec![trade]]);
    let config = common::test_config(|_| {});
    let feed = ReplayFeed::open(&path, ReplaySpeed::Max).unwrap();
    let hub = hub::app::start_with_feed(&config, Arc::new(feed), None)
        .await
        .expect("hub starts on the replay");
    wait_for_trade(hub.addr, 1).await;
    let applied = tokio::time::Instant::now();
    let channel = format!("candles1m.{PAIR}");
    let mut ws = common::connect(&hub).await;
    common::send(
        &mut ws,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    let closed = loop {
        let m = common::recv_within(&mut ws, 10).await;
        if m["type"] == "candle" && m["candle"]["closed"] == true {
            break m;
        }
    };
    // 0.5 s to the end plus the 1 s grace, measured from when the hub had
    // the trade (at or before `applied`).
    let waited = applied.elapsed();
    assert!(
        waited >= Duration::from_millis(1_300),
        "closed after {waited:?}, before the grace"
    );
    let start = end - MINUTE;
    assert_eq!(closed["candle"]["start"], start);
    assert_eq!(closed["candle"]["trades"], 1);
    // seq = (closed index + 1) + trade seq 1.
    assert_eq!(closed["seq"].as_u64(), Some(end / MINUTE + 1), "{closed}");
    // The next candle is open, flat at the close.
    let rest = get_json(
        hub.addr,
        &format!("/markets/{PAIR}/candles?interval=1m&start={start}"),
    )
    .await;
    let candles = rest["candles"].as_array().unwrap();
    assert_eq!(candles[0]["closed"], true);
    assert_eq!(candles[1]["start"], end);
    assert_eq!(
        (
            &candles[1]["open"],
            &candles[1]["close"],
            &candles[1]["trades"]
        ),
        (&json!("64000.00"), &json!("64000.00"), &json!(0))
    );
    hub.stop().await;
}

/// A market feed the test drives: one pair, no book snapshot ever.
pub(crate) struct DrivenFeed {
    stream: std::sync::Mutex<Option<feeds::MarketStream>>,
}

impl DrivenFeed {
    /// The feed whose one stream, in `epoch`, carries what `events` gets.
    pub(crate) fn new(epoch: &str, events: tokio::sync::mpsc::Receiver<MarketEvent>) -> DrivenFeed {
        DrivenFeed {
            stream: std::sync::Mutex::new(Some(feeds::MarketStream {
                epoch: epoch.into(),
                events,
            })),
        }
    }
}

#[async_trait::async_trait]
impl feeds::MarketFeed for DrivenFeed {
    fn markets(&self) -> Vec<MarketSpec> {
        vec![spec()]
    }

    async fn subscribe(&self) -> Result<feeds::MarketStream, feeds::VenueError> {
        self.stream
            .lock()
            .expect("not poisoned")
            .take()
            .ok_or_else(|| feeds::VenueError::Unavailable("the driven feed streams once".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candles_do_not_wait_for_the_book() {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let feed = DrivenFeed::new("ep0004", rx);
    let config = common::test_config(|_| {});
    let hub = hub::app::start_with_feed(&config, Arc::new(feed), None)
        .await
        .expect("hub starts on the driven feed");
    let channel = format!("candles1m.{PAIR}");
    let mut ws = common::connect(&hub).await;
    common::send(
        &mut ws,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    let state = loop {
        let m = common::recv_within(&mut ws, 10).await;
        if m["type"] == "candles" {
            break m;
        }
    };
    assert_eq!(state["candles"], json!([]), "no trade yet: {state}");
    // A trade, and still no book: the open candle goes out all the same.
    let venue_ts = feeds::event::now_micros();
    tx.send(MarketEvent::Trades {
        pair: Arc::from(PAIR),
        seq: 1,
        venue_ts,
        trades: vec![PublicTrade {
            trade_id: 9,
            price: Price(6_400_000),
            qty: Qty(3),
            side: Side::Buy,
            venue_ts,
        }],
    })
    .await
    .expect("the hub reads the feed");
    let update = loop {
        let m = common::recv_within(&mut ws, 5).await;
        if m["type"] == "candle" {
            break m;
        }
    };
    assert_eq!(update["candle"]["closed"], false, "{update}");
    assert_eq!(update["candle"]["trades"], 1, "{update}");
    assert_eq!(update["prev_seq"], state["seq"], "{update}");
    hub.stop().await;
}

/// A trade at `venue_ts` as the driven feed's trade batch `seq`.
pub(crate) fn driven_trade(seq: u64, id: u64, venue_ts: u64) -> MarketEvent {
    MarketEvent::Trades {
        pair: Arc::from(PAIR),
        seq,
        venue_ts,
        trades: vec![PublicTrade {
            trade_id: id,
            price: Price(6_400_000 + id),
            qty: Qty(3),
            side: Side::Sell,
            venue_ts,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_longer_than_a_snapshot_sends_the_state_again() {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let feed = DrivenFeed::new("ep0005", rx);
    let config = common::test_config(|_| {});
    let hub = hub::app::start_with_feed(&config, Arc::new(feed), None)
        .await
        .expect("hub starts on the driven feed");
    // 500 minutes ago, then 100 minutes ago: 400 one-minute candles close.
    let now = feeds::event::now_micros();
    let (t1, t2) = (now - 500 * MINUTE, now - 100 * MINUTE);
    tx.send(driven_trade(1, 1, t1)).await.expect("feed read");
    wait_for_trade(hub.addr, 1).await;
    let channel = format!("candles1m.{PAIR}");
    let mut ws = common::connect(&hub).await;
    common::send(
        &mut ws,
        json!({"op":"subscribe","id":1,"channels":[channel]}),
    )
    .await;
    let state = loop {
        let m = common::recv_within(&mut ws, 10).await;
        if m["type"] == "candles" {
            break m;
        }
    };
    assert_eq!(state["candles"].as_array().map(Vec::len), Some(1));
    tx.send(driven_trade(2, 2, t2)).await.expect("feed read");
    let mut last_seq = state["seq"].clone();
    let resync = loop {
        let m = common::recv_within(&mut ws, 10).await;
        assert_eq!(m["prev_seq"], last_seq, "chained: {m}");
        last_seq = m["seq"].clone();
        assert_ne!(
            m["candle"]["closed"], true,
            "no closed message for a 400-candle gap: {m}"
        );
        if m["type"] == "candles" {
            break m;
        }
    };
    assert_eq!(resync["reason"], "resync", "{resync}");
    let candles = resync["candles"].as_array().expect("candles");
    assert_eq!(candles.len(), 300);
    let open = candles.last().expect("open candle");
    assert_eq!(open["start"], t2 / MINUTE * MINUTE);
    assert_eq!(open["closed"], false);
    // Then the trade's update of the open candle chains from the state.
    let update = loop {
        let m = common::recv_within(&mut ws, 5).await;
        if m["type"] == "candle" {
            break m;
        }
    };
    assert_eq!(update["prev_seq"], resync["seq"], "{update}");
    assert_eq!(update["candle"]["trades"], 1, "{update}");
    hub.stop().await;
}
