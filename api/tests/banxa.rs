//! The Banxa adapter end to end, against the Banxa-shaped server of
//! `testkit::banxa` (Banxa's documented request signing, create and get
//! order, webhooks v2): a `banxa` deposit is a Banxa buy order, its
//! checkout is the deposit's `payment_url`, Banxa's signed `complete`
//! notice credits it once; Banxa failing for a moment is retried; its
//! refusals, payouts and reconciliation's status query.

use crate::common;

use api::config::ApiConfig;
use api::providers::RemoteStatus;
use api::secret::Secret;
use common::adapters::AdapterParts;
use common::assert_error;
use common::money::{config_with_delay, start_money_with};
use serde_json::json;
use testkit::banxa::{BanxaConfig, BanxaServer};

const WALLET: &str = "0x00000000000000000000000000000000000e0c4a";

fn config(server: &BanxaServer) -> ApiConfig {
    ApiConfig {
        banxa_api_url: server.url(),
        banxa_api_key: Some(Secret::new("test-key")),
        banxa_webhook_secret: Some(Secret::new("test-secret")),
        banxa_wallet_address: WALLET.into(),
        // The payment sandbox (serving the other providers) never reports.
        ..config_with_delay(600_000)
    }
}

async fn banxa() -> BanxaServer {
    BanxaServer::start(BanxaConfig {
        api_key: "test-key".into(),
        secret: "test-secret".into(),
        webhook_url: None,
    })
    .await
}

fn deposit(amount: &str, key: &str) -> serde_json::Value {
    json!({"currency": "USD", "amount": amount, "provider": "banxa", "idempotency_key": key})
}

#[tokio::test]
async fn a_banxa_deposit_is_a_buy_order_credited_by_its_signed_notice() {
    let server = banxa().await;
    let t = start_money_with(config(&server)).await;
    server.set_webhook_url(&format!("http://{}/webhooks/banxa", t.addr));
    let (user, token) = t.verified_user("banxa@example.com").await;

    // Banxa fails once (503): the call is retried and the order made.
    server.fail_next(1, 503);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("30", "d1"))
        .await;
    assert_eq!(s, 201, "{body}");
    let tx = body["transaction_id"].as_str().unwrap().to_owned();
    let orders = server.orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    let order = &orders[0];
    assert_eq!(body["payment_url"], order["checkout_url"], "{body} {order}");
    assert_eq!(order["account_reference"], user.as_str());
    assert_eq!(order["fiat_code"], "USD");
    assert_eq!(order["fiat_amount"], "30.00");
    assert_eq!(order["coin_code"], "USDT");
    assert_eq!(order["wallet_address"], WALLET);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200], "{:?}", server.requests());
    let order_id = order["id"].as_str().unwrap().to_owned();

    // Banxa's notices: an intermediate status is acknowledged and ignored;
    // `complete` credits once, and a repeat of it is a duplicate.
    let ack = |answer: Option<(u16, serde_json::Value)>| {
        let (status, body) = answer.expect("a webhook was sent");
        assert_eq!(status, 200, "{body}");
        body["status"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(
        ack(server.set_status(&order_id, "inProgress").await),
        "accepted"
    );
    let ignored = t
        .wait_webhook_outcomes(&format!("{order_id}:inprogress"))
        .await;
    assert_eq!(ignored[0]["data"]["action"], "ignored", "{ignored:?}");
    assert_eq!(t.balance(&token, "USD").await.0, "0.00000000");
    assert_eq!(
        ack(server.set_status(&order_id, "complete").await),
        "accepted"
    );
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    t.wait_available(&token, "USD", "30.00000000").await;
    assert_eq!(
        ack(server.set_status(&order_id, "complete").await),
        "duplicate"
    );
    let outcomes = t
        .wait_webhook_outcomes(&format!("{order_id}:complete"))
        .await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(t.balance(&token, "USD").await.0, "30.00000000");
}

#[tokio::test]
async fn banxa_down_is_503_and_its_refusals_and_payouts_are_clear() {
    let server = banxa().await;
    let t = start_money_with(config(&server)).await;
    let (user, token) = t.verified_user("banxa-down@example.com").await;

    // More failures than attempts: 503, nothing recorded.
    server.fail_next(3, 503);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("10", "d1"))
        .await;
    assert_error(s, &body, 503, "provider_unavailable");
    assert!(server.orders().is_empty());
    let (s, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(list["transactions"], json!([]), "{list}");

    // A refusal (a 4xx of Banxa's) is 422 `provider_rejected`.
    server.fail_next(1, 422);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("10", "d2"))
        .await;
    assert_error(s, &body, 422, "provider_rejected");

    // Banxa pays out through sell orders the user starts at Banxa: a
    // payout asked of it fails at once and the funds come back.
    t.assert_payout_refused(&user, &token, "banxa").await;
    // And none of it reached Banxa as an order.
    assert!(server.orders().is_empty());
}

#[tokio::test]
async fn reconciliation_reads_an_orders_status_from_banxa() {
    let server = banxa().await;
    let config = config(&server);
    let parts = AdapterParts::open(&config).await;
    let ctx = parts.ctx(&config);
    let adapter = api::providers::payment_banxa::build(&ctx).unwrap();
    let order = api::providers::payment::PaymentOrder {
        transaction_id: "tx-1".into(),
        user_id: "user-1".into(),
        currency: "USD".into(),
        amount: "12.34".into(),
    };
    let start = adapter.start_deposit(&order).await.unwrap();
    assert_eq!(
        adapter.payment_status(&start.provider_ref).await,
        Ok(RemoteStatus::Pending)
    );
    assert!(server
        .set_status(&start.provider_ref, "complete")
        .await
        .is_none());
    assert_eq!(
        adapter.payment_status(&start.provider_ref).await,
        Ok(RemoteStatus::Completed)
    );
    assert!(server
        .set_status(&start.provider_ref, "expired")
        .await
        .is_none());
    assert_eq!(
        adapter.payment_status(&start.provider_ref).await,
        Ok(RemoteStatus::Failed("expired".into()))
    );
    assert_eq!(
        adapter.payment_status("0123456789abcdef").await,
        Ok(RemoteStatus::NotFound)
    );
    // Every request was signed as Banxa documents (the server refuses
    // any other): none was refused.
    assert!(server.requests().iter().all(|r| r.status != 401));
}
