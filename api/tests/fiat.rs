//! `/fiat` over a real socket: deposits credited only by the provider's
//! signed webhook (each sandbox provider), payouts, validation,
//! idempotency and the history.

use crate::common;

use common::assert_error;
use common::money::{config_with_delay, start_money, start_money_with};
use feeds::Venue;
use serde_json::json;

const ONE_USD: u64 = 100_000_000;

fn deposit_body(amount: &str, provider: &str, key: &str) -> serde_json::Value {
    json!({"currency": "USD", "amount": amount, "provider": provider, "idempotency_key": key})
}

fn payout_body(amount: &str, key: &str) -> serde_json::Value {
    json!({"currency": "USD", "amount": amount, "provider": "bcb",
           "destination": "GB33BUKB20201555555555", "idempotency_key": key})
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let t = start_money().await;
    let (s, b, _) = t
        .post("/fiat/deposit", None, deposit_body("10", "stripe", "k"))
        .await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b, _) = t.post("/fiat/withdraw", None, payout_body("10", "k")).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b, _) = t.get("/fiat/transactions", None).await;
    assert_error(s, &b, 401, "unauthorized");
}

#[tokio::test]
async fn deposit_needs_verified_kyc_and_opens_nothing_without_it() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (_, token, _) = t.signup("nokyc@example.com").await;
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("10", "stripe", "nk-1"),
        )
        .await;
    assert_error(s, &body, 403, "kyc_required");
    let (_, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]), "no session was opened");
    // Once verified, the same key opens the deposit (the refusal recorded
    // nothing).
    t.verify_kyc(&token).await;
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("10", "stripe", "nk-1"),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["status"], "pending");
}

#[tokio::test]
async fn deposit_is_credited_only_after_the_signed_webhook() {
    let t = start_money_with(config_with_delay(500)).await;
    let (_, token) = t.verified_user("dep@example.com").await;
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("100.25", "stripe", "d-1"),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["status"], "pending");
    assert!(
        body["payment_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{body}"
    );
    let id = body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.balance(&token, "USD").await.2,
        "0.00000000",
        "nothing credited before the provider confirms"
    );
    let pending = t.listed("/fiat/transactions", &token, &id).await.unwrap();
    assert_eq!(pending["status"], "pending");
    let done = t
        .wait_status("/fiat/transactions", &token, &id, "completed")
        .await;
    assert_eq!(done["type"], "deposit");
    assert_eq!(done["currency"], "USD");
    assert_eq!(done["amount"], "100.25000000");
    assert_eq!(done["provider"], "stripe");
    assert_eq!(
        t.balance(&token, "USD").await,
        (
            "100.25000000".into(),
            "0.00000000".into(),
            "100.25000000".into()
        )
    );
    for _ in 0..100 {
        let types = t.event_types();
        let deposits = types
            .iter()
            .filter(|e| *e == "deposit.state_changed")
            .count();
        if deposits >= 3 && types.iter().any(|e| e == "webhook.received") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("events missing: {:?}", t.event_types());
}

#[tokio::test]
async fn every_provider_confirms_through_its_own_scheme() {
    let t = start_money().await;
    let (_, token) = t.verified_user("providers@example.com").await;
    let mut ids = Vec::new();
    for (i, provider) in ["stripe", "banxa", "bcb"].into_iter().enumerate() {
        let (s, body, _) = t
            .post(
                "/fiat/deposit",
                Some(&token),
                deposit_body("10", provider, &format!("p-{i}")),
            )
            .await;
        assert_eq!(s, 201, "{provider}: {body}");
        if provider == "bcb" {
            assert!(body.get("payment_url").is_none(), "{body}");
            assert!(body["instructions"]["iban"].is_string(), "{body}");
            assert!(body["instructions"]["reference"].is_string(), "{body}");
        } else {
            assert!(body["payment_url"].is_string(), "{body}");
        }
        ids.push(body["transaction_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        t.wait_status("/fiat/transactions", &token, id, "completed")
            .await;
    }
    assert_eq!(t.balance(&token, "USD").await.0, "30.00000000");
}

#[tokio::test]
async fn deposit_refuses_bad_requests() {
    let t = start_money().await;
    let (_, token) = t.verified_user("baddep@example.com").await;
    let cases = [
        (
            json!({"currency": "BTC", "amount": "10", "provider": "stripe", "idempotency_key": "a"}),
            422,
            "unsupported_currency",
        ),
        (
            json!({"currency": "XYZ", "amount": "10", "provider": "stripe", "idempotency_key": "b"}),
            422,
            "unsupported_currency",
        ),
        (
            json!({"currency": "EUR", "amount": "10", "provider": "stripe", "idempotency_key": "c"}),
            422,
            "unsupported_currency",
        ),
        (
            json!({"currency": "USD", "amount": "10.001", "provider": "stripe", "idempotency_key": "d"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency": "USD", "amount": "0", "provider": "stripe", "idempotency_key": "e"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency": "USD", "amount": "abc", "provider": "stripe", "idempotency_key": "f"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency": "USD", "amount": "0.50", "provider": "stripe", "idempotency_key": "g"}),
            422,
            "amount_out_of_range",
        ),
        (
            json!({"currency": "USD", "amount": "2000000", "provider": "stripe", "idempotency_key": "h"}),
            422,
            "amount_out_of_range",
        ),
        (
            json!({"currency": "USD", "amount": "10", "provider": "paypal", "idempotency_key": "i"}),
            422,
            "invalid_field",
        ),
        (
            json!({"currency": "USD", "amount": "10", "provider": "stripe", "idempotency_key": " "}),
            422,
            "invalid_field",
        ),
        (
            json!({"currency": "USD", "amount": "10", "provider": "stripe"}),
            422,
            "missing_field",
        ),
        (
            json!({"currency": "USD", "amount": "10", "provider": "stripe", "idempotency_key": "j", "user_id": "x"}),
            400,
            "unknown_field",
        ),
    ];
    for (body, status, code) in cases {
        let (s, answer, _) = t.post("/fiat/deposit", Some(&token), body.clone()).await;
        assert_error(s, &answer, status, code);
    }
    let (_, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]));
}

#[tokio::test]
async fn deposit_replays_its_key_and_conflicts_on_another_body() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (_, token) = t.verified_user("idem@example.com").await;
    let (s1, first, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("25", "banxa", "dk-1"),
        )
        .await;
    assert_eq!(s1, 201, "{first}");
    let (s2, second, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("25.00", "banxa", "dk-1"),
        )
        .await;
    assert_eq!(s2, 201, "{second}");
    assert_eq!(second, first);
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            deposit_body("25", "stripe", "dk-1"),
        )
        .await;
    assert_error(s, &body, 409, "duplicate_idempotency_key");
    let (_, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(list["transactions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn withdraw_needs_kyc_and_funds() {
    let t = start_money().await;
    let (user, token, _) = t.signup("fw-kyc@example.com").await;
    t.venue.credit(&user, "USD", 100 * ONE_USD).await.unwrap();
    let (s, body, _) = t
        .post("/fiat/withdraw", Some(&token), payout_body("10", "w-1"))
        .await;
    assert_error(s, &body, 403, "kyc_required");
    t.verify_kyc(&token).await;
    let (s, body, _) = t
        .post("/fiat/withdraw", Some(&token), payout_body("500", "w-2"))
        .await;
    assert_error(s, &body, 422, "insufficient_funds");
    for (destination, code) in [
        ("", "invalid_destination"),
        (&*"x".repeat(200), "invalid_destination"),
    ] {
        let body = json!({"currency": "USD", "amount": "10", "provider": "stripe",
                          "destination": destination, "idempotency_key": "w-3"});
        let (s, answer, _) = t.post("/fiat/withdraw", Some(&token), body).await;
        assert_error(s, &answer, 422, code);
    }
    let body = json!({"currency": "SOL", "amount": "10", "provider": "stripe",
                      "destination": "GB33", "idempotency_key": "w-4"});
    let (s, answer, _) = t.post("/fiat/withdraw", Some(&token), body).await;
    assert_error(s, &answer, 422, "unsupported_currency");
    assert_eq!(t.balance(&token, "USD").await.0, "100.00000000");
    let (_, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]));
}

#[tokio::test]
async fn withdraw_debits_at_once_and_completes_by_webhook() {
    let t = start_money_with(config_with_delay(400)).await;
    let (user, token) = t.verified_user("fw@example.com").await;
    t.venue.credit(&user, "USD", 100 * ONE_USD).await.unwrap();
    let (s, body, _) = t
        .post("/fiat/withdraw", Some(&token), payout_body("40", "fw-1"))
        .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["status"], "pending");
    let id = body["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.balance(&token, "USD").await,
        (
            "60.00000000".into(),
            "40.00000000".into(),
            "100.00000000".into()
        )
    );
    let (s, again, _) = t
        .post("/fiat/withdraw", Some(&token), payout_body("40.00", "fw-1"))
        .await;
    assert_eq!((s, &again), (202, &body), "replay");
    let (s, conflict, _) = t
        .post("/fiat/withdraw", Some(&token), payout_body("41", "fw-1"))
        .await;
    assert_error(s, &conflict, 409, "duplicate_idempotency_key");
    let done = t
        .wait_status("/fiat/transactions", &token, &id, "completed")
        .await;
    assert_eq!(done["type"], "withdrawal");
    assert_eq!(done["destination"], "GB33BUKB20201555555555");
    assert_eq!(
        t.balance(&token, "USD").await,
        (
            "60.00000000".into(),
            "0.00000000".into(),
            "60.00000000".into()
        )
    );
}

#[tokio::test]
async fn history_is_private_and_paginated() {
    let t = start_money_with(config_with_delay(60_000)).await;
    let (_, a) = t.verified_user("fh-a@example.com").await;
    let (_, b, _) = t.signup("fh-b@example.com").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, body, _) = t
            .post(
                "/fiat/deposit",
                Some(&a),
                deposit_body("10", "stripe", &format!("fh-{i}")),
            )
            .await;
        ids.push(body["transaction_id"].as_str().unwrap().to_owned());
    }
    let (_, page1, _) = t.get("/fiat/transactions?limit=2", Some(&a)).await;
    assert_eq!(page1["transactions"][0]["transaction_id"], ids[2].as_str());
    assert_eq!(page1["transactions"][1]["transaction_id"], ids[1].as_str());
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2, _) = t
        .get(
            &format!("/fiat/transactions?limit=2&cursor={cursor}"),
            Some(&a),
        )
        .await;
    assert_eq!(page2["transactions"][0]["transaction_id"], ids[0].as_str());
    assert_eq!(page2["next_cursor"], json!(null));
    let (_, theirs, _) = t.get("/fiat/transactions", Some(&b)).await;
    assert_eq!(theirs["transactions"], json!([]));
    // Fiat and crypto histories are separate lists.
    let (_, crypto, _) = t.get("/wallets/transactions", Some(&a)).await;
    assert_eq!(crypto["transactions"], json!([]));
    let (s, body, _) = t.get("/fiat/transactions?limit=101", Some(&a)).await;
    assert_error(s, &body, 422, "invalid_limit");
}
