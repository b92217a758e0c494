//! BCB Group end to end, against the BCB-shaped server of `testkit::bcb`
//! (OAuth client-credentials tokens, the exchange's accounts, signed
//! notifications in BCB's documented shapes): a `bcb` deposit's
//! instructions are the exchange's BCB account in its currency with a
//! reference of its own, BCB's transaction notification quoting that
//! reference credits it once, the token service failing is 503 with
//! nothing recorded, an expired token is replaced, and badly signed or
//! foreign notices change nothing.

use crate::common;

use common::adapters::ack;

use api::config::ApiConfig;
use api::secret::Secret;
use common::assert_error;
use common::money::{config_with_delay, start_money_with};
use serde_json::{json, Value};
use testkit::bcb::{BcbConfig, BcbServer};

const WEBHOOK_SECRET: &str = "bcb-webhook-secret";

async fn setup() -> (BcbServer, common::TestApi) {
    let server = BcbServer::start(BcbConfig {
        webhook_secret: WEBHOOK_SECRET.into(),
        ..BcbConfig::default()
    })
    .await;
    let defaults = BcbConfig::default();
    let config = ApiConfig {
        bcb_api_url: server.url(),
        bcb_auth_url: server.auth_url(),
        bcb_client_id: defaults.client_id,
        bcb_client_secret: Some(Secret::new(defaults.client_secret)),
        bcb_webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
        // The payment sandbox (serving the other providers) never reports.
        ..config_with_delay(600_000)
    };
    let t = start_money_with(config).await;
    server.set_webhook_url(&format!("http://{}/webhooks/bcb", t.addr));
    (server, t)
}

fn deposit(currency: &str, amount: &str, key: &str) -> Value {
    json!({"currency": currency, "amount": amount, "provider": "bcb", "idempotency_key": key})
}

#[tokio::test]
async fn a_bcb_deposit_is_a_transfer_quoting_its_reference_credited_once() {
    let (server, t) = setup().await;
    let (_, token) = t.verified_user("bcb@example.com").await;

    // The token service fails: 503, nothing recorded.
    server.fail_next_token(3, 503);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("USD", "25", "d1"))
        .await;
    assert_error(s, &body, 503, "provider_unavailable");
    let (_, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!(list["transactions"], json!([]), "{list}");

    // It recovers: the instructions are the exchange's USD account.
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("USD", "25", "d1"))
        .await;
    assert_eq!(s, 201, "{body}");
    let tx = body["transaction_id"].as_str().unwrap().to_owned();
    let instructions = &body["instructions"];
    let usd = testkit::bcb::ACCOUNTS
        .iter()
        .find(|a| a.ccy == "USD")
        .unwrap();
    assert_eq!(instructions["iban"], usd.iban, "{body}");
    assert_eq!(instructions["account_name"], testkit::bcb::ACCOUNT_NAME);
    let reference = instructions["reference"].as_str().unwrap().to_owned();
    assert!(
        reference.starts_with("NAX") && reference.len() == 35,
        "{reference}"
    );

    // A transfer quoting another reference: not ours, nothing credited
    // (retried for the grace, then rejected; not waited for here).
    assert_eq!(
        ack(server
            .incoming_transfer("USD", "25.00", "SOMEONE ELSE", "A Payer")
            .await),
        (200, "accepted".into())
    );
    // A token that expired is replaced on the next call.
    server.expire_tokens();
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("USD", "5", "d2"))
        .await;
    assert_eq!(s, 201, "{body}");

    // Pounds quoting the dollar deposit's reference: not its payment,
    // rejected, nothing credited.
    assert_eq!(
        ack(server
            .incoming_transfer("GBP", "25.00", &reference, "A Payer")
            .await),
        (200, "accepted".into())
    );
    let id = server.webhooks().last().unwrap()["transactions"][0]["id"].clone();
    let id = id
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| id.to_string());
    let outcome = t.wait_webhook_outcomes(&format!("transaction:{id}")).await;
    assert_eq!(
        outcome[0]["data"]["code"], "currency_mismatch",
        "{outcome:?}"
    );
    assert_eq!(t.balance(&token, "USD").await.0, "0.00000000");

    // The transfer quoting the deposit's reference credits it once; its
    // redelivery is a duplicate.
    assert_eq!(
        ack(server
            .incoming_transfer("USD", "25.00", &reference, "A Payer")
            .await),
        (200, "accepted".into())
    );
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    t.wait_available(&token, "USD", "25.00000000").await;
    assert_eq!(ack(server.resend_last().await), (200, "duplicate".into()));

    // A notice signed with another secret, or modified: refused.
    let body = server.webhooks().last().unwrap().to_string();
    let answer = t
        .post_webhook(
            "bcb",
            &[("X-BCB-Signature", "00".repeat(32))],
            body.as_bytes(),
        )
        .await;
    assert_error(answer.0, &answer.1, 401, "invalid_signature");
    let (s, _) = t.post_webhook("bcb", &[], body.as_bytes()).await;
    assert_eq!(s, 401);
    assert_eq!(t.balance(&token, "USD").await.0, "25.00000000");
}

#[tokio::test]
async fn bcb_payouts_are_refused_with_the_funds_back() {
    let (server, t) = setup().await;
    let (user, token) = t.verified_user("bcb-payout@example.com").await;
    t.assert_payout_refused(&user, &token, "bcb").await;
    assert!(server.payments().is_empty());
}
