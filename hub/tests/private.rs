//! The REST API and the WebSocket side together: a REST client placing a
//! marketable order sees the fill in `GET /orders`, the trade on
//! `trades.PAIR`, the book change on `book.PAIR`, and its own `orders` and
//! `balances` channels (after `auth`).

use crate::common;

use common::{connect, recv_within, send};
use feeds::Venue;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Correct-Horse-9-Battery";

async fn rest(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<String>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The first message, already seen or read within `secs`, for which
/// `pred` holds.
async fn wait_for(
    what: &str,
    ws: &mut common::Ws,
    secs: u64,
    mut pred: impl FnMut(&Value) -> bool,
    seen: &mut Vec<Value>,
) -> Value {
    if let Some(m) = seen.iter().find(|m| pred(m)) {
        return m.clone();
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let msg = recv_within(ws, secs).await;
        seen.push(msg.clone());
        if pred(&msg) {
            return msg;
        }
    }
    let tail: Vec<_> = seen.iter().rev().take(8).collect();
    panic!("no {what} within {secs} s; last seen: {tail:?}");
}

#[tokio::test]
async fn marketable_order_reaches_rest_trades_book_and_private_channels() {
    let hub = common::start_hub(|c| c.venue.events_per_sec = 20).await;
    let base = format!("http://{}", hub.addr);
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        rest(
            &http,
            reqwest::Method::POST,
            format!("{base}{path}"),
            token.map(str::to_owned),
            Some(body),
        )
    };
    let (user_id, token) = common::verified_user(&base, "ws@example.com", PASSWORD).await;
    hub.venue
        .as_ref()
        .unwrap()
        .credit(&user_id, "USD", 1_000_000 * 100_000_000)
        .await
        .unwrap();

    let mut ws = connect(&hub).await;
    // Private channels need auth first.
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "channels": ["orders"]}),
    )
    .await;
    let e = recv_within(&mut ws, 5).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{e}"
    );
    send(&mut ws, json!({"op": "auth", "id": 2, "token": "garbage"})).await;
    let e = recv_within(&mut ws, 5).await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    send(&mut ws, json!({"op": "auth", "id": 3, "token": token})).await;
    let authed = recv_within(&mut ws, 5).await;
    assert_eq!(
        (authed["type"].as_str(), authed["user_id"].as_str()),
        (Some("authed"), Some(user_id.as_str())),
        "{authed}"
    );
    send(&mut ws, json!({"op": "subscribe", "id": 4, "channels": ["orders", "balances", "trades.BTC-USD", "book.BTC-USD"]})).await;
    let mut seen = Vec::new();
    wait_for(
        "subscribed",
        &mut ws,
        5,
        |m| m["type"] == "subscribed",
        &mut seen,
    )
    .await;
    let book_snapshot = wait_for(
        "book.BTC-USD",
        &mut ws,
        5,
        |m| m["channel"] == "book.BTC-USD" && m["type"] == "snapshot",
        &mut seen,
    )
    .await;
    let best_ask = book_snapshot["asks"][0].clone();

    // Take the whole best ask level with an IOC limit at its price.
    let qty = best_ask[1].as_str().unwrap().to_owned();
    let price = best_ask[0].as_str().unwrap().to_owned();
    let (s, order) = post("/orders", Some(&token), json!({"client_order_id": "ws-1", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": qty, "price": price, "time_in_force": "IOC"})).await;
    assert_eq!(s, 201, "{order}");
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    assert!(order["filled_qty"] != "0.000000", "{order}");

    let o = wait_for(
        "orders",
        &mut ws,
        10,
        |m| m["channel"] == "orders",
        &mut seen,
    )
    .await;
    assert_eq!(
        (o["type"].as_str(), o["order"]["order_id"].as_str()),
        (Some("order"), Some(order_id.as_str())),
        "{o}"
    );
    assert_eq!(o["prev_seq"], 0);
    assert!(o["seq"].as_u64().unwrap() >= 1);
    let b = wait_for(
        "balances",
        &mut ws,
        10,
        |m| m["channel"] == "balances",
        &mut seen,
    )
    .await;
    assert_eq!(b["type"], "balance", "{b}");
    assert!(
        b["balance"]["asset"].is_string() && b["balance"]["available"].is_string(),
        "{b}"
    );
    let tr = wait_for(
        "trades.BTC-USD",
        &mut ws,
        10,
        |m| {
            m["channel"] == "trades.BTC-USD"
                && m["trades"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["price"] == price.as_str() && t["side"] == "buy")
        },
        &mut seen,
    )
    .await;
    assert_eq!(tr["type"], "trades");
    // The level the order took is gone from (or reduced in) the book.
    wait_for(
        "book.BTC-USD",
        &mut ws,
        10,
        |m| {
            m["channel"] == "book.BTC-USD"
                && m["type"] == "update"
                && m["asks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l[0] == price.as_str())
        },
        &mut seen,
    )
    .await;
    // Private channel messages chain per channel.
    let mut last = std::collections::HashMap::new();
    for m in seen
        .iter()
        .filter(|m| m["channel"] == "orders" || m["channel"] == "balances")
    {
        let ch = m["channel"].as_str().unwrap().to_owned();
        let prev = last.insert(ch, m["seq"].as_u64().unwrap()).unwrap_or(0);
        assert_eq!(m["prev_seq"].as_u64().unwrap(), prev, "{m}");
    }
    // And GET /orders shows it.
    let (s, list) = rest(
        &http,
        reqwest::Method::GET,
        format!("{base}/orders"),
        Some(token.clone()),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["orders"][0]["order_id"], order_id.as_str());

    // Logout stops the socket's private channels at once: the next update
    // is refused with `unauthorized`, not delivered.
    let (s, _) = post("/auth/logout", Some(&token), json!({})).await;
    assert_eq!(s, 204);
    let (_, login) = post(
        "/auth/login",
        None,
        json!({"email": "ws@example.com", "password": PASSWORD}),
    )
    .await;
    let token2 = login["access_token"].as_str().unwrap().to_owned();
    let (s, _) = post("/orders", Some(&token2), json!({"client_order_id": "ws-2", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.001000", "price": "1000.00"})).await;
    assert_eq!(s, 201);
    let mut after = Vec::new();
    let e = wait_for(
        "unauthorized",
        &mut ws,
        10,
        |m| m["type"] == "error",
        &mut after,
    )
    .await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert!(
        !after
            .iter()
            .any(|m| m["channel"] == "orders" && m["order"]["client_order_id"] == "ws-2"),
        "{after:?}"
    );
    // A fresh `auth` brings them back.
    send(&mut ws, json!({"op": "auth", "id": 9, "token": token2})).await;
    wait_for("authed", &mut ws, 5, |m| m["type"] == "authed", &mut after).await;
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 10, "channels": ["orders"]}),
    )
    .await;
    wait_for(
        "subscribed",
        &mut ws,
        5,
        |m| m["type"] == "subscribed" && m["id"] == 10,
        &mut after,
    )
    .await;
    let (s, o3) = post("/orders", Some(&token2), json!({"client_order_id": "ws-3", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.001000", "price": "1000.00"})).await;
    assert_eq!(s, 201);
    let m = wait_for(
        "orders after re-auth",
        &mut ws,
        10,
        |m| m["channel"] == "orders" && m["order"]["client_order_id"] == "ws-3",
        &mut after,
    )
    .await;
    assert_eq!(m["order"]["order_id"], o3["order_id"]);
    let sub = after
        .iter()
        .position(|m| m["type"] == "subscribed" && m["id"] == 10)
        .unwrap();
    let first = after[sub..]
        .iter()
        .find(|m| m["channel"] == "orders")
        .unwrap();
    assert_eq!(
        first["prev_seq"], 0,
        "first message after resubscribing: {first}"
    );
    hub.stop().await;
}
