//! `/orders` and `/trades/history` over a real socket against the sandbox
//! venue: happy paths, every error code, idempotency, BOLA.

use crate::common;

use common::assert_error;
use feeds::Venue;
use serde_json::{json, Value};
use std::time::Duration;

const USD: u64 = 100_000_000; // one USD, raw at scale 8

/// A verified, funded user: (user_id, access token).
async fn trader(t: &common::TestApi, email: &str) -> (String, String) {
    let (user_id, token, _) = t.signup(email).await;
    t.verify_kyc(&token).await;
    t.venue
        .credit(&user_id, "USD", 1_000_000 * USD)
        .await
        .unwrap();
    (user_id, token)
}

fn resting_buy(coid: &str) -> Value {
    json!({"client_order_id": coid, "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.010000", "price": "1000.00"})
}

#[tokio::test]
async fn place_get_list_cancel() {
    let t = common::start().await;
    let (_, tok) = trader(&t, "a@example.com").await;
    let (s, order, _) = t.post("/orders", Some(&tok), resting_buy("c1")).await;
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["status"], "open");
    assert_eq!(order["client_order_id"], "c1");
    assert_eq!(order["price"], "1000.00");
    assert_eq!(order["qty"], "0.010000");
    assert_eq!(order["filled_qty"], "0.000000");
    assert_eq!(order["avg_fill_price"], Value::Null);
    assert_eq!(order["time_in_force"], "GTC");
    let id = order["order_id"].as_str().unwrap();

    let (s, got, _) = t.get(&format!("/orders/{id}"), Some(&tok)).await;
    assert_eq!((s, &got), (200, &order));
    let (s, list, _) = t.get("/orders?status=open&pair=BTC-USD", Some(&tok)).await;
    assert_eq!(s, 200);
    assert_eq!(list["orders"][0]["order_id"], id);
    assert_eq!(list["next_cursor"], Value::Null);

    let (s, cancelled, _) = t.delete(&format!("/orders/{id}"), Some(&tok)).await;
    assert_eq!(s, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (s, body, _) = t.delete(&format!("/orders/{id}"), Some(&tok)).await;
    assert_error(s, &body, 409, "order_not_open");
    let (_, list, _) = t.get("/orders?status=open", Some(&tok)).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 0);

    // Every state change is in the event log, with the request's id: both
    // events, however long the relay takes, and a while later no more.
    let types = || -> Vec<String> {
        t.events()
            .iter()
            .filter(|e| e.data["order"]["order_id"] == id)
            .map(|e| e.event_type.clone())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while types().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events within 30 s: {:?}",
            types()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(types(), ["order.accepted", "order.cancelled"]);
}

#[tokio::test]
async fn client_order_id_is_the_idempotency_key() {
    let t = common::start().await;
    let (_, tok) = trader(&t, "a@example.com").await;
    let (s, first, _) = t.post("/orders", Some(&tok), resting_buy("same")).await;
    assert_eq!(s, 201);
    // Same body (defaults spelled out, other field order): the same order, 200.
    let again = json!({"price": "1000.0", "qty": "0.01", "type": "limit", "side": "buy", "pair": "BTC-USD",
                       "client_order_id": "same", "time_in_force": "GTC", "post_only": false});
    let (s, second, _) = t.post("/orders", Some(&tok), again).await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["order_id"], first["order_id"]);
    // Different body: 409.
    let mut other = resting_buy("same");
    other["qty"] = json!("0.020000");
    let (s, body, _) = t.post("/orders", Some(&tok), other).await;
    assert_error(s, &body, 409, "duplicate_client_order_id");
    let (_, list, _) = t.get("/orders", Some(&tok)).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    // Concurrent duplicates reach the venue once.
    let reqs = (0..8).map(|_| t.post("/orders", Some(&tok), resting_buy("race")));
    let results = futures_util::future::join_all(reqs).await;
    let created = results.iter().filter(|(s, _, _)| *s == 201).count();
    assert_eq!(created, 1, "{results:?}");
    let winner = &results.iter().find(|r| r.0 == 201).unwrap().1["order_id"];
    for (s, b, _) in &results {
        assert!(
            *s == 201 || (*s == 200 && &b["order_id"] == winner),
            "{s} {b}"
        );
    }
    let orders = t
        .venue
        .orders(
            &t.api
                .store
                .user_by_email("a@example.com")
                .await
                .unwrap()
                .unwrap()
                .user_id,
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), 2, "one venue order per client_order_id");
}

#[tokio::test]
async fn bad_orders_are_refused_and_change_nothing() {
    let t = common::start().await;
    let (_, tok) = trader(&t, "a@example.com").await;
    let cases = [
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.0100001", "price": "1000.00"}),
            422,
            "invalid_qty",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "-1", "price": "1000.00"}),
            422,
            "invalid_qty",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.000001", "price": "1000.00"}),
            422,
            "invalid_qty",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01", "price": "1000.001"}),
            422,
            "invalid_price",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01", "price": "0"}),
            422,
            "invalid_price",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01"}),
            422,
            "missing_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "market", "qty": "0.01", "price": "1.00"}),
            422,
            "invalid_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": 0.01, "price": "1000.00"}),
            422,
            "invalid_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "hold", "type": "limit", "qty": "0.01", "price": "1000.00"}),
            422,
            "invalid_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "FOO-BAR", "side": "buy", "type": "limit", "qty": "0.01", "price": "1000.00"}),
            422,
            "unknown_pair",
        ),
        (
            json!({"client_order_id": "bad id!", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01", "price": "1000.00"}),
            422,
            "invalid_field",
        ),
        (
            json!({"pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01", "price": "1000.00"}),
            422,
            "missing_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "0.01", "price": "1000.00", "user_id": "someone"}),
            400,
            "unknown_field",
        ),
        (
            json!({"client_order_id": "x", "pair": "BTC-USD", "side": "buy", "type": "limit", "qty": "1000000", "price": "1000.00"}),
            422,
            "insufficient_funds",
        ),
    ];
    for (body, status, code) in cases {
        let (s, resp, _) = t.post("/orders", Some(&tok), body.clone()).await;
        assert_eq!(
            (s, resp["error"]["code"].as_str()),
            (status, Some(code)),
            "for {body}: {resp}"
        );
    }
    let (_, list, _) = t.get("/orders", Some(&tok)).await;
    assert_eq!(
        list["orders"].as_array().unwrap().len(),
        0,
        "nothing recorded"
    );
    // A refused client_order_id can be used again.
    let (s, _, _) = t.post("/orders", Some(&tok), resting_buy("x")).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn trading_needs_a_token_and_verified_kyc() {
    let t = common::start().await;
    let (s, body, _) = t.post("/orders", None, resting_buy("c")).await;
    assert_error(s, &body, 401, "unauthorized");
    let (s, body, _) = t.get("/orders", Some("not-a-token")).await;
    assert_error(s, &body, 401, "unauthorized");
    let (_, tok, _) = t.signup("new@example.com").await;
    let (s, body, _) = t.post("/orders", Some(&tok), resting_buy("c")).await;
    assert_error(s, &body, 403, "kyc_required");
}

#[tokio::test]
async fn another_users_orders_are_not_found() {
    let t = common::start().await;
    let (_, a) = trader(&t, "a@example.com").await;
    let (_, b) = trader(&t, "b@example.com").await;
    let (_, order, _) = t.post("/orders", Some(&a), resting_buy("c1")).await;
    let id = order["order_id"].as_str().unwrap();
    let (s, body, _) = t.get(&format!("/orders/{id}"), Some(&b)).await;
    assert_error(s, &body, 404, "order_not_found");
    let (s, body, _) = t.delete(&format!("/orders/{id}"), Some(&b)).await;
    assert_error(s, &body, 404, "order_not_found");
    let (_, list, _) = t.get("/orders", Some(&b)).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 0);
    let (_, still, _) = t.get(&format!("/orders/{id}"), Some(&a)).await;
    assert_eq!(still["status"], "open", "B's cancel changed nothing");
}

#[tokio::test]
async fn marketable_order_fills_and_shows_in_history() {
    let t = common::start().await;
    let (user_id, tok) = trader(&t, "a@example.com").await;
    let body = json!({"client_order_id": "m1", "pair": "BTC-USD", "side": "buy", "type": "market", "qty": "0.010000"});
    let (s, order, _) = t.post("/orders", Some(&tok), body).await;
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["status"], "filled", "{order}");
    assert_eq!(order["filled_qty"], "0.010000");
    let avg = order["avg_fill_price"].as_str().unwrap();
    assert_eq!(
        avg.split('.').nth(1).map(str::len),
        Some(2),
        "avg at price scale: {avg}"
    );
    let id = order["order_id"].as_str().unwrap();
    // Fills arrive through the order sync, one transaction each.
    let sum = |page: &Value| -> rust_decimal::Decimal {
        page["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["qty"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum()
    };
    let mut fills = Value::Null;
    for _ in 0..100 {
        let (_, page, _) = t.get("/trades/history?pair=BTC-USD", Some(&tok)).await;
        fills = page;
        if sum(&fills).to_string() == "0.010000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sum(&fills).to_string(), "0.010000", "{fills}");
    let trades = fills["trades"].as_array().unwrap();
    assert!(trades
        .iter()
        .all(|f| f["order_id"] == id && f["liquidity"] == "taker" && f["side"] == "buy"));
    let balances = t.venue.balances(&user_id).await.unwrap();
    let btc = balances.iter().find(|(a, _)| a == "BTC").unwrap().1;
    assert_eq!(btc.available, 1_000_000, "0.01 BTC at scale 8");
}

#[tokio::test]
async fn lists_paginate_newest_first() {
    let t = common::start().await;
    let (_, tok) = trader(&t, "a@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (s, o, _) = t
            .post("/orders", Some(&tok), resting_buy(&format!("p{i}")))
            .await;
        assert_eq!(s, 201);
        ids.push(o["order_id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/orders?limit=2&cursor={c}"),
            None => "/orders?limit=2".to_owned(),
        };
        let (s, page, _) = t.get(&path, Some(&tok)).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (s, body, _) = t.get("/orders?limit=101", Some(&tok)).await;
    assert_error(s, &body, 422, "invalid_limit");
    let (s, body, _) = t.get("/orders?cursor=%25%25", Some(&tok)).await;
    assert_error(s, &body, 422, "invalid_cursor");
    let (s, body, _) = t.get("/orders?status=weird", Some(&tok)).await;
    assert_error(s, &body, 422, "invalid_field");
}

#[tokio::test]
async fn orders_survive_a_restart_and_an_order_the_new_venue_lost_cancels() {
    let t = common::start().await;
    let (_, tok) = trader(&t, "a@example.com").await;
    let (s, order, _) = t.post("/orders", Some(&tok), resting_buy("keep")).await;
    assert_eq!(s, 201);
    let id = order["order_id"].as_str().unwrap().to_owned();
    let dir = t.stop().await;

    // A new process on the same data directory; the in-process sandbox is new.
    let t = common::start_in(common::test_config(), dir).await;
    let (s, got, _) = t.get(&format!("/orders/{id}"), Some(&tok)).await;
    assert_eq!(s, 200, "the token and the order survive: {got}");
    assert_eq!(got, order);
    let (s, cancelled, _) = t.delete(&format!("/orders/{id}"), Some(&tok)).await;
    assert_eq!(s, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    // The idempotency key survives too.
    let (s, replay, _) = t.post("/orders", Some(&tok), resting_buy("keep")).await;
    assert_eq!((s, &replay["order_id"]), (200, &order["order_id"]));
}

/// While the order sync holds `order_sync_backlog_max` venue events, a new
/// order is refused with 503 `overloaded` before it reaches the venue; a
/// replay of an earlier `client_order_id` and a cancel still answer, and
/// once the backlog is below the limit orders go through again. (The
/// limit at exactly `max` held is `backlog.rs`'s unit test.)
#[tokio::test]
async fn new_orders_wait_while_the_order_sync_is_behind() {
    // Above the cancel's own venue events (its order report and the
    // released hold), which may still be held when the sync catches up.
    const MAX: usize = 8;
    let t = common::start_with(api::ApiConfig {
        order_sync_backlog_max: MAX,
        ..common::test_config()
    })
    .await;
    let (user, tok) = trader(&t, "behind@example.com").await;
    let backlog = &t.api.trading.backlog;
    let (s, first, _) = t.post("/orders", Some(&tok), resting_buy("c1")).await;
    assert_eq!(s, 201, "{first}");
    // The sync counts each venue event in and out: after the order's
    // events are applied it holds none.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while backlog.held() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync still holds {} events",
            backlog.held()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The sync falls behind: as many events held as the limit.
    for _ in 0..MAX {
        backlog.received();
    }
    let (s, body, h) = t.post("/orders", Some(&tok), resting_buy("c2")).await;
    assert_error(s, &body, 503, "overloaded");
    assert_eq!(h["retry-after"], "1");
    let at_venue = t.venue.orders(&user).await.unwrap();
    assert_eq!(at_venue.len(), 1, "nothing reached the venue: {at_venue:?}");
    let (_, list, _) = t.get("/orders", Some(&tok)).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1, "{list}");
    let (s, replay, _) = t.post("/orders", Some(&tok), resting_buy("c1")).await;
    assert_eq!((s, &replay["order_id"]), (200, &first["order_id"]));
    let id = first["order_id"].as_str().unwrap();
    let (s, cancelled, _) = t.delete(&format!("/orders/{id}"), Some(&tok)).await;
    assert_eq!((s, &cancelled["status"]), (200, &json!("cancelled")));

    // The sync catches up on the events it was behind by: below the limit
    // again, whatever of the cancel's own events it still holds.
    for _ in 0..MAX {
        backlog.applied();
    }
    let (s, second, _) = t.post("/orders", Some(&tok), resting_buy("c2")).await;
    assert_eq!(s, 201, "{second}");
}
