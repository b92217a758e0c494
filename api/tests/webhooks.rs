//! `POST /webhooks/{provider}` over a real socket, playing each provider
//! with its own signature scheme: bad or stale signatures change nothing,
//! a verified delivery is answered `accepted` at once and applied by the
//! webhook applier once per delivery id (also under concurrent deliveries,
//! concurrent appliers, and a restart between receipt and apply; on SQS
//! and DynamoDB too, a worker process killed between the two), and a
//! webhook may settle only its own user's matching transaction (anything
//! else is a `rejected` receipt that changed nothing).

mod applier;
use crate::common;
mod sqs_worker;

use api::store::ReceiptStatus;
use api::webhooks::delivery::Report;
use api::webhooks::notice::{Direction, Outcome};
use api::webhooks::{banxa, bcb, stripe};
use common::assert_error;
use common::money::{config_with_delay, start_money, start_money_with};
use common::TestApi;
use serde_json::json;

/// A server whose sandbox providers never report during a test, so the
/// test plays the provider.
async fn quiet() -> TestApi {
    start_money_with(config_with_delay(600_000)).await
}

/// Opens a USD deposit of `amount` with `provider` for a new verified
/// user: (token, user, tx id).
async fn open_deposit(
    t: &TestApi,
    email: &str,
    provider: &str,
    amount: &str,
) -> (String, String, String) {
    let (user, token) = t.verified_user(email).await;
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            json!({"currency": "USD", "amount": amount, "provider": provider, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    (
        token,
        user,
        body["transaction_id"].as_str().unwrap().to_owned(),
    )
}

fn report<'a>(user: &'a str, tx: &'a str, amount: &'a str, outcome: Outcome) -> Report<'a> {
    Report {
        direction: Direction::In,
        outcome,
        user_id: user,
        transaction_id: tx,
        provider_ref: "ref_1",
        currency: "USD",
        amount,
    }
}

fn stripe_paid(user: &str, tx: &str, amount: &str, webhook_id: &str) -> Vec<u8> {
    stripe::event_body(&report(user, tx, amount, Outcome::Completed), webhook_id)
}

#[tokio::test]
async fn unknown_provider_is_404() {
    let t = start_money().await;
    let (s, body) = t.post_webhook("paypal", &[], b"{}").await;
    assert_error(s, &body, 404, "unknown_provider");
    let (s, body) = t.post_webhook("Stripe", &[], b"{}").await;
    assert_error(s, &body, 404, "unknown_provider");
}

/// A correctly signed body nested past the bounds is refused naming the
/// limit before it is parsed, for every provider, and the server carries on.
#[tokio::test]
async fn signed_bodies_over_the_bounds_are_400_for_every_provider() {
    let t = quiet().await;
    let deep = format!(
        r#"{{"id":"evt_deep","x":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    for provider in ["stripe", "banxa", "bcb", "fireblocks", "sumsub"] {
        let (s, answer) = t.signed_webhook(provider, deep.as_bytes()).await;
        assert_error(s, &answer, 400, "invalid_payload");
        assert_eq!(
            answer["error"]["message"], "body refused: input nests deeper than 32 levels",
            "{provider}"
        );
    }
    let (s, _) = t.post_webhook("stripe", &[], b"{}").await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_change_nothing() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "sig@example.com", "stripe", "50").await;
    let body = stripe_paid(&user, &tx, "50.00", "evt_sig_1");
    let now = chrono::Utc::now().timestamp();
    let wrong = api::secret::Secret::new("whsec_wrong");
    let good = stripe::sign(&t.api.webhook_keys.stripe.current(), now, &body);
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"amount\":5000", "\"amount\":500000");
    assert_ne!(tampered.as_bytes(), body.as_slice());
    // (Stripe-Signature value, body); `None`: no header at all.
    let attempts: Vec<(Option<String>, Vec<u8>)> = vec![
        (None, body.clone()),
        (Some(String::new()), body.clone()),
        (Some("garbage".into()), body.clone()),
        (Some(stripe::sign(&wrong, now, &body)), body.clone()),
        (Some(good.clone()), tampered.into_bytes()),
        (Some(format!("t={now},v1={}", "0".repeat(64))), body.clone()),
    ];
    for (signature, payload) in attempts {
        let headers: Vec<(&str, String)> = signature
            .into_iter()
            .map(|v| ("Stripe-Signature", v))
            .collect();
        let (s, answer) = t.post_webhook("stripe", &headers, &payload).await;
        assert_error(s, &answer, 401, "invalid_signature");
    }
    // Each other provider refuses an unsigned or wrongly signed body too.
    for (provider, header) in [
        ("banxa", "Authorization"),
        ("bcb", "X-BCB-Signature"),
        ("fireblocks", "Fireblocks-Signature"),
    ] {
        let (s, answer) = t.post_webhook(provider, &[], &body).await;
        assert_error(s, &answer, 401, "invalid_signature");
        let (s, answer) = t
            .post_webhook(provider, &[(header, "Bearer a:00:1".into())], &body)
            .await;
        assert_error(s, &answer, 401, "invalid_signature");
    }
    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending");
    assert_eq!(t.receipt("stripe", "evt_sig_1").await, None);
    // The genuine delivery still works afterwards.
    let (s, ack) = t
        .post_webhook("stripe", &[("Stripe-Signature", good)], &body)
        .await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    t.wait_available(&token, "USD", "50.00000000").await;
}

#[tokio::test]
async fn stripe_timestamp_outside_tolerance_is_401() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "stale@example.com", "stripe", "20").await;
    let body = stripe_paid(&user, &tx, "20.00", "evt_stale");
    let now = chrono::Utc::now().timestamp();
    for t_sig in [now - 301, now + 301, now - 3600] {
        let header = stripe::sign(&t.api.webhook_keys.stripe.current(), t_sig, &body);
        let (s, answer) = t
            .post_webhook("stripe", &[("Stripe-Signature", header)], &body)
            .await;
        assert_error(s, &answer, 401, "invalid_signature");
    }
    assert_eq!(t.receipt("stripe", "evt_stale").await, None);
    let header = stripe::sign(&t.api.webhook_keys.stripe.current(), now - 200, &body);
    let (s, ack) = t
        .post_webhook("stripe", &[("Stripe-Signature", header)], &body)
        .await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    t.wait_available(&token, "USD", "20.00000000").await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_acknowledged_and_credited_once() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "dup@example.com", "stripe", "75.50").await;
    let body = stripe_paid(&user, &tx, "75.50", "evt_dup_1");
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    for _ in 0..3 {
        let (s, ack) = t.signed_webhook("stripe", &body).await;
        assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
    }
    let receipt = t.handled_receipt("stripe", "evt_dup_1").await;
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    assert_eq!(receipt.action.as_deref(), Some("completed"));
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    // Another delivery id for the settled deposit changes nothing either.
    let other = stripe_paid(&user, &tx, "75.50", "evt_dup_2");
    let receipt = t.deliver_handled("stripe", &other, "evt_dup_2").await;
    assert_eq!(receipt.status, ReceiptStatus::Ignored);
    assert_eq!(
        receipt.action.as_deref(),
        Some("ignored: already completed")
    );
    assert_eq!(t.balance(&token, "USD").await.0, "75.50000000");
    assert_eq!(t.wait_webhook_outcomes("evt_dup_1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_deliveries_credit_once() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "race@example.com", "stripe", "10").await;
    let body = stripe_paid(&user, &tx, "10.00", "evt_race");
    let headers = t.signer("stripe").await.headers(&body);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let mut request = t
                .http
                .post(t.url("/webhooks/stripe"))
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in &headers {
                request = request.header(*k, v);
            }
            tokio::spawn(async move {
                let resp = request.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        let (s, ack) = task.await.unwrap();
        assert_eq!(s, 200, "{ack}");
        match ack["status"].as_str().unwrap() {
            "accepted" => accepted += 1,
            "duplicate" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, 1);
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    assert_eq!(t.balance(&token, "USD").await.0, "10.00000000");
    assert_eq!(t.wait_webhook_outcomes("evt_race").await.len(), 1);
}

#[tokio::test]
async fn banxa_and_bcb_schemes_settle_their_own_deposits() {
    let t = quiet().await;
    let (user, token) = t.verified_user("bx@example.com").await;
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            json!({"currency": "USD", "amount": "30", "provider": "banxa", "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let banxa_tx = body["transaction_id"].as_str().unwrap().to_owned();
    // Banxa's order id, which its notices name the order by (the last
    // segment of its checkout URL).
    let order_id = body["payment_url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap()
        .to_owned();
    let (s, body, _) = t
        .post(
            "/fiat/deposit",
            Some(&token),
            json!({"currency": "USD", "amount": "12.34", "provider": "bcb", "idempotency_key": "k2"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let bcb_tx = body["transaction_id"].as_str().unwrap().to_owned();
    // BCB's notice names the deposit by the reference its instructions
    // ask the payer to quote.
    let bcb_ref = body["instructions"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();

    // A provider cannot settle another provider's deposit (Stripe's
    // notice names transactions by our ids; BCB's references live in
    // BCB's namespace, so it cannot even name another's).
    let wrong = stripe::event_body(
        &report(&user, &banxa_tx, "30.00", Outcome::Completed),
        "evt_wrong_0",
    );
    t.deliver_rejected("stripe", &wrong, "evt_wrong_0", "wrong_transaction")
        .await;

    // Banxa's webhooks v2 body (its documented fields), naming the order
    // by Banxa's id only; signed with a millisecond nonce.
    let paid = json!({
        "order_id": order_id,
        "status": "complete",
        "status_date": "2026-12-04 10:00:00",
        "order_type": "BUY",
        "fiat_currency": "USD",
        "fiat_amount": "30",
        "metadata": [],
    })
    .to_string()
    .into_bytes();
    let path = "/webhooks/banxa";
    let secret = t.api.webhook_keys.banxa.current();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let signed = |secret: &api::secret::Secret, nonce: i64, body: &[u8]| {
        vec![(
            "Authorization",
            banxa::sign("merchant", secret, path, nonce, body),
        )]
    };
    // Refused with 401, nothing stored: a wrong secret, a modified body, a
    // stale nonce, a signature over another path, no header.
    let tampered = String::from_utf8(paid.clone())
        .unwrap()
        .replace("\"30\"", "\"3000\"")
        .into_bytes();
    for (why, headers, body) in [
        (
            "wrong secret",
            signed(&api::secret::Secret::new("nope"), now_ms, &paid),
            paid.clone(),
        ),
        ("modified body", signed(&secret, now_ms, &paid), tampered),
        (
            "stale nonce",
            signed(&secret, now_ms - 301_000, &paid),
            paid.clone(),
        ),
        (
            "another path",
            vec![(
                "Authorization",
                banxa::sign("merchant", &secret, "/api/webhooks/banxa", now_ms, &paid),
            )],
            paid.clone(),
        ),
        ("no header", Vec::new(), paid.clone()),
    ] {
        let (s, answer) = t.post_webhook("banxa", &headers, &body).await;
        assert_eq!(s, 401, "{why}: {answer}");
        assert_error(s, &answer, 401, "invalid_signature");
    }
    assert_eq!(t.balance(&token, "USD").await.0, "0.00000000");

    let (s, ack) = t
        .post_webhook("banxa", &signed(&secret, now_ms, &paid), &paid)
        .await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    // The same delivery again (a replay, even freshly signed): nothing new.
    let (s, ack) = t
        .post_webhook("banxa", &signed(&secret, now_ms + 5, &paid), &paid)
        .await;
    assert_eq!((s, &ack["status"]), (200, &json!("duplicate")), "{ack}");

    let paid = bcb::event_body(
        &Report {
            provider_ref: &bcb_ref,
            ..report(&user, &bcb_tx, "12.34", Outcome::Completed)
        },
        "bcb_evt_1",
    );
    let (s, ack) = t.signed_webhook("bcb", &paid).await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    t.wait_available(&token, "USD", "42.34000000").await;
    t.wait_status("/fiat/transactions", &token, &banxa_tx, "completed")
        .await;
    let outcomes = t
        .wait_webhook_outcomes(&format!("{order_id}:complete"))
        .await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
}

#[tokio::test]
async fn a_banxa_status_that_settles_nothing_is_acknowledged_and_ignored() {
    let t = quiet().await;
    let (token, _, tx) = open_deposit(&t, "bx2@example.com", "banxa", "30").await;
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    let order_id = listed["payment_url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap()
        .to_owned();
    for status in ["pendingPayment", "IN_PROGRESS"] {
        let body =
            json!({"order_id": order_id, "status": status, "status_date": "2026-12-04 10:00:00"})
                .to_string()
                .into_bytes();
        let (s, ack) = t.signed_webhook("banxa", &body).await;
        assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    }
    let declined =
        json!({"order_id": order_id, "status": "declined", "status_date": "2026-12-04 10:00:01"})
            .to_string()
            .into_bytes();
    let (s, ack) = t.signed_webhook("banxa", &declined).await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    t.wait_status("/fiat/transactions", &token, &tx, "failed")
        .await;
    assert_eq!(t.balance(&token, "USD").await.0, "0.00000000");
}

#[tokio::test]
async fn a_failed_deposit_credits_nothing() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "declined@example.com", "stripe", "10").await;
    let failed = stripe::event_body(&report(&user, &tx, "10.00", Outcome::Failed), "evt_failed");
    let (s, ack) = t.signed_webhook("stripe", &failed).await;
    assert_eq!((s, &ack["status"]), (200, &json!("accepted")), "{ack}");
    t.wait_status("/fiat/transactions", &token, &tx, "failed")
        .await;
    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
}

#[tokio::test]
async fn webhooks_settle_only_the_named_users_matching_transaction() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "own@example.com", "stripe", "10").await;
    let (other_user, other_token, _) = t.signup("other@example.com").await;

    let refused = [
        (
            stripe_paid(&user, "no-such-tx", "10.00", "evt_a"),
            "evt_a",
            "unknown_transaction",
        ),
        (
            stripe_paid(&other_user, &tx, "10.00", "evt_b"),
            "evt_b",
            "unknown_transaction",
        ),
        (
            stripe_paid(&user, &tx, "1000.00", "evt_c"),
            "evt_c",
            "amount_mismatch",
        ),
    ];
    for (body, id, code) in &refused {
        t.deliver_rejected("stripe", body, id, code).await;
    }
    let payout = stripe::event_body(
        &Report {
            direction: Direction::Out,
            ..report(&user, &tx, "10.00", Outcome::Completed)
        },
        "evt_d",
    );
    t.deliver_rejected("stripe", &payout, "evt_d", "wrong_transaction")
        .await;
    // A body that does not read is refused at once and stores nothing.
    let (s, answer) = t.signed_webhook("stripe", b"not json").await;
    assert_error(s, &answer, 400, "invalid_payload");

    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
    assert_eq!(t.balance(&other_token, "USD").await.2, "0.00000000");
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending");
    // A rejected delivery id stays rejected (an operator looks): its
    // redelivery is a duplicate; a corrected notice under a new id works.
    let (s, ack) = t
        .signed_webhook("stripe", &stripe_paid(&user, &tx, "10.00", "evt_c"))
        .await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
    let receipt = t
        .deliver_handled(
            "stripe",
            &stripe_paid(&user, &tx, "10.00", "evt_e"),
            "evt_e",
        )
        .await;
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    t.wait_available(&token, "USD", "10.00000000").await;
}

/// Test (c): a permanent failure (here the amount differs from the
/// transaction's) is accepted, then becomes a `rejected` receipt naming
/// the code, with a `webhook.rejected` event; the transaction, the
/// balance and the other events are untouched.
#[tokio::test]
async fn a_permanent_failure_becomes_rejected_and_changes_nothing() {
    let t = quiet().await;
    let (token, user, tx) = open_deposit(&t, "mismatch@example.com", "stripe", "10").await;
    let body = stripe_paid(&user, &tx, "10.01", "evt_mismatch");
    let receipt = t
        .deliver_rejected("stripe", &body, "evt_mismatch", "amount_mismatch")
        .await;
    assert_eq!(receipt.action, None);
    let outcomes = t.wait_webhook_outcomes("evt_mismatch").await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0]["type"], "webhook.rejected");
    assert_eq!(outcomes[0]["data"]["code"], "amount_mismatch");
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending");
    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
    let about: Vec<String> = t
        .events()
        .into_iter()
        .filter(|e| e.data["webhook_id"] == "evt_mismatch")
        .map(|e| e.event_type)
        .collect();
    assert_eq!(about, ["webhook.received", "webhook.rejected"]);
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_ignored() {
    let t = start_money().await;
    let body = br#"{"id":"evt_other","type":"customer.created","data":{"object":{}}}"#;
    let receipt = t.deliver_handled("stripe", body, "evt_other").await;
    assert_eq!(receipt.status, ReceiptStatus::Ignored);
    let (s, ack) = t.signed_webhook("stripe", body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
}

#[tokio::test]
async fn the_routes_are_in_the_openapi_document() {
    let t = start_money().await;
    let (s, doc, _) = t.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/wallets/balances", "get"),
        ("/wallets/deposit-address", "post"),
        ("/wallets/withdraw", "post"),
        ("/wallets/transactions", "get"),
        ("/fiat/deposit", "post"),
        ("/fiat/withdraw", "post"),
        ("/fiat/transactions", "get"),
        ("/webhooks/{provider}", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert!(paths["/wallets/withdraw"]["post"]["security"].is_array());
    // Fiat deposits need verified KYC, like withdrawals.
    for path in ["/fiat/deposit", "/fiat/withdraw", "/wallets/withdraw"] {
        assert!(
            paths[path]["post"]["responses"]["403"].is_object(),
            "{path} documents 403 kyc_required"
        );
    }
    let params: Vec<&str> = paths["/fiat/transactions"]["get"]["parameters"]
        .as_array()
        .expect("list parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["cursor", "limit"]);
    assert!(paths["/webhooks/{provider}"]["post"]
        .get("security")
        .is_none());
}
