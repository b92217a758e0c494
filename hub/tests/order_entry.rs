//! Order entry over the WebSocket against REST (docs/PROTOCOL.md "Order
//! entry"): one table of cases — validation, idempotency on
//! `client_order_id`, KYC, BOLA (another user's order cannot be cancelled:
//! 404 `order_not_found` alike), the order sync's backlog (503
//! `overloaded`), the rate limit — driven once through
//! `POST /orders` / `DELETE /orders/{id}` and once through `order.place` /
//! `order.cancel` on an authenticated socket, each row asserting the same
//! outcome on both. Then: the answer is followed by the `orders` message,
//! `order.cancel_all` answers what it cancelled, and REST and WebSocket
//! requests of one user share one budget.

use crate::common;
use crate::harness;

use common::{recv_within, send};
use feeds::Venue as _;
use harness::{Trader, PAIR};
use hub::app::RunningHub;
use serde_json::{json, Value};
use std::time::Duration;

/// What a row does.
#[derive(Clone)]
enum Req {
    /// Place this body as `user`.
    Place(Value),
    /// Cancel the order an earlier row of this run placed with this
    /// `client_order_id`.
    CancelOwn(&'static str),
    /// Cancel another user's order (BOLA).
    CancelOthers,
    /// Cancel an id no order has.
    CancelUnknown,
    /// Place as a user whose KYC is not verified.
    PlaceUnverified(Value),
    /// Place while the order sync holds as many venue events as
    /// `[api] order_sync_backlog_max` allows, then let them go.
    PlaceWhileBehind(Value),
    /// Send up to this many invalid placements as fast as possible; the
    /// outcome is the first answer that is not the invalid body's.
    Flood(usize),
}

/// One row: a name, a request, the outcome both entry points must give
/// (`created`, `replayed`, `cancelled`, or an error code).
struct Row {
    name: &'static str,
    req: Req,
    outcome: &'static str,
}

fn limit(id: &str, qty: &str, price: &str) -> Value {
    json!({"client_order_id": id, "pair": PAIR, "side": "buy", "type": "limit",
           "qty": qty, "price": price})
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    v.as_object_mut().expect("object").remove(k);
    v
}

/// The table (see the module doc). Prices far below the market rest.
fn table() -> Vec<Row> {
    let base = limit("t-1", "0.010000", "1000.00");
    vec![
        Row {
            name: "a valid limit order is created",
            req: Req::Place(base.clone()),
            outcome: "created",
        },
        Row {
            name: "the same id and body replays it",
            req: Req::Place(base.clone()),
            outcome: "replayed",
        },
        Row {
            name: "defaults spelled out are the same body",
            req: Req::Place(with(
                with(base.clone(), "time_in_force", json!("GTC")),
                "post_only",
                json!(false),
            )),
            outcome: "replayed",
        },
        Row {
            name: "the same id with another body",
            req: Req::Place(with(base.clone(), "qty", json!("0.020000"))),
            outcome: "duplicate_client_order_id",
        },
        Row {
            name: "an unknown member",
            req: Req::Place(with(limit("t-2", "0.01", "1000.00"), "leverage", json!(10))),
            outcome: "unknown_field",
        },
        Row {
            name: "a limit order without price",
            req: Req::Place(without(limit("t-3", "0.01", "1000.00"), "price")),
            outcome: "missing_field",
        },
        Row {
            name: "no qty",
            req: Req::Place(without(limit("t-4", "0.01", "1000.00"), "qty")),
            outcome: "missing_field",
        },
        Row {
            name: "qty finer than the pair's scale",
            req: Req::Place(limit("t-5", "0.0100001", "1000.00")),
            outcome: "invalid_qty",
        },
        Row {
            name: "qty zero",
            req: Req::Place(limit("t-6", "0", "1000.00")),
            outcome: "invalid_qty",
        },
        Row {
            name: "price finer than the pair's scale",
            req: Req::Place(limit("t-7", "0.01", "1000.001")),
            outcome: "invalid_price",
        },
        Row {
            name: "a negative price",
            req: Req::Place(limit("t-8", "0.01", "-1.00")),
            outcome: "invalid_price",
        },
        Row {
            name: "a pair the venue does not trade",
            req: Req::Place(with(
                limit("t-9", "0.01", "1000.00"),
                "pair",
                json!("FOO-BAR"),
            )),
            outcome: "unknown_pair",
        },
        Row {
            name: "a market order with a price",
            req: Req::Place(with(
                limit("t-10", "0.01", "1000.00"),
                "type",
                json!("market"),
            )),
            outcome: "invalid_field",
        },
        Row {
            name: "a bad client_order_id",
            req: Req::Place(limit("t 11", "0.01", "1000.00")),
            outcome: "invalid_field",
        },
        Row {
            name: "a side that does not exist",
            req: Req::Place(with(
                limit("t-12", "0.01", "1000.00"),
                "side",
                json!("hold"),
            )),
            outcome: "invalid_field",
        },
        Row {
            name: "more than the user's funds",
            req: Req::Place(limit("t-13", "5000.000000", "1000.00")),
            outcome: "insufficient_funds",
        },
        Row {
            name: "a refused id may be used again",
            req: Req::Place(limit("t-13", "0.010000", "1000.00")),
            outcome: "created",
        },
        Row {
            name: "a new order while the order sync is behind",
            req: Req::PlaceWhileBehind(limit("t-15", "0.01", "1000.00")),
            outcome: "overloaded",
        },
        Row {
            name: "the same order once it has caught up",
            req: Req::Place(limit("t-15", "0.010000", "1000.00")),
            outcome: "created",
        },
        Row {
            name: "KYC not verified",
            req: Req::PlaceUnverified(limit("t-14", "0.01", "1000.00")),
            outcome: "kyc_required",
        },
        Row {
            name: "cancel one's own open order",
            req: Req::CancelOwn("t-1"),
            outcome: "cancelled",
        },
        Row {
            name: "cancel it again",
            req: Req::CancelOwn("t-1"),
            outcome: "order_not_open",
        },
        Row {
            name: "cancel another user's order (BOLA)",
            req: Req::CancelOthers,
            outcome: "order_not_found",
        },
        Row {
            name: "cancel an unknown id",
            req: Req::CancelUnknown,
            outcome: "order_not_found",
        },
        Row {
            name: "over the user's request budget",
            req: Req::Flood(400),
            outcome: "rate_limited",
        },
    ]
}

/// An entry point: answers a request with its outcome and the order (when
/// one was placed or cancelled).
#[async_trait::async_trait]
trait Entry {
    async fn place(&mut self, body: &Value) -> (String, Option<Value>);
    async fn cancel(&mut self, order_id: &str) -> (String, Option<Value>);
}

struct Rest(Trader);

#[async_trait::async_trait]
impl Entry for Rest {
    async fn place(&mut self, body: &Value) -> (String, Option<Value>) {
        let a = self.0.call("POST", "/orders", Some(body.clone())).await;
        match a.status {
            201 => ("created".into(), Some(a.body)),
            200 => ("replayed".into(), Some(a.body)),
            _ => (code(&a.body["error"]), None),
        }
    }

    async fn cancel(&mut self, order_id: &str) -> (String, Option<Value>) {
        let a = self
            .0
            .call("DELETE", &format!("/orders/{order_id}"), None)
            .await;
        match a.status {
            200 => (
                a.body["status"].as_str().unwrap_or("?").to_owned(),
                Some(a.body),
            ),
            _ => (code(&a.body["error"]), None),
        }
    }
}

fn code(error: &Value) -> String {
    error["code"].as_str().unwrap_or("no code").to_owned()
}

/// A socket authenticated as one user; every op gets the next id.
struct Socket {
    ws: common::Ws,
    next_id: i64,
    /// Channel messages read while waiting for answers.
    seen: Vec<Value>,
}

impl Socket {
    async fn open(hub: &RunningHub, token: &str, extra: Value) -> Socket {
        let mut ws = common::connect(hub).await;
        let mut auth = json!({"op": "auth", "id": 0, "token": token});
        if let (Some(a), Some(e)) = (auth.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        send(&mut ws, auth).await;
        let authed = recv_within(&mut ws, 5).await;
        assert_eq!(authed["type"], "authed", "{authed}");
        Socket {
            ws,
            next_id: 1,
            seen: Vec::new(),
        }
    }

    /// Sends `op` with the next id; the answer with that id.
    async fn ask(&mut self, mut op: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        send(&mut self.ws, op).await;
        loop {
            let msg = recv_within(&mut self.ws, 15).await;
            if msg.get("channel").is_none() && msg["id"] == id {
                return msg;
            }
            self.seen.push(msg);
        }
    }
}

#[async_trait::async_trait]
impl Entry for Socket {
    async fn place(&mut self, body: &Value) -> (String, Option<Value>) {
        let a = self.ask(json!({"op": "order.place", "order": body})).await;
        match (a["type"].as_str(), a["created"].as_bool()) {
            (Some("order"), Some(true)) => ("created".into(), Some(a["order"].clone())),
            (Some("order"), Some(false)) => ("replayed".into(), Some(a["order"].clone())),
            _ => (code(&a), None),
        }
    }

    async fn cancel(&mut self, order_id: &str) -> (String, Option<Value>) {
        let a = self
            .ask(json!({"op": "order.cancel", "order_id": order_id}))
            .await;
        match a["type"].as_str() {
            Some("order") => (
                a["order"]["status"].as_str().unwrap_or("?").to_owned(),
                Some(a["order"].clone()),
            ),
            _ => (code(&a), None),
        }
    }
}

/// Runs the table through `entry` (as `user`), with `unverified` for the
/// KYC row and `others` (another user's order id) for the BOLA row; the
/// outcome of every row, by name.
async fn run(
    hub: &RunningHub,
    entry: &mut dyn Entry,
    unverified: &mut dyn Entry,
    others: &str,
) -> Vec<(&'static str, String)> {
    let backlog = &hub.api.as_ref().expect("the hub's API").trading.backlog;
    let mut placed = std::collections::HashMap::new();
    let mut outcomes = Vec::new();
    for row in table() {
        let outcome = match &row.req {
            Req::Place(body) => {
                let (outcome, order) = entry.place(body).await;
                if let Some(order) = order {
                    let cid = body["client_order_id"].as_str().unwrap().to_owned();
                    placed.insert(cid, order["order_id"].as_str().unwrap().to_owned());
                }
                outcome
            }
            Req::PlaceUnverified(body) => unverified.place(body).await.0,
            Req::PlaceWhileBehind(body) => {
                for _ in 0..BACKLOG_MAX {
                    backlog.received();
                }
                let outcome = entry.place(body).await.0;
                for _ in 0..BACKLOG_MAX {
                    backlog.applied();
                }
                outcome
            }
            Req::CancelOwn(cid) => entry.cancel(&placed[*cid]).await.0,
            Req::CancelOthers => entry.cancel(others).await.0,
            Req::CancelUnknown => entry.cancel("01a23a39-fd08-7605-96be-e28eb5415e03").await.0,
            Req::Flood(n) => {
                let bad = with(limit("t-flood", "0.01", "1000.00"), "leverage", json!(1));
                let mut last = String::new();
                for _ in 0..*n {
                    last = entry.place(&bad).await.0;
                    if last != "unknown_field" {
                        break;
                    }
                }
                last
            }
        };
        outcomes.push((row.name, outcome));
    }
    outcomes
}

/// A verified user with funds (USD 10,000) on the hub's sandbox venue.
async fn funded(hub: &RunningHub) -> Trader {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let trader = Trader::verified(hub, &email).await;
    hub.venue
        .as_ref()
        .expect("the hub's venue")
        .credit(&trader.user_id, "USD", 10_000 * 100_000_000)
        .await
        .expect("credited");
    trader
}

/// A registered, logged-in user whose KYC is not verified.
async fn unverified(hub: &RunningHub) -> Trader {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    Trader::registered(hub, &email).await
}

/// The hub's `[api] order_sync_backlog_max`.
const BACKLOG_MAX: usize = 50;

/// A hub whose request budget the table's flood row can exhaust (one
/// request a second, bursts of 40: slow enough a refill that the check
/// right after the flood still finds it empty; at 10 a second a slow
/// machine refilled one token in between) and whose per-connection frame
/// limit it cannot (so `rate_limited` is the REST budget's).
async fn hub() -> RunningHub {
    common::start_hub(|c| {
        c.venue.events_per_sec = 20;
        c.api.requests_per_minute = 60;
        c.api.request_burst = 40;
        c.api.order_sync_backlog_max = BACKLOG_MAX;
        c.limits.frames_per_sec = 10_000;
        c.limits.frame_burst = 10_000;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_table_gives_the_same_outcomes_over_rest_and_the_socket() {
    let hub = hub().await;
    let other = funded(&hub).await;
    let theirs = other
        .limit("theirs-1", "buy", "0.010000", "1000.00", "GTC")
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let theirs = theirs.body["order_id"].as_str().unwrap().to_owned();

    let rest_user = funded(&hub).await;
    let rest_unverified = unverified(&hub).await;
    let mut rest = Rest(rest_user);
    let mut rest_kyc = Rest(rest_unverified);
    let by_rest = run(&hub, &mut rest, &mut rest_kyc, &theirs).await;

    let ws_user = funded(&hub).await;
    let ws_unverified = unverified(&hub).await;
    let mut socket = Socket::open(&hub, &ws_user.token, json!({})).await;
    let mut socket_kyc = Socket::open(&hub, &ws_unverified.token, json!({})).await;
    let by_socket = run(&hub, &mut socket, &mut socket_kyc, &theirs).await;

    for ((row, (name, via_rest)), (_, via_socket)) in table().iter().zip(&by_rest).zip(&by_socket) {
        assert_eq!(
            (via_rest.as_str(), via_socket.as_str()),
            (row.outcome, row.outcome),
            "row {name:?}: REST {via_rest}, socket {via_socket}"
        );
    }
    // The other user's order is untouched.
    let still = other.call("GET", &format!("/orders/{theirs}"), None).await;
    assert_eq!(still.body["status"], "open", "{}", still.body);

    // One budget: the socket's flood exhausted the REST allowance of the
    // same user too (the limiter's key is the user, whichever entry).
    let after = ws_user.call("GET", "/orders", None).await;
    assert_eq!(after.status, 429, "{}", after.body);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_followed_by_the_private_messages_and_cancel_all_lists_what_it_cancelled() {
    let hub = hub().await;
    let trader = funded(&hub).await;
    let mut socket = Socket::open(&hub, &trader.token, json!({})).await;
    let sub = socket
        .ask(json!({"op": "subscribe", "channels": ["orders", "balances"]}))
        .await;
    assert_eq!(sub["type"], "subscribed", "{sub}");

    let mut ids = Vec::new();
    for n in 0..3 {
        let a = socket
            .ask(json!({"op": "order.place", "order": limit(&format!("all-{n}"), "0.010000", "1000.00")}))
            .await;
        assert_eq!(
            (a["type"].as_str(), a["created"].as_bool()),
            (Some("order"), Some(true)),
            "{a}"
        );
        assert!(a.get("channel").is_none(), "an answer has no channel: {a}");
        assert_eq!(a["order"]["status"], "open", "{a}");
        ids.push(a["order"]["order_id"].as_str().unwrap().to_owned());
    }
    // The `orders` message of each placement, and a `balance` (USD locked).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let has_order = |seen: &[Value], id: &str, status: &str| {
        seen.iter().any(|m| {
            m["channel"] == "orders"
                && m["order"]["order_id"] == id
                && m["order"]["status"] == status
        })
    };
    while !(ids.iter().all(|id| has_order(&socket.seen, id, "open"))
        && socket.seen.iter().any(|m| m["channel"] == "balances"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no private messages: {:?}",
            socket.seen
        );
        let m = recv_within(&mut socket.ws, 10).await;
        socket.seen.push(m);
    }

    // Another pair's cancel-all leaves them; this pair's cancels them all.
    let none = socket
        .ask(json!({"op": "order.cancel_all", "pair": "ETH-USD"}))
        .await;
    assert_eq!(
        none,
        json!({"type": "cancelled", "id": none["id"], "order_ids": []})
    );
    let unknown = socket
        .ask(json!({"op": "order.cancel_all", "pair": "FOO-BAR"}))
        .await;
    assert_eq!(unknown["code"], "unknown_pair", "{unknown}");
    let all = socket.ask(json!({"op": "order.cancel_all"})).await;
    assert_eq!(all["type"], "cancelled", "{all}");
    let mut got: Vec<String> = serde_json::from_value(all["order_ids"].clone()).unwrap();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    while !ids
        .iter()
        .all(|id| has_order(&socket.seen, id, "cancelled"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cancelled messages: {:?}",
            socket.seen
        );
        let m = recv_within(&mut socket.ws, 10).await;
        socket.seen.push(m);
    }

    // Order entry needs auth, and a session that is still live.
    let mut anonymous = common::connect(&hub).await;
    send(&mut anonymous, json!({"op": "order.cancel_all", "id": 5})).await;
    let e = recv_within(&mut anonymous, 5).await;
    assert_eq!(
        (e["code"].as_str(), e["id"].as_i64()),
        (Some("unauthorized"), Some(5)),
        "{e}"
    );
    let out = trader.call("POST", "/auth/logout", Some(json!({}))).await;
    assert_eq!(out.status, 204);
    let e = socket
        .ask(json!({"op": "order.place", "order": limit("late", "0.01", "1000.00")}))
        .await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_orders_are_trading_outcomes_not_invalid_frames() {
    let hub = common::start_hub(|c| {
        c.venue.events_per_sec = 20;
        c.limits.max_invalid_frames = 3;
    })
    .await;
    let trader = funded(&hub).await;
    let mut socket = Socket::open(&hub, &trader.token, json!({})).await;
    for _ in 0..6 {
        let e = socket
            .ask(json!({"op": "order.cancel", "order_id": "no-such-order"}))
            .await;
        assert_eq!(e["code"], "order_not_found", "{e}");
        let e = socket
            .ask(json!({"op": "order.place", "order": limit("x", "0.0000001", "1000.00")}))
            .await;
        assert_eq!(e["code"], "invalid_qty", "{e}");
    }
    let pong = socket.ask(json!({"op": "ping"})).await;
    assert_eq!(
        pong["type"], "pong",
        "still open after 12 refused orders: {pong}"
    );
    // A bad frame still counts.
    for _ in 0..3 {
        send(&mut socket.ws, json!({"op": "order.cancel", "id": 99})).await;
    }
    assert_eq!(
        common::close_code(&mut socket.ws, 5).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy)
    );
    hub.stop().await;
}
