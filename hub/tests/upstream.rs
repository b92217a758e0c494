//! Acceptance tests of the hub on a remote venue (issue 6): the standalone
//! venue (`sandbox_venue::serve`) runs in this process on 127.0.0.1 and the hub
//! reaches it over GraphQL (`venue.kind = graphql`) through the Shift
//! adapter, exactly as in production.
//!
//! - a client's `book.PAIR` equals the venue's `orderBook` and the hub's
//!   `GET /markets/PAIR/orderbook` at the same seq, and an order placed over
//!   REST reaches the venue and `trades.PAIR`;
//! - the venue killed and restarted on the same port (new epoch): the hub
//!   reconnects, clients get a `resync` snapshot in the new epoch, `/ready`
//!   reports the outage;
//! - a dropped upstream delta becomes one chained `resync` snapshot;
//! - a slow venue: REST answers 503 with `Retry-After`, the breaker opens
//!   and closes again;
//! - two hubs on one venue publish identical messages at identical seqs;
//! - a paused feed is reported stale, then live again;
//! - `/ready` reports an unreachable venue before its feed goes stale.

use crate::book;
use crate::common;
use crate::harness;

use book::MarketClient;
use harness::{get, hub_book, names, ready_until, spec, start_hub, TestVenue, Trader, PAIR};
use orderbook::{MarketSpec, Price};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// Every test finishes within this, or fails.
const TEST_BOUND: Duration = Duration::from_secs(40);

async fn bounded<F: Future>(test: F) -> F::Output {
    common::within(TEST_BOUND, test).await
}

use common::any_port;

/// The client's book equals the venue's `orderBook` at the venue's seq and
/// the hub's `GET orderbook` at the hub's seq (levels and checksum), and
/// every message so far chained and checked out.
async fn assert_book_matches(client: &mut MarketClient, venue: &TestVenue, hub: SocketAddr) {
    let at_venue = venue.order_book(PAIR).await;
    let state = client.state_at(&at_venue.epoch, at_venue.seq).await;
    assert_eq!(
        state.bids, at_venue.bids,
        "bids at venue seq {}",
        at_venue.seq
    );
    assert_eq!(
        state.asks, at_venue.asks,
        "asks at venue seq {}",
        at_venue.seq
    );
    let (epoch, seq, at_hub) = hub_book(hub, PAIR).await;
    assert_eq!(epoch, at_venue.epoch, "the hub serves the venue's epoch");
    let state = client.state_at(&epoch, seq).await;
    assert_eq!(state, at_hub, "the client's book at hub seq {seq}");
    assert!(
        client.book.failures.is_empty(),
        "chain/checksum failures: {:?}",
        client.book.failures
    );
}

/// `price` raised by `percent` %, written at the pair's scale.
fn raised(spec: &MarketSpec, price: &str, percent: u64) -> String {
    let p = spec.parse_price(price).expect("price");
    spec.format_price(Price(p.0 * (100 + percent) / 100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_mirrors_the_venue_book_and_routes_orders_to_it() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let hub = start_hub(&venue, |_| {}).await;
        let spec = spec(&hub, PAIR);
        let mut client = MarketClient::subscribe(hub.addr, spec.clone()).await;
        assert_book_matches(&mut client, &venue, hub.addr).await;

        let trader = Trader::verified(&hub, "upstream-1@example.com").await;
        venue.credit(&trader.user_id, "USD", "1000000").await;
        // Marketable: an IOC buy 1 % above the best ask the client holds.
        let best_ask = client.book.wire().asks[0].0.clone();
        let limit = raised(&spec, &best_ask, 1);
        let placed = trader.limit("up-1", "buy", "0.001234", &limit, "IOC").await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let order_id = placed.body["order_id"]
            .as_str()
            .expect("order_id")
            .to_owned();
        let filled = placed.body["filled_qty"]
            .as_str()
            .expect("filled_qty")
            .to_owned();
        assert_eq!(filled, "0.001234", "fully filled: {}", placed.body);

        // The venue holds the order (the hub's order id is its clientId).
        let at_venue = venue.orders(&trader.user_id).await;
        let order = at_venue
            .iter()
            .find(|o| o["clientId"] == order_id.as_str())
            .unwrap_or_else(|| panic!("order {order_id} not at the venue: {at_venue:?}"));
        assert_eq!(order["status"], "FILLED", "{order}");
        assert_eq!(order["filledQty"], filled.as_str(), "{order}");
        assert_eq!(order["side"], "BUY", "{order}");

        // Its executions reach `trades.BTC-USD`: one batch of buys at or
        // below the limit adding up to the filled quantity.
        let want = spec.parse_qty(&filled).unwrap().0;
        let limit_raw = spec.parse_price(&limit).unwrap();
        let ours = |m: &Value| {
            let trades = m["trades"].as_array().expect("trades");
            let qty: u64 = trades
                .iter()
                .filter(|t| t["side"] == "buy")
                .map(|t| spec.parse_qty(t["qty"].as_str().unwrap()).unwrap().0)
                .sum();
            qty == want
                && trades.iter().all(|t| {
                    t["side"] == "buy"
                        && spec.parse_price(t["price"].as_str().unwrap()).unwrap() <= limit_raw
                })
        };
        if !client.trades.iter().any(ours) {
            client
                .until(10, "the order's trades", |_, m| {
                    m["type"] == "trades" && ours(m)
                })
                .await;
        }
        // The fill changed the book; it still matches everywhere.
        assert_book_matches(&mut client, &venue, hub.addr).await;
        println!(
            "book: {} updates, {} trade batches",
            client.book.updates,
            client.trades.len()
        );
        drop(client);
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_restarted_on_the_same_port_is_followed_into_its_new_epoch() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let venue_addr = venue.addr;
        let backoff_max = Duration::from_millis(500);
        let hub = start_hub(&venue, |c| {
            c.venue.backoff_max_ms = backoff_max.as_millis() as u64;
            c.venue.stale_after_ms = 1_000;
        })
        .await;
        ready_until(hub.addr, 10, "200", |s, _| s == 200).await;
        let spec = spec(&hub, PAIR);
        let mut client = MarketClient::subscribe(hub.addr, spec).await;
        assert_book_matches(&mut client, &venue, hub.addr).await;
        let old_epoch = client.book.epoch.clone().expect("epoch");

        venue.stop().await;
        let stopped = Instant::now();
        let (_, outage) =
            ready_until(hub.addr, 5, "503 while the venue is down", |s, _| s == 503).await;
        println!(
            "GET /ready {:?} after the venue stopped: {outage}",
            stopped.elapsed()
        );
        sleep(Duration::from_millis(2_500).saturating_sub(stopped.elapsed())).await;
        // Nothing the client got meanwhile broke its book.
        client.drain_for(Duration::from_millis(100)).await;
        assert!(
            client.book.failures.is_empty(),
            "{:?}",
            client.book.failures
        );
        assert_eq!(client.book.epoch.as_deref(), Some(old_epoch.as_str()));

        let venue = TestVenue::start(venue_addr, 40).await;
        let restarted = Instant::now();
        let snapshot = client
            .until(10, "a snapshot in the new epoch", |c, m| {
                m["channel"] == c.book.channel.as_str()
                    && m["type"] == "snapshot"
                    && m["epoch"] != old_epoch.as_str()
            })
            .await;
        let took = restarted.elapsed();
        println!(
            "resync snapshot {took:?} after the restart: {:?}",
            client.book.snapshots
        );
        assert_eq!(snapshot["reason"], "resync", "{:?}", client.book.snapshots);
        assert_eq!(snapshot["prev_seq"], 0, "{:?}", client.book.snapshots);
        // The adapter retries at most every backoff_max; then one connect
        // and the first snapshot.
        assert!(
            took < backoff_max + Duration::from_secs(3),
            "reconnected only after {took:?}"
        );
        assert_book_matches(&mut client, &venue, hub.addr).await;
        // The subscription was kept: trades arrive in the new epoch too,
        // numbered from scratch.
        let new_epoch = client.book.epoch.clone().unwrap();
        let first_trades = client
            .trades
            .iter()
            .find(|m| m["epoch"] == new_epoch.as_str())
            .cloned();
        let first_trades = match first_trades {
            Some(m) => m,
            None => {
                client
                    .until(10, "trades in the new epoch", |_, m| {
                        m["type"] == "trades" && m["epoch"] == new_epoch.as_str()
                    })
                    .await
            }
        };
        assert_eq!(first_trades["prev_seq"], 0, "{first_trades}");
        let (_, ready) = ready_until(hub.addr, 10, "200 after the restart", |s, _| s == 200).await;
        println!(
            "ready again {:?} after the restart: {ready}",
            restarted.elapsed()
        );
        drop(client);
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

/// docs/API.md: `/ready` is 200 only while "every configured dependency
/// answers": a venue that is down is reported (`upstream`) as soon as the
/// adapter loses its connection, long before the default `stale_after_ms`
/// (10 s) would mark its pairs stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_an_unreachable_venue_before_its_feed_goes_stale() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let hub = start_hub(&venue, |_| {}).await;
        ready_until(hub.addr, 10, "200", |s, _| s == 200).await;
        venue.stop().await;
        let stopped = Instant::now();
        let (_, body) =
            ready_until(hub.addr, 3, "503 while the venue is down", |s, _| s == 503).await;
        println!(
            "503 {:?} after the venue stopped: {body}",
            stopped.elapsed()
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upstream_delta_becomes_one_chained_resync_snapshot() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let hub = start_hub(&venue, |_| {}).await;
        let spec = spec(&hub, PAIR);
        let mut client = MarketClient::subscribe(hub.addr, spec).await;
        assert_book_matches(&mut client, &venue, hub.addr).await;
        let epoch = client.book.epoch.clone().unwrap();
        // Mid-stream: a few updates have been applied.
        client
            .until(10, "a few updates", |c, _| c.book.updates >= 3)
            .await;

        venue
            .admin("/admin/drop-next-delta", json!({"pair": PAIR}))
            .await;
        let last_before = std::cell::Cell::new(client.book.last_seq);
        let snapshot = client
            .until(10, "a resync snapshot", |c, m| {
                let is_snapshot =
                    m["channel"] == c.book.channel.as_str() && m["type"] == "snapshot";
                if !is_snapshot && m["channel"] == c.book.channel.as_str() {
                    last_before.set(c.book.last_seq);
                }
                is_snapshot
            })
            .await;
        println!("snapshots: {:?}", client.book.snapshots);
        assert_eq!(snapshot["reason"], "resync", "{snapshot:?}");
        assert_eq!(snapshot["epoch"], epoch.as_str(), "same epoch");
        assert_eq!(
            snapshot["prev_seq"],
            last_before.get(),
            "the snapshot chains from the last update"
        );
        assert!(
            snapshot["seq"].as_u64().unwrap() > last_before.get() + 1,
            "the dropped delta is covered by the snapshot"
        );
        assert_eq!(client.book.snapshots.len(), 2, "subscribe + one resync");
        assert_book_matches(&mut client, &venue, hub.addr).await;
        // And updates chain from the snapshot again.
        let seq = client.book.last_seq;
        client
            .until(10, "an update after the resync", |c, _| {
                c.book.last_seq > seq + 1
            })
            .await;
        assert!(
            client.book.failures.is_empty(),
            "{:?}",
            client.book.failures
        );
        assert_eq!(client.book.snapshots.len(), 2);
        drop(client);
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_venue_gets_503s_then_an_open_breaker_then_service_again() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 20).await;
        let breaker_open = Duration::from_millis(1_500);
        let hub = start_hub(&venue, |c| {
            c.venue.request_timeout_ms = 300;
            c.api.upstream_timeout_ms = 1_000;
            c.api.upstream_attempts = 1;
            c.api.breaker_failures = 2;
            c.api.breaker_open_ms = breaker_open.as_millis() as u64;
        })
        .await;
        let trader = Trader::verified(&hub, "upstream-4@example.com").await;
        venue.credit(&trader.user_id, "USD", "1000000").await;
        // Resting bids far below the market: nothing trades.
        let ok = trader
            .limit("slow-0", "buy", "0.001000", "1000.00", "GTC")
            .await;
        assert_eq!(ok.status, 201, "{}", ok.body);

        venue.admin("/admin/latency", json!({"ms": 3_000})).await;
        let mut answers = Vec::new();
        let mut fast_fail = None;
        for n in 1..=6 {
            let a = trader
                .limit(&format!("slow-{n}"), "buy", "0.001000", "1000.00", "GTC")
                .await;
            println!(
                "order {n} under latency: {} {:?} in {:?}: {}",
                a.status, a.retry_after, a.took, a.body
            );
            assert_eq!(a.status, 503, "{}", a.body);
            let code = a.body["error"]["code"].as_str().unwrap_or_default();
            assert!(
                code == "upstream_timeout" || code == "upstream_unavailable",
                "{}",
                a.body
            );
            let secs: u64 = a
                .retry_after
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("503 without a numeric Retry-After: {:?}", a.retry_after)
                });
            assert!(secs >= 1, "Retry-After {secs}");
            let fast = a.took < Duration::from_millis(150);
            answers.push((a.status, code.to_owned(), a.took));
            if fast {
                fast_fail = Some(a);
                break;
            }
        }
        let fast_fail =
            fast_fail.unwrap_or_else(|| panic!("the breaker never failed fast: {answers:?}"));
        assert_eq!(fast_fail.body["error"]["code"], "upstream_unavailable");
        assert!(
            answers.len() >= 2,
            "the first calls waited for the venue: {answers:?}"
        );
        let (_, ready) = ready_until(hub.addr, 2, "503 naming venue", |s, b| {
            s == 503 && names(b, "venue")
        })
        .await;
        println!("ready with the breaker open: {ready}");

        venue.admin("/admin/latency", json!({"ms": 0})).await;
        let healed = Instant::now();
        sleep(breaker_open).await;
        let mut n = 100;
        let placed = loop {
            n += 1;
            let a = trader
                .limit(&format!("slow-{n}"), "buy", "0.001000", "1000.00", "GTC")
                .await;
            if a.status == 201 {
                break a;
            }
            println!("order {n} after healing: {} {}", a.status, a.body);
            assert_eq!(a.status, 503, "{}", a.body);
            assert!(
                healed.elapsed() < Duration::from_secs(15),
                "no order accepted 15 s after the venue healed"
            );
            sleep(Duration::from_millis(250)).await;
        };
        println!("order accepted {:?} after healing", healed.elapsed());
        let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
        let orders = venue.orders(&trader.user_id).await;
        assert!(
            orders.iter().any(|o| o["clientId"] == order_id.as_str()),
            "{orders:?}"
        );
        ready_until(hub.addr, 10, "200 after healing", |s, _| s == 200).await;
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

/// Book updates (bids, asks, checksum) and trade ids by seq.
fn by_seq(client: &MarketClient) -> (BTreeMap<u64, Value>, BTreeMap<u64, Value>) {
    let books = client
        .book
        .messages
        .iter()
        .filter(|m| m["type"] == "update")
        .map(|m| {
            let seq = m["seq"].as_u64().expect("seq");
            let body = json!({"bids": m["bids"], "asks": m["asks"], "checksum": m["checksum"]});
            (seq, body)
        })
        .collect();
    let trades = client
        .trades
        .iter()
        .map(|m| {
            let ids: Vec<Value> = m["trades"]
                .as_array()
                .expect("trades")
                .iter()
                .map(|t| t["id"].clone())
                .collect();
            (m["seq"].as_u64().expect("seq"), json!(ids))
        })
        .collect();
    (books, trades)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_venue_publish_identical_messages_at_identical_seqs() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 200).await;
        let hub_a = start_hub(&venue, |_| {}).await;
        let hub_b = start_hub(&venue, |_| {}).await;
        let spec = spec(&hub_a, PAIR);
        let mut a = MarketClient::subscribe(hub_a.addr, spec.clone()).await;
        let mut b = MarketClient::subscribe(hub_b.addr, spec).await;
        a.book.keep_messages = true;
        b.book.keep_messages = true;
        let window = Duration::from_secs(4);
        tokio::join!(a.drain_for(window), b.drain_for(window));
        let (books_a, trades_a) = by_seq(&a);
        let (books_b, trades_b) = by_seq(&b);
        let mut same_books = 0;
        for (seq, m) in &books_a {
            if let Some(other) = books_b.get(seq) {
                assert_eq!(m, other, "book update seq {seq} differs between hubs");
                same_books += 1;
            }
        }
        let mut same_trades = 0;
        for (seq, ids) in &trades_a {
            if let Some(other) = trades_b.get(seq) {
                assert_eq!(ids, other, "trades seq {seq} differ between hubs");
                same_trades += 1;
            }
        }
        println!(
            "compared {same_books} book updates ({} / {}) and {same_trades} trade batches ({} / {})",
            books_a.len(),
            books_b.len(),
            trades_a.len(),
            trades_b.len()
        );
        assert!(same_books >= 20, "too few common book updates: {same_books}");
        assert!(same_trades >= 1, "no common trade batch");
        for c in [&a, &b] {
            assert!(c.book.failures.is_empty(), "{:?}", c.book.failures);
        }
        assert_eq!(a.book.epoch, b.book.epoch);
        drop((a, b));
        hub_a.stop().await;
        hub_b.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_feed_is_reported_stale_then_live_again() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 200).await;
        let hub = start_hub(&venue, |c| c.venue.stale_after_ms = 1_000).await;
        ready_until(hub.addr, 10, "200", |s, _| s == 200).await;
        let spec = spec(&hub, PAIR);
        let mut client = MarketClient::subscribe(hub.addr, spec).await;
        let status_of = |markets: &Value| {
            markets
                .as_array()
                .expect("markets")
                .iter()
                .find(|m| m["pair"] == PAIR)
                .expect("pair listed")["status"]
                .clone()
        };

        // Long beside `stale_after_ms` (1 s): the stale state is seen, and
        // `/markets` read, well within the pause on a busy machine.
        let pause = Duration::from_millis(6_000);
        // Taken before the venue gets the request: the pause starts later,
        // so the time until live again is at least the pause.
        let paused = Instant::now();
        venue
            .admin(
                "/admin/pause-stream",
                json!({"ms": pause.as_millis() as u64}),
            )
            .await;
        let (_, body) = ready_until(hub.addr, 6, "503 naming stale:BTC-USD", |s, b| {
            s == 503 && names(b, &format!("stale:{PAIR}"))
        })
        .await;
        println!("stale after {:?}: {body}", paused.elapsed());
        let (_, markets) = get(hub.addr, "/markets").await;
        assert_eq!(status_of(&markets), "stale", "{markets}");

        let (_, body) = ready_until(hub.addr, 30, "200 after the pause", |s, _| s == 200).await;
        println!("live after {:?}: {body}", paused.elapsed());
        assert!(
            paused.elapsed() >= pause - Duration::from_millis(100),
            "live again before the pause ended"
        );
        let (_, markets) = get(hub.addr, "/markets").await;
        assert_eq!(status_of(&markets), "online", "{markets}");
        // The held messages arrived in order: the book is intact.
        assert_book_matches(&mut client, &venue, hub.addr).await;
        assert_eq!(
            client.book.snapshots.len(),
            1,
            "{:?}",
            client.book.snapshots
        );
        drop(client);
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}
