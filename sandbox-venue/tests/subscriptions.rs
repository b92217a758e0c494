//! Subscriptions over `graphql-transport-ws`: book snapshot then deltas
//! that rebuild the queried book, trade batches, user events, errors,
//! client `complete`, and the server closing connections when it stops.

use crate::common;

use common::{error_message_code, price, start, start_with, TestVenue, CREATE_ORDER};
use orderbook::{BookDelta, L2Book, MarketSpec, Qty, Side};
use sandbox_venue::ServerLimits;
use serde_json::{json, Value};
use std::time::Duration;

pub const BOOK: &str = "subscription($p: String!) {
    orderBookUpdates(pair: $p) {
        pair epoch kind seq tradeSeq reason venueTs bids { price qty } asks { price qty }
    }
}";

fn btc_usd() -> MarketSpec {
    MarketSpec::new("BTC-USD", 2, 6, Qty(10)).unwrap()
}

fn parse_levels(spec: &MarketSpec, side: Side, levels: &Value) -> Vec<BookDelta> {
    levels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| BookDelta {
            side,
            price: spec.parse_price(l["price"].as_str().unwrap()).unwrap(),
            qty: spec.parse_qty(l["qty"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

/// Applies a book event (snapshot or delta) to `book`.
fn apply(spec: &MarketSpec, book: &mut L2Book, event: &Value) {
    let bids = parse_levels(spec, Side::Buy, &event["bids"]);
    let asks = parse_levels(spec, Side::Sell, &event["asks"]);
    if event["kind"] == "SNAPSHOT" {
        let pairs = |d: &[BookDelta]| d.iter().map(|d| (d.price, d.qty)).collect::<Vec<_>>();
        book.apply_snapshot(&pairs(&bids), &pairs(&asks)).unwrap();
    } else {
        book.apply_deltas(&[bids, asks].concat()).unwrap();
    }
}

#[tokio::test]
async fn book_updates_are_a_snapshot_then_consecutive_deltas_that_rebuild_the_queried_book() {
    let t = start_with(200, ServerLimits::default()).await;
    let spec = btc_usd();
    let mut ws = t.ws().await;
    ws.subscribe("book", BOOK, json!({"p": "BTC-USD"})).await;
    let snapshot = ws.next_data("book").await["orderBookUpdates"].clone();
    assert_eq!(snapshot["kind"], "SNAPSHOT");
    assert_eq!(snapshot["reason"], "subscribe");
    assert_eq!(snapshot["pair"], "BTC-USD");
    let epoch = snapshot["epoch"].clone();
    let mut book = L2Book::new();
    apply(&spec, &mut book, &snapshot);
    let mut seq = snapshot["seq"].as_u64().unwrap();

    let next_delta = async |ws: &mut common::WsClient, book: &mut L2Book, seq: &mut u64| {
        let event = ws.next_data("book").await["orderBookUpdates"].clone();
        assert_eq!(event["kind"], "DELTA", "{event}");
        assert_eq!(
            event["seq"].as_u64().unwrap(),
            *seq + 1,
            "no gap, no repeat"
        );
        assert_eq!(event["epoch"], epoch);
        assert_eq!(event["reason"], Value::Null);
        assert_eq!(event["pair"], "BTC-USD");
        apply(&spec, book, &event);
        *seq += 1;
    };
    for _ in 0..20 {
        next_delta(&mut ws, &mut book, &mut seq).await;
    }

    let queried = t
        .data(
            "{ orderBook(pair: \"BTC-USD\") { epoch seq bids { price qty } asks { price qty } } }",
            json!({}),
        )
        .await["orderBook"]
        .clone();
    let target = queried["seq"].as_u64().unwrap();
    assert!(target >= seq, "the venue is never behind its subscribers");
    assert_eq!(queried["epoch"], snapshot["epoch"]);
    while seq < target {
        next_delta(&mut ws, &mut book, &mut seq).await;
    }
    let mut expected = L2Book::new();
    apply(
        &spec,
        &mut expected,
        &json!({"kind": "SNAPSHOT", "bids": queried["bids"], "asks": queried["asks"]}),
    );
    assert_eq!(
        book.levels(),
        expected.levels(),
        "same levels at seq {target}"
    );
    t.stop().await;
}

/// A seller rests inside the spread and a buyer takes it (IOC): one trade.
async fn cross(t: &TestVenue, qty: &str) -> u64 {
    let (_, ask) = t.btc_top().await;
    let inside = ask - 1;
    t.limit("seller", "SELL", &price(inside), qty).await;
    let buy = t
        .data(
            CREATE_ORDER,
            json!({"input": {"userId": "buyer", "pair": "BTC-USD", "side": "BUY",
                "type": "LIMIT", "price": price(inside), "qty": qty, "timeInForce": "IOC"}}),
        )
        .await;
    assert_eq!(buy["createOrder"]["status"], "FILLED");
    inside
}

#[tokio::test]
async fn trades_arrive_as_consecutive_batches_with_the_aggressor_side() {
    let t = start().await;
    t.credit("seller", "BTC", "1").await;
    t.credit("buyer", "USD", "10000").await;
    let mut ws = t.ws().await;
    ws.subscribe(
        "t",
        "subscription { trades(pair: \"BTC-USD\") { pair epoch seq venueTs trades { id price qty side venueTs } } }",
        json!({}),
    )
    .await;
    // Let the subscription reach the venue before trading.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first_price = cross(&t, "0.002").await;
    let batch = ws.next_data("t").await["trades"].clone();
    assert_eq!(batch["pair"], "BTC-USD");
    assert_eq!(batch["seq"], 1);
    let trades = batch["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0]["price"], price(first_price));
    assert_eq!(trades[0]["qty"], "0.002000");
    assert_eq!(trades[0]["side"], "BUY", "the buyer was the aggressor");
    let first_id = trades[0]["id"].as_u64().unwrap();

    cross(&t, "0.001").await;
    let batch = ws.next_data("t").await["trades"].clone();
    assert_eq!(batch["seq"], 2);
    assert!(batch["trades"][0]["id"].as_u64().unwrap() > first_id);
    t.stop().await;
}

const USER_EVENTS: &str = "subscription { userEvents {
    __typename
    ... on Order { id clientId userId status locked: qty }
    ... on Balance { userId asset available locked }
    ... on Fill { userId qty maker }
} }";

#[tokio::test]
async fn user_events_orders_and_balances_follow_the_venue() {
    let t = start().await;
    let mut all = t.ws().await;
    all.subscribe("all", USER_EVENTS, json!({})).await;
    let mut mine = t.ws().await;
    mine.subscribe(
        "orders",
        "subscription { userOrders(userId: \"erin\") { userId clientId status } }",
        json!({}),
    )
    .await;
    mine.subscribe(
        "balances",
        "subscription { userBalances(userId: \"erin\") { userId asset available locked } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    t.credit("frank", "USD", "5").await;
    let event = all.next_data("all").await["userEvents"].clone();
    assert_eq!(
        event,
        json!({"__typename": "Balance", "userId": "frank", "asset": "USD",
               "available": "5.00000000", "locked": "0.00000000"})
    );

    t.credit("erin", "USD", "100").await;
    let (bid, _) = t.btc_top().await;
    let placed = t
        .data(
            CREATE_ORDER,
            json!({"input": {"userId": "erin", "clientId": "erin-1", "pair": "BTC-USD",
                "side": "BUY", "type": "LIMIT", "price": price(bid - 100), "qty": "0.001"}}),
        )
        .await["createOrder"]
        .clone();

    // Every user's events: erin's credit, then her lock and her order.
    let credit = all.next_data("all").await["userEvents"].clone();
    assert_eq!(credit["userId"], "erin");
    assert_eq!(credit["available"], "100.00000000");
    let mut saw_order = false;
    let mut saw_lock = false;
    while !(saw_order && saw_lock) {
        let event = all.next_data("all").await["userEvents"].clone();
        match event["__typename"].as_str().unwrap() {
            "Order" => {
                assert_eq!(event["id"], placed["id"]);
                assert_eq!(event["clientId"], "erin-1");
                assert_eq!(event["status"], "OPEN");
                saw_order = true;
            }
            "Balance" => {
                assert_eq!(event["userId"], "erin");
                assert_ne!(event["locked"], "0.00000000");
                saw_lock = true;
            }
            other => panic!("unexpected {other}: {event}"),
        }
    }

    // Erin's own streams skip frank's credit.
    let mut balances = Vec::new();
    let mut orders = Vec::new();
    while balances.len() < 2 || orders.is_empty() {
        let message = mine.recv().await;
        assert_eq!(message["type"], "next", "{message}");
        let data = &message["payload"]["data"];
        match message["id"].as_str().unwrap() {
            "balances" => balances.push(data["userBalances"].clone()),
            "orders" => orders.push(data["userOrders"].clone()),
            other => panic!("unknown id {other}"),
        }
    }
    assert!(
        balances.iter().all(|b| b["userId"] == "erin"),
        "{balances:?}"
    );
    assert_eq!(balances[0]["available"], "100.00000000");
    assert_eq!(
        orders,
        [json!({"userId": "erin", "clientId": "erin-1", "status": "OPEN"})]
    );
    assert!(
        mine.recv_within(Duration::from_millis(300)).await.is_none(),
        "nothing else for erin"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_failed_subscription_is_an_error_message_and_complete_ends_one() {
    let t = start().await;
    let mut ws = t.ws().await;
    ws.subscribe("bad", BOOK, json!({"p": "DOGE-USD"})).await;
    let refused = ws.recv().await;
    assert_eq!(refused["id"], "bad");
    assert_eq!(error_message_code(&refused), "UNKNOWN_PAIR");
    ws.subscribe("invalid", "subscription { nope }", json!({}))
        .await;
    let invalid = ws.recv().await;
    assert_eq!(invalid["type"], "error");
    assert_eq!(invalid["id"], "invalid");

    ws.subscribe("book", BOOK, json!({"p": "BTC-USD"})).await;
    assert_eq!(
        ws.next_data("book").await["orderBookUpdates"]["kind"],
        "SNAPSHOT"
    );
    ws.complete("book").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.credit("gina", "USD", "100").await;
    let (bid, _) = t.btc_top().await;
    t.limit("gina", "BUY", &price(bid - 100), "0.001").await;
    assert!(
        ws.recv_within(Duration::from_millis(300)).await.is_none(),
        "no delta after complete"
    );

    // A query over the socket runs once and completes.
    ws.subscribe("q", "{ markets { pair } }", json!({})).await;
    assert_eq!(ws.next_data("q").await["markets"][0]["pair"], "BTC-USD");
    assert_eq!(ws.expect_type("complete").await["id"], "q");
    t.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_websockets_with_going_away() {
    let t = start().await;
    let mut ws = t.ws().await;
    ws.subscribe("book", BOOK, json!({"p": "BTC-USD"})).await;
    ws.next_data("book").await;
    let stopping = tokio::spawn(t.stop());
    assert_eq!(ws.expect_close().await, 1001);
    stopping.await.unwrap();
}
