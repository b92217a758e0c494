//! `/wallets` over a real socket: balances, deposit addresses, crypto
//! withdrawals (KYC, validation, idempotency, funds, custody completion
//! and failure through signed Fireblocks webhooks) and the history.

use crate::common;

use api::store::ReceiptStatus;
use api::webhooks::fireblocks::{transaction_body, TransactionReport};
use common::assert_error;
use common::money::{config_with_delay, start_money, start_money_with};
use feeds::Venue;
use serde_json::json;

const BTC_ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
const ONE_BTC: u64 = 100_000_000;
const ETH_TX_HASH: &str = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";

fn withdraw_body(amount: &str, key: &str) -> serde_json::Value {
    json!({"asset": "BTC", "amount": amount, "address": BTC_ADDRESS, "idempotency_key": key})
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let t = start_money().await;
    let (s, b, _) = t.get("/wallets/balances", None).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b, _) = t.get("/wallets/transactions", None).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b, _) = t
        .post("/wallets/deposit-address", None, json!({"asset": "BTC"}))
        .await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b, _) = t
        .post("/wallets/withdraw", None, withdraw_body("0.1", "k"))
        .await;
    assert_error(s, &b, 401, "unauthorized");
}

#[tokio::test]
async fn balances_list_every_asset_as_exact_decimals() {
    let t = start_money().await;
    let (user, token, _) = t.signup("bal@example.com").await;
    t.venue.credit(&user, "USD", 10_050_000_000).await.unwrap();
    let (s, body, _) = t.get("/wallets/balances", Some(&token)).await;
    assert_eq!(s, 200, "{body}");
    let assets: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["asset"].as_str().unwrap())
        .collect();
    for a in ["USD", "BTC", "ETH", "SOL"] {
        assert!(assets.contains(&a), "{a} missing in {body}");
    }
    assert_eq!(
        t.balance(&token, "USD").await,
        (
            "100.50000000".into(),
            "0.00000000".into(),
            "100.50000000".into()
        )
    );
    assert_eq!(t.balance(&token, "BTC").await.2, "0.00000000");
}

#[tokio::test]
async fn deposit_addresses_are_stable_per_user_and_asset() {
    let t = start_money().await;
    let (_, a, _) = t.signup("addr-a@example.com").await;
    let (_, b, _) = t.signup("addr-b@example.com").await;
    let ask = |token: &str, asset: &str| {
        let (token, asset) = (token.to_owned(), asset.to_owned());
        let t = &t;
        async move {
            t.post(
                "/wallets/deposit-address",
                Some(&token),
                json!({"asset": asset}),
            )
            .await
        }
    };
    let (s, first, _) = ask(&a, "BTC").await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["asset"], "BTC");
    assert_eq!(first["network"], "bitcoin");
    assert!(
        first["address"].as_str().unwrap().starts_with("bc1q"),
        "{first}"
    );
    assert_eq!(
        ask(&a, "BTC").await.1,
        first,
        "same user and asset: same address"
    );
    assert_ne!(ask(&b, "BTC").await.1["address"], first["address"]);
    let (_, eth, _) = ask(&a, "ETH").await;
    assert!(eth["address"].as_str().unwrap().starts_with("0x"), "{eth}");
    assert_eq!(eth["network"], "ethereum");
    assert_eq!(ask(&a, "SOL").await.1["network"], "solana");
    assert_eq!(
        ask(&a, "btc").await.1,
        first,
        "asset symbols are case-insensitive"
    );

    for unsupported in ["USD", "DOGE", ""] {
        let (s, body, _) = ask(&a, unsupported).await;
        assert_error(s, &body, 422, "unsupported_asset");
    }
    let (s, body, _) = t
        .post(
            "/wallets/deposit-address",
            Some(&a),
            json!({"asset": "BTC", "extra": 1}),
        )
        .await;
    assert_error(s, &body, 400, "unknown_field");
}

#[tokio::test]
async fn withdraw_needs_verified_kyc() {
    let t = start_money().await;
    let (user, token, _) = t.signup("nokyc@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.1", "k1"),
        )
        .await;
    assert_error(s, &body, 403, "kyc_required");
    assert_eq!(t.balance(&token, "BTC").await.0, "1.00000000");
}

#[tokio::test]
async fn withdraw_refuses_bad_requests_and_changes_nothing() {
    let t = start_money().await;
    let (user, token) = t.verified_user("bad@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let cases = [
        (
            json!({"asset": "BTC", "amount": "0.1", "address": "not-an-address", "idempotency_key": "a"}),
            422,
            "invalid_address",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": "0x742d35cc6634c0532925a3b844bc454e4438f44e", "idempotency_key": "b"}),
            422,
            "invalid_address",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx", "idempotency_key": "c"}),
            422,
            "invalid_address",
        ),
        (
            json!({"asset": "BTC", "amount": "0.000000001", "address": BTC_ADDRESS, "idempotency_key": "d"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"asset": "BTC", "amount": "0", "address": BTC_ADDRESS, "idempotency_key": "e"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"asset": "BTC", "amount": "-1", "address": BTC_ADDRESS, "idempotency_key": "f"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"asset": "BTC", "amount": "1e2", "address": BTC_ADDRESS, "idempotency_key": "g"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"asset": "BTC", "amount": "100000", "address": BTC_ADDRESS, "idempotency_key": "h"}),
            422,
            "amount_out_of_range",
        ),
        (
            json!({"asset": "BTC", "amount": "0.000001", "address": BTC_ADDRESS, "idempotency_key": "i"}),
            422,
            "amount_out_of_range",
        ),
        (
            json!({"asset": "USD", "amount": "1", "address": BTC_ADDRESS, "idempotency_key": "j"}),
            422,
            "unsupported_asset",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": BTC_ADDRESS, "idempotency_key": ""}),
            422,
            "invalid_field",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": BTC_ADDRESS, "idempotency_key": "k".repeat(129)}),
            422,
            "invalid_field",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": BTC_ADDRESS}),
            422,
            "missing_field",
        ),
        (
            json!({"asset": "BTC", "amount": 0.1, "address": BTC_ADDRESS, "idempotency_key": "l"}),
            422,
            "invalid_field",
        ),
        (
            json!({"asset": "BTC", "amount": "0.1", "address": BTC_ADDRESS, "idempotency_key": "m", "fee": "0"}),
            400,
            "unknown_field",
        ),
    ];
    for (body, status, code) in cases {
        let (s, answer, _) = t
            .post("/wallets/withdraw", Some(&token), body.clone())
            .await;
        assert_error(s, &answer, status, code);
    }
    assert_eq!(
        t.balance(&token, "BTC").await,
        (
            "1.00000000".into(),
            "0.00000000".into(),
            "1.00000000".into()
        )
    );
    let (_, list, _) = t.get("/wallets/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]));
}

#[tokio::test]
async fn insufficient_funds_changes_nothing() {
    let t = start_money().await;
    let (user, token) = t.verified_user("poor@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC / 10).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.2", "poor-1"),
        )
        .await;
    assert_error(s, &body, 422, "insufficient_funds");
    assert_eq!(t.balance(&token, "BTC").await.0, "0.10000000");
    let (_, list, _) = t.get("/wallets/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]));
    // The key was not spent: the same key works once funds are there.
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.2", "poor-1"),
        )
        .await;
    assert_eq!(s, 202, "{body}");
}

#[tokio::test]
async fn withdrawal_is_locked_then_completed_by_custody() {
    let t = start_money_with(config_with_delay(400)).await;
    let (user, token) = t.verified_user("wd@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.25", "wd-1"),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["status"], "pending");
    let id = body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.balance(&token, "BTC").await,
        (
            "0.75000000".into(),
            "0.25000000".into(),
            "1.00000000".into()
        ),
        "a pending withdrawal is locked"
    );
    let done = t
        .wait_status("/wallets/transactions", &token, &id, "completed")
        .await;
    assert_eq!(done["type"], "withdrawal");
    assert_eq!(done["asset"], "BTC");
    assert_eq!(done["amount"], "0.25000000");
    assert_eq!(done["address"], BTC_ADDRESS);
    assert_eq!(done["network"], "bitcoin");
    assert_eq!(
        t.balance(&token, "BTC").await,
        (
            "0.75000000".into(),
            "0.00000000".into(),
            "0.75000000".into()
        )
    );
    for _ in 0..100 {
        let types = t.event_types();
        if types
            .iter()
            .filter(|e| *e == "withdrawal.state_changed")
            .count()
            >= 2
            && types.iter().any(|e| e == "webhook.received")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("events missing: {:?}", t.event_types());
}

#[tokio::test]
async fn same_key_replays_and_another_body_conflicts() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (user, token) = t.verified_user("idem@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let (s1, first, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.1", "idem-1"),
        )
        .await;
    assert_eq!(s1, 202, "{first}");
    let (s2, second, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.10", "idem-1"),
        )
        .await;
    assert_eq!(s2, 202, "{second}");
    assert_eq!(second, first, "the same request answers the same");
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.2", "idem-1"),
        )
        .await;
    assert_error(s, &body, 409, "duplicate_idempotency_key");
    assert_eq!(
        t.balance(&token, "BTC").await.0,
        "0.90000000",
        "debited once"
    );
    let (_, list, _) = t.get("/wallets/transactions", Some(&token)).await;
    assert_eq!(list["transactions"].as_array().unwrap().len(), 1);
    // Keys are per user: another user may use the same one.
    let (other, other_token) = t.verified_user("idem2@example.com").await;
    t.venue.credit(&other, "BTC", ONE_BTC).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&other_token),
            withdraw_body("0.1", "idem-1"),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert_ne!(body["transaction_id"], first["transaction_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_debit_once() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (user, token) = t.verified_user("race@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let request = t
                .http
                .post(t.url("/wallets/withdraw"))
                .bearer_auth(&token)
                .json(&withdraw_body("0.1", "race-1"));
            tokio::spawn(async move {
                let resp = request.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (s, body) = task.await.unwrap();
        assert_eq!(s, 202, "{body}");
        ids.insert(body["transaction_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(t.balance(&token, "BTC").await.0, "0.90000000");
}

#[tokio::test]
async fn failed_withdrawal_is_credited_back() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (user, token) = t.verified_user("fail@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.4", "fail-1"),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let id = body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(t.balance(&token, "BTC").await.0, "0.60000000");
    let failed = transaction_body(&TransactionReport {
        fireblocks_id: "fb-test-1",
        external_tx_id: Some(&id),
        user_id: &user,
        status: "FAILED",
        asset: "BTC",
        amount: "0.4",
        destination_address: BTC_ADDRESS,
        tx_hash: "",
    });
    let (s, ack) = t.signed_webhook("fireblocks", &failed).await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    let tx = t
        .wait_status("/wallets/transactions", &token, &id, "failed")
        .await;
    assert_eq!(tx["amount"], "0.40000000");
    assert_eq!(
        t.balance(&token, "BTC").await,
        (
            "1.00000000".into(),
            "0.00000000".into(),
            "1.00000000".into()
        )
    );
    // A late COMPLETED for a failed withdrawal changes nothing.
    let completed = transaction_body(&TransactionReport {
        status: "COMPLETED",
        fireblocks_id: "fb-test-1",
        external_tx_id: Some(&id),
        user_id: &user,
        asset: "BTC",
        amount: "0.4",
        destination_address: BTC_ADDRESS,
        tx_hash: "",
    });
    let receipt = t
        .deliver_handled("fireblocks", &completed, "fb-test-1:COMPLETED")
        .await;
    assert_eq!(receipt.status, ReceiptStatus::Ignored);
    assert_eq!(receipt.action.as_deref(), Some("ignored: already failed"));
    assert_eq!(t.balance(&token, "BTC").await.0, "1.00000000");
}

#[tokio::test]
async fn custody_deposits_to_the_users_address_are_credited() {
    let t = start_money().await;
    let (user, token, _) = t.signup("dep@example.com").await;
    let (_, address, _) = t
        .post(
            "/wallets/deposit-address",
            Some(&token),
            json!({"asset": "ETH"}),
        )
        .await;
    let address = address["address"].as_str().unwrap().to_owned();
    let report = |fireblocks_id: &'static str, to: &str| {
        transaction_body(&TransactionReport {
            fireblocks_id,
            external_tx_id: None,
            user_id: &user,
            status: "COMPLETED",
            asset: "ETH",
            amount: "1.5",
            destination_address: to,
            tx_hash: ETH_TX_HASH,
        })
    };
    t.deliver_rejected(
        "fireblocks",
        &report("fb-in-1", "0x742d35cc6634c0532925a3b844bc454e4438f44e"),
        "fb-in-1:COMPLETED",
        "unknown_address",
    )
    .await;
    let receipt = t
        .deliver_handled(
            "fireblocks",
            &report("fb-in-2", &address),
            "fb-in-2:COMPLETED",
        )
        .await;
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    t.wait_available(&token, "ETH", "1.50000000").await;
    let (_, list, _) = t.get("/wallets/transactions", Some(&token)).await;
    let tx = &list["transactions"][0];
    assert_eq!(tx["type"], "deposit");
    assert_eq!(tx["status"], "completed");
    assert_eq!(tx["amount"], "1.50000000");
    assert_eq!(tx["tx_hash"], ETH_TX_HASH);
    // The same delivery again credits nothing.
    let (s, ack) = t
        .signed_webhook("fireblocks", &report("fb-in-2", &address))
        .await;
    assert_eq!((s, &ack["status"]), (200, &json!("duplicate")), "{ack}");
    assert_eq!(t.balance(&token, "ETH").await.0, "1.50000000");
}

#[tokio::test]
async fn history_is_newest_first_paginated_and_private() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (user, a) = t.verified_user("hist-a@example.com").await;
    let (_, b, _) = t.signup("hist-b@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, body, _) = t
            .post(
                "/wallets/withdraw",
                Some(&a),
                withdraw_body("0.01", &format!("h-{i}")),
            )
            .await;
        assert_eq!(s, 202, "{body}");
        ids.push(body["transaction_id"].as_str().unwrap().to_owned());
    }
    let (s, page1, _) = t.get("/wallets/transactions?limit=2", Some(&a)).await;
    assert_eq!(s, 200, "{page1}");
    let got: Vec<&str> = page1["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(page1["transactions"][0]["status"], "pending");
    let cursor = page1["next_cursor"].as_str().expect("next_cursor");
    let (_, page2, _) = t
        .get(
            &format!("/wallets/transactions?limit=2&cursor={cursor}"),
            Some(&a),
        )
        .await;
    assert_eq!(page2["transactions"][0]["transaction_id"], ids[0].as_str());
    assert_eq!(page2["next_cursor"], json!(null));

    // User B sees none of A's transactions, even with A's cursor.
    let (_, theirs, _) = t.get("/wallets/transactions", Some(&b)).await;
    assert_eq!(theirs["transactions"], json!([]));
    let (_, theirs, _) = t
        .get(&format!("/wallets/transactions?cursor={cursor}"), Some(&b))
        .await;
    assert_eq!(theirs["transactions"], json!([]));

    let (s, body, _) = t.get("/wallets/transactions?limit=0", Some(&a)).await;
    assert_error(s, &body, 422, "invalid_limit");
    let (s, body, _) = t.get("/wallets/transactions?cursor=%25%25", Some(&a)).await;
    assert_error(s, &body, 422, "invalid_cursor");
}

/// The default harness has no sandbox key: the first report generates it
/// (slow in a debug build) without holding up the withdrawal request.
#[tokio::test]
async fn withdrawal_completes_on_a_fresh_data_dir() {
    let t = common::start().await;
    let (user, token) = t.verified_user("fresh@example.com").await;
    t.venue.credit(&user, "BTC", ONE_BTC).await.unwrap();
    let started = std::time::Instant::now();
    let (s, body, _) = t
        .post(
            "/wallets/withdraw",
            Some(&token),
            withdraw_body("0.5", "fresh-1"),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let id = body["transaction_id"].as_str().unwrap();
    t.wait_status("/wallets/transactions", &token, id, "completed")
        .await;
    eprintln!("completed after {:?}", started.elapsed());
}
