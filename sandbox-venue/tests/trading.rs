//! Trading over HTTP: balances, orders, matching between two users, and
//! the contract's error codes (with nothing changed by a refused call).

use crate::common;

use common::{price, start, TestVenue, CREATE_ORDER, ORDER_FIELDS};
use serde_json::{json, Value};

async fn balance(t: &TestVenue, user: &str, asset: &str) -> Value {
    let data = t
        .data(
            "query($u: ID!) { user(id: $u) { id balances { userId asset available locked total venueTs } } }",
            json!({"u": user}),
        )
        .await;
    assert_eq!(data["user"]["id"], user);
    data["user"]["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == asset)
        .cloned()
        .unwrap_or_else(|| panic!("{asset} missing: {data}"))
}

async fn order(t: &TestVenue, user: &str, id: &str) -> Value {
    t.data(
        &format!("query($u: ID!, $id: ID!) {{ order(userId: $u, id: $id) {{ {ORDER_FIELDS} }} }}"),
        json!({"u": user, "id": id}),
    )
    .await["order"]
        .clone()
}

const CANCEL: &str = "mutation($u: ID!, $id: ID!) { cancelOrder(userId: $u, id: $id) { id status reason filledQty } }";

#[tokio::test]
async fn a_resting_order_locks_funds_and_cancelling_it_releases_them() {
    let t = start().await;
    let credited = t.credit("alice", "USD", "1000").await;
    assert_eq!(
        credited,
        json!({"available": "1000.00000000", "locked": "0.00000000", "total": "1000.00000000"})
    );
    let (bid, _) = t.btc_top().await;
    let limit = bid - 100;
    let placed = t
        .data(
            CREATE_ORDER,
            json!({"input": {
                "userId": "alice", "clientId": "c-1", "pair": "BTC-USD", "side": "BUY",
                "type": "LIMIT", "price": price(limit), "qty": "0.001",
            }}),
        )
        .await["createOrder"]
        .clone();
    assert_eq!(placed["status"], "OPEN");
    assert_eq!(placed["clientId"], "c-1");
    assert_eq!(placed["userId"], "alice");
    assert_eq!(placed["type"], "LIMIT");
    assert_eq!(placed["price"], price(limit));
    assert_eq!(placed["qty"], "0.001000", "written at the pair's qty scale");
    assert_eq!(placed["filledQty"], "0.000000");
    assert_eq!(placed["filledNotional"], "0.00000000");
    assert_eq!(placed["timeInForce"], "GTC", "default");
    assert_eq!(placed["postOnly"], false, "default");
    assert_eq!(placed["reason"], Value::Null);
    assert!(placed["createdTs"].as_u64().unwrap() > 0);
    let id = placed["id"].as_str().unwrap().to_string();

    // price × 0.001 BTC, at 8 decimals: cents × 1000 raw.
    let locked = limit * 1000;
    let usd = balance(&t, "alice", "USD").await;
    assert_eq!(
        usd["locked"],
        format!("{}.{:08}", locked / 100_000_000, locked % 100_000_000)
    );
    assert_eq!(usd["total"], "1000.00000000");
    assert_eq!(usd["userId"], "alice");

    assert_eq!(order(&t, "alice", &id).await, placed);
    let listed = t
        .data(
            "query($u: ID!) { orders(userId: $u) { id status } }",
            json!({"u": "alice"}),
        )
        .await;
    assert_eq!(listed["orders"], json!([{"id": id, "status": "OPEN"}]));

    assert_eq!(
        t.error_code(CANCEL, json!({"u": "bob", "id": id})).await,
        "ORDER_NOT_FOUND",
        "another user's order"
    );
    let cancelled = t.data(CANCEL, json!({"u": "alice", "id": id})).await["cancelOrder"].clone();
    assert_eq!(
        cancelled,
        json!({"id": id, "status": "CANCELLED", "reason": "user_cancel", "filledQty": "0.000000"})
    );
    let usd = balance(&t, "alice", "USD").await;
    assert_eq!(usd["available"], "1000.00000000");
    assert_eq!(usd["locked"], "0.00000000");
    assert_eq!(
        t.error_code(CANCEL, json!({"u": "alice", "id": id})).await,
        "ORDER_NOT_OPEN"
    );
    assert_eq!(
        t.error_code(CANCEL, json!({"u": "alice", "id": "12345"}))
            .await,
        "ORDER_NOT_FOUND"
    );
    let missing = format!("query {{ order(userId: \"bob\", id: \"{id}\") {{ id }} }}");
    assert_eq!(t.error_code(&missing, json!({})).await, "ORDER_NOT_FOUND");
    t.stop().await;
}

#[tokio::test]
async fn two_users_trade_and_both_see_fills_notional_and_balances() {
    let t = start().await;
    let (bid, ask) = t.btc_top().await;
    assert!(ask - bid >= 2, "the seeded spread leaves room inside it");
    let inside = ask - 1;
    t.credit("seller", "BTC", "0.5").await;
    t.credit("buyer", "USD", "1000").await;
    let sell = t.limit("seller", "SELL", &price(inside), "0.002").await;
    assert_eq!(sell["status"], "OPEN");

    let buy = t
        .data(
            CREATE_ORDER,
            json!({"input": {
                "userId": "buyer", "pair": "BTC-USD", "side": "BUY", "type": "LIMIT",
                "price": price(inside), "qty": "0.002", "timeInForce": "IOC",
            }}),
        )
        .await["createOrder"]
        .clone();
    assert_eq!(buy["status"], "FILLED");
    assert_eq!(buy["filledQty"], "0.002000");
    assert_eq!(buy["timeInForce"], "IOC");
    // inside (cents) × 2000 (qty raw) at 2 + 6 decimals.
    let notional = inside * 2000;
    let notional = format!("{}.{:08}", notional / 100_000_000, notional % 100_000_000);
    assert_eq!(buy["filledNotional"], notional);
    let sell = order(&t, "seller", sell["id"].as_str().unwrap()).await;
    assert_eq!(sell["status"], "FILLED");
    assert_eq!(sell["filledNotional"], notional);

    let btc = balance(&t, "seller", "BTC").await;
    assert_eq!(btc["total"], "0.49800000");
    assert_eq!(btc["locked"], "0.00000000");
    assert_eq!(balance(&t, "seller", "USD").await["available"], notional);
    assert_eq!(balance(&t, "buyer", "BTC").await["available"], "0.00200000");

    let filled = "query($u: ID!, $s: OrderStatus, $p: String) { orders(userId: $u, status: $s, pair: $p) { id } }";
    let ids = |v: Value| v["orders"].as_array().unwrap().len();
    assert_eq!(
        ids(t.data(filled, json!({"u": "buyer", "s": "FILLED"})).await),
        1
    );
    assert_eq!(
        ids(t.data(filled, json!({"u": "buyer", "s": "OPEN"})).await),
        0
    );
    assert_eq!(
        ids(t.data(filled, json!({"u": "buyer", "p": "ETH-USD"})).await),
        0
    );
    assert_eq!(
        t.error_code(filled, json!({"u": "buyer", "p": "XRP-USD"}))
            .await,
        "UNKNOWN_PAIR"
    );
    let book = t
        .data("{ orderBook(pair: \"BTC-USD\") { tradeSeq } }", json!({}))
        .await;
    assert_eq!(book["orderBook"]["tradeSeq"], 1, "one trade batch so far");
    t.stop().await;
}

#[tokio::test]
async fn refused_orders_and_amounts_carry_the_contract_codes_and_change_nothing() {
    let t = start().await;
    let (bid, _) = t.btc_top().await;
    let order = |fields: Value| {
        let mut input = json!({
            "userId": "carol", "pair": "BTC-USD", "side": "BUY", "type": "LIMIT",
            "price": price(bid - 100), "qty": "0.001",
        });
        for (k, v) in fields.as_object().unwrap() {
            input[k] = v.clone();
        }
        json!({ "input": input })
    };
    assert_eq!(
        t.error_code(CREATE_ORDER, order(json!({}))).await,
        "INSUFFICIENT_FUNDS"
    );
    t.credit("carol", "USD", "100").await;
    let cases = [
        (json!({"pair": "DOGE-USD"}), "UNKNOWN_PAIR"),
        (json!({"price": "64000.001"}), "INVALID_ORDER"),
        (json!({"price": "0"}), "INVALID_ORDER"),
        (json!({"qty": "0.0000001"}), "INVALID_ORDER"),
        (json!({"qty": "0.000001"}), "INVALID_ORDER"),
        (json!({"qty": "1e-3"}), "INVALID_ORDER"),
        (json!({"type": "MARKET"}), "INVALID_ORDER"),
        (json!({"price": null}), "INVALID_ORDER"),
        (json!({"clientId": "x".repeat(129)}), "INVALID_ORDER"),
        (json!({"qty": "10"}), "INSUFFICIENT_FUNDS"),
        (json!({"userId": ""}), "BAD_USER_INPUT"),
    ];
    for (change, code) in cases {
        assert_eq!(
            t.error_code(CREATE_ORDER, order(change.clone())).await,
            code,
            "{change}"
        );
    }
    // A Decimal must be a string: a JSON number fails validation.
    let body = t.gql(CREATE_ORDER, order(json!({"qty": 0.001}))).await;
    assert!(
        body["errors"].is_array() && body["data"].is_null(),
        "{body}"
    );

    let credit = "mutation($a: String!, $n: Decimal!) { creditBalance(userId: \"carol\", asset: $a, amount: $n) { total } }";
    let debit = "mutation($a: String!, $n: Decimal!) { debitBalance(userId: \"carol\", asset: $a, amount: $n) { available total } }";
    assert_eq!(
        t.error_code(credit, json!({"a": "XRP", "n": "1"})).await,
        "UNKNOWN_ASSET"
    );
    for bad in ["0", "-1", "1.123456789", "", "abc", "1e5"] {
        assert_eq!(
            t.error_code(credit, json!({"a": "USD", "n": bad})).await,
            "INVALID_AMOUNT",
            "{bad:?}"
        );
    }
    assert_eq!(
        t.error_code(debit, json!({"a": "USD", "n": "100.00000001"}))
            .await,
        "INSUFFICIENT_FUNDS"
    );
    let usd = balance(&t, "carol", "USD").await;
    assert_eq!(usd["available"], "100.00000000", "nothing changed");
    assert_eq!(usd["locked"], "0.00000000");
    assert_eq!(
        t.data("query { orders(userId: \"carol\") { id } }", json!({}))
            .await["orders"],
        json!([])
    );
    let debited = t.data(debit, json!({"a": "USD", "n": "40.5"})).await;
    assert_eq!(
        debited["debitBalance"],
        json!({"available": "59.50000000", "total": "59.50000000"})
    );
    t.stop().await;
}
