//! Market status over real sockets (docs/PROTOCOL.md, "Market status"):
//! a hub on the standalone venue (`sandbox_venue::serve`, reached over
//! GraphQL through the Shift adapter), driven by the venue's test-only
//! admin routes, watched on the `status` channel and `GET /markets`.
//!
//! - a paused feed turns the pair `stale`, then `online` again;
//! - a dropped upstream delta turns it `resyncing` ("upstream seq gap"),
//!   then `online` once the resync snapshot arrived;
//! - a venue halt turns it `halted` with the venue's reason, an order on
//!   it is refused over REST with 409 `market_halted` while a cancel still
//!   works, and a resume turns it `online` again;
//! - a resume of the `status` channel on the same node is recovered, and
//!   one naming another epoch gets a fresh table;
//! - a venue restarted (new epoch) shows every pair `resyncing` from the
//!   lost connection until the new epoch's snapshot, then `online`; the
//!   Shift adapter's lost connection, reconnect and epoch change show on
//!   `/metrics`.
//!
//! Every status message must chain (`prev_seq` = the previous `seq`, one
//! epoch) and list every pair of the hub.

use crate::common;
use crate::harness;

use common::{recv_within, send, Ws};
use harness::{get, start_hub, TestVenue, Trader, PAIR};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Every test finishes within this, or fails.
const TEST_BOUND: Duration = Duration::from_secs(40);

async fn bounded<F: Future>(test: F) -> F::Output {
    common::within(TEST_BOUND, test).await
}

use common::any_port;

/// A WebSocket client subscribed to `status`, checking every message.
struct StatusClient {
    ws: Ws,
    pairs: usize,
    epoch: String,
    last_seq: u64,
    /// Every (state, reason) `PAIR` went through, in order, deduplicated.
    history: Vec<(String, Value)>,
    /// The last message read.
    last: Value,
}

impl StatusClient {
    /// Subscribes and reads the first `status` message (the table now).
    async fn subscribe(addr: SocketAddr, pairs: usize) -> (StatusClient, Value) {
        let ws = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("websocket connects")
            .0;
        let mut client = StatusClient {
            ws,
            pairs,
            epoch: String::new(),
            last_seq: 0,
            history: Vec::new(),
            last: Value::Null,
        };
        send(
            &mut client.ws,
            json!({"op": "subscribe", "id": 1, "channels": ["status"]}),
        )
        .await;
        let subscribed = recv_within(&mut client.ws, 5).await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        let first = recv_within(&mut client.ws, 5).await;
        assert_eq!(first["prev_seq"], 0, "the first message: {first}");
        client.epoch = first["epoch"].as_str().expect("epoch").to_owned();
        client.check(&first);
        (client, first)
    }

    /// Checks one `status` message and records `PAIR`'s state.
    fn check(&mut self, m: &Value) {
        assert_eq!(m["type"], "status", "{m}");
        assert_eq!(m["channel"], "status", "{m}");
        assert_eq!(m["epoch"], self.epoch.as_str(), "one epoch: {m}");
        if self.last_seq != 0 {
            assert_eq!(m["prev_seq"], self.last_seq, "chained: {m}");
            assert_eq!(m["seq"], self.last_seq + 1, "one seq per message: {m}");
        }
        self.last_seq = m["seq"].as_u64().expect("seq");
        let pairs = m["pairs"].as_array().expect("pairs");
        assert_eq!(pairs.len(), self.pairs, "every pair listed: {m}");
        for p in pairs {
            let state = p["state"].as_str().expect("state");
            assert!(
                ["online", "stale", "halted", "resyncing"].contains(&state),
                "{p}"
            );
            assert_eq!(p["reason"].is_null(), state == "online", "{p}");
            assert!(p["since"].as_u64().is_some_and(|s| s > 0), "{p}");
        }
        let entry = of(m, PAIR);
        let now = (
            entry["state"].as_str().unwrap().to_owned(),
            entry["reason"].clone(),
        );
        if self.history.last() != Some(&now) {
            self.history.push(now);
        }
        self.last = m.clone();
    }

    /// Reads `status` messages until `PAIR` is in `state` (the last one
    /// read may already say so); that message.
    async fn until(&mut self, state: &str, secs: u64) -> Value {
        self.try_until(state, secs)
            .await
            .unwrap_or_else(|why| panic!("{why}"))
    }

    fn not_yet(&self, state: &str, secs: u64) -> String {
        format!(
            "{PAIR} not {state} within {secs} s; went through {:?}",
            self.history
        )
    }

    /// [`Self::until`], or why not (for a caller that adds what the hub
    /// says).
    async fn try_until(&mut self, state: &str, secs: u64) -> Result<Value, String> {
        if of(&self.last, PAIR)["state"] == state {
            return Ok(self.last.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.not_yet(state, secs));
            }
            let Ok(m) = tokio::time::timeout(left, recv_within(&mut self.ws, secs)).await else {
                return Err(self.not_yet(state, secs));
            };
            self.check(&m);
            if of(&m, PAIR)["state"] == state {
                return Ok(m);
            }
        }
    }
}

/// What the hub says of its upstream, for a failure's message:
/// `PAIR`'s `GET /markets` entry and its upstream metrics.
async fn upstream_view(addr: SocketAddr) -> String {
    let (_, metrics) = common::http_get(addr, "/metrics").await;
    let upstream: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && ["upstream", "resync", "shift"]
                    .iter()
                    .any(|part| l.contains(part))
        })
        .collect();
    format!("{}\n{}", listed(addr).await, upstream.join("\n"))
}

/// Waits until the Shift adapter's `name{venue="venue"}` on `/metrics`
/// satisfies `holds` (the hub copies it every second).
async fn until_shift_metric(addr: SocketAddr, name: &str, holds: impl Fn(f64) -> bool) {
    let line = format!("{name}{{venue=\"venue\"}} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = common::http_get(addr, "/metrics").await;
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line)?.trim().parse::<f64>().ok());
        if value.is_some_and(&holds) {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: {value:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `pair`'s entry of a `status` message.
fn of<'a>(m: &'a Value, pair: &str) -> &'a Value {
    m["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .find(|p| p["pair"] == pair)
        .unwrap_or_else(|| panic!("{pair} listed: {m}"))
}

/// `PAIR`'s entry of `GET /markets`.
async fn listed(addr: SocketAddr) -> Value {
    let (status, markets) = get(addr, "/markets").await;
    assert_eq!(status, 200, "{markets}");
    markets
        .as_array()
        .expect("markets")
        .iter()
        .find(|m| m["pair"] == PAIR)
        .expect("pair listed")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_feed_is_stale_on_the_status_channel_then_online() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 200).await;
        let hub = start_hub(&venue, |c| c.venue.stale_after_ms = 1_000).await;
        let pairs = hub.context.markets.specs().len();
        let (mut client, _) = StatusClient::subscribe(hub.addr, pairs).await;
        client.until("online", 10).await;

        venue
            .admin("/admin/pause-stream", json!({"ms": 4_000}))
            .await;
        let stale = client.until("stale", 10).await;
        assert_eq!(of(&stale, PAIR)["reason"], "no upstream data for 1000 ms");
        let m = listed(hub.addr).await;
        assert_eq!(
            (&m["status"], &m["status_reason"]),
            (&json!("stale"), &json!("no upstream data for 1000 ms")),
            "{m}"
        );
        let online = client.until("online", 15).await;
        assert_eq!(of(&online, PAIR)["reason"], Value::Null);
        assert!(
            of(&online, PAIR)["since"].as_u64() > of(&stale, PAIR)["since"].as_u64(),
            "since moves with the state"
        );
        assert_eq!(listed(hub.addr).await["status"], "online");
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_delta_shows_resyncing_then_online() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 80).await;
        let hub = start_hub(&venue, |_| {}).await;
        let pairs = hub.context.markets.specs().len();
        let (mut client, _) = StatusClient::subscribe(hub.addr, pairs).await;
        client.until("online", 10).await;

        venue
            .admin("/admin/drop-next-delta", json!({"pair": PAIR}))
            .await;
        let resyncing = client.until("resyncing", 10).await;
        assert_eq!(of(&resyncing, PAIR)["reason"], "upstream seq gap");
        client.until("online", 10).await;
        assert_eq!(
            client
                .history
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            ["online", "resyncing", "online"],
            "{:?}",
            client.history
        );
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_is_shown_refuses_orders_keeps_cancels_and_resume_is_online() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let hub = start_hub(&venue, |_| {}).await;
        let pairs = hub.context.markets.specs().len();
        let trader = Trader::verified(&hub, "halt@example.com").await;
        venue.credit(&trader.user_id, "USD", "1000000").await;
        // A resting order far from the market, to cancel while halted.
        let resting = trader
            .limit("halt-rest", "buy", "0.001000", "1000.00", "GTC")
            .await;
        assert_eq!(resting.status, 201, "{}", resting.body);
        let (mut client, _) = StatusClient::subscribe(hub.addr, pairs).await;
        client.until("online", 10).await;

        venue
            .admin(
                "/admin/halt",
                json!({"pair": PAIR, "reason": "circuit breaker \"L1\""}),
            )
            .await;
        let halted = client.until("halted", 10).await;
        assert_eq!(of(&halted, PAIR)["reason"], "circuit breaker \"L1\"");
        let others = halted["pairs"].as_array().unwrap();
        assert!(
            others
                .iter()
                .filter(|p| p["pair"] != PAIR)
                .all(|p| p["state"] != "halted"),
            "only {PAIR} is halted: {halted}"
        );
        let m = listed(hub.addr).await;
        assert_eq!(
            (&m["status"], &m["status_reason"]),
            (&json!("halted"), &json!("circuit breaker \"L1\"")),
            "{m}"
        );

        let refused = trader
            .limit("halt-new", "buy", "0.001000", "1000.00", "GTC")
            .await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert_eq!(
            refused.body["error"]["code"], "market_halted",
            "{}",
            refused.body
        );
        let message = refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("circuit breaker"), "{message}");

        let order_id = resting.body["order_id"].as_str().expect("order_id");
        let cancelled = trader
            .call("DELETE", &format!("/orders/{order_id}"), None)
            .await;
        assert_eq!(
            cancelled.status, 200,
            "cancels still work: {}",
            cancelled.body
        );
        assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);

        venue.admin("/admin/resume", json!({"pair": PAIR})).await;
        client.until("online", 10).await;
        assert_eq!(listed(hub.addr).await["status"], "online");
        let accepted = trader
            .limit("halt-after", "buy", "0.001000", "1000.00", "GTC")
            .await;
        assert_eq!(accepted.status, 201, "{}", accepted.body);
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_resume_on_the_same_node_is_recovered_and_another_epoch_is_not() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let hub = start_hub(&venue, |_| {}).await;
        let pairs = hub.context.markets.specs().len();
        let (mut early, _) = StatusClient::subscribe(hub.addr, pairs).await;
        early.until("online", 10).await;
        let (epoch, seq) = (early.epoch.clone(), early.last_seq);

        venue
            .admin(
                "/admin/halt",
                json!({"pair": PAIR, "reason": "maintenance"}),
            )
            .await;
        let halted = early.until("halted", 10).await;

        // Resumed from before the halt: the missed messages, in order.
        let mut ws = connect_to(hub.addr).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": ["status"],
                   "resume": {"status": {"epoch": epoch, "seq": seq}}}),
        )
        .await;
        let answer = recv_within(&mut ws, 5).await;
        assert_eq!(answer["recovered"], json!(["status"]), "{answer}");
        let mut last = seq;
        while last < halted["seq"].as_u64().unwrap() {
            let m = recv_within(&mut ws, 5).await;
            assert_eq!(m["prev_seq"], last, "replayed in order: {m}");
            last = m["seq"].as_u64().unwrap();
        }

        // Another node's epoch: not recovered, the table as it is now.
        let mut ws = connect_to(hub.addr).await;
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": ["status"],
                   "resume": {"status": {"epoch": "0000beef", "seq": seq}}}),
        )
        .await;
        let answer = recv_within(&mut ws, 5).await;
        assert_eq!(answer["not_recovered"], json!(["status"]), "{answer}");
        let fresh = recv_within(&mut ws, 5).await;
        assert_eq!(fresh["prev_seq"], 0, "{fresh}");
        assert_eq!(fresh["seq"], halted["seq"], "{fresh}");
        assert_eq!(of(&fresh, PAIR)["state"], "halted", "{fresh}");

        // The suffix of a conflated channel is refused.
        send(
            &mut ws,
            json!({"op": "subscribe", "id": 2, "channels": ["status@100ms"]}),
        )
        .await;
        let refused = recv_within(&mut ws, 5).await;
        assert_eq!(refused["code"], "unknown_channel", "{refused}");
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}

async fn connect_to(addr: SocketAddr) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("websocket connects")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_venue_shows_resyncing_until_the_new_epoch_s_snapshot() {
    bounded(async {
        let venue = TestVenue::start(any_port(), 40).await;
        let addr = venue.addr;
        let hub = start_hub(&venue, |_| {}).await;
        let pairs = hub.context.markets.specs().len();
        let (mut client, _) = StatusClient::subscribe(hub.addr, pairs).await;
        client.until("online", 10).await;

        let before = upstream_view(hub.addr).await;
        venue.stop().await;
        let lost = match client.try_until("resyncing", 10).await {
            Ok(m) => m,
            Err(why) => panic!(
                "{why}\nthe hub before the stop: {before}\nand then: {}",
                upstream_view(hub.addr).await
            ),
        };
        // A venue that stops may end a pair's subscriptions before it
        // closes the connection: either way the pair is resyncing.
        let reason = &of(&lost, PAIR)["reason"];
        assert!(
            reason == "upstream connection lost" || reason == "upstream subscription ended",
            "{lost}"
        );
        // One message per pair's change: every pair gets there.
        let all_resyncing = |m: &Value| {
            m["pairs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["state"] == "resyncing")
        };
        let mut last = lost;
        while !all_resyncing(&last) {
            last = recv_within(&mut client.ws, 10).await;
            client.check(&last);
        }
        // An operator sees the lost connection on /metrics too.
        until_shift_metric(hub.addr, "nax_shift_market_down", |v| v == 1.0).await;
        let venue = TestVenue::start(addr, 40).await;
        client.until("online", 20).await;
        until_shift_metric(hub.addr, "nax_shift_market_down", |v| v == 0.0).await;
        until_shift_metric(hub.addr, "nax_shift_reconnects_total", |v| v >= 1.0).await;
        until_shift_metric(hub.addr, "nax_shift_epoch_changes_total", |v| v >= 1.0).await;
        let reasons: Vec<&Value> = client.history.iter().map(|(_, r)| r).collect();
        assert!(
            reasons.contains(&&json!("new upstream epoch")),
            "the new epoch is named: {:?}",
            client.history
        );
        assert_eq!(listed(hub.addr).await["status"], "online");
        hub.stop().await;
        venue.stop().await;
    })
    .await;
}
