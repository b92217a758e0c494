//! The Stripe adapter end to end, against the Stripe-shaped server of
//! `testkit::stripe` (PaymentIntents with Bearer keys, `Stripe-Version`
//! and idempotency keys; events signed as Stripe documents): a `stripe`
//! deposit is a PaymentIntent whose client secret the answer carries,
//! Stripe failing for a moment is retried under the same idempotency
//! key, a declined attempt leaves the deposit open, the signed
//! `payment_intent.succeeded` credits it once, and `charge.refunded`
//! takes back what was refunded, once, however often it is delivered.

use crate::common;

use api::config::ApiConfig;
use api::providers::RemoteStatus;
use api::secret::Secret;
use common::adapters::AdapterParts;
use common::assert_error;
use common::money::{config_with_delay, start_money_with};
use feeds::Venue;
use serde_json::{json, Value};
use testkit::stripe::{StripeConfig, StripeServer};

const ONE_USD: u64 = 100_000_000;
const KEY: &str = "sk_test_nax_adapter";
const ENDPOINT_SECRET: &str = "whsec_nax_adapter";

fn config(server: &StripeServer) -> ApiConfig {
    ApiConfig {
        stripe_api_url: server.url(),
        stripe_api_key: Some(Secret::new(KEY)),
        stripe_webhook_secret: Some(Secret::new(ENDPOINT_SECRET)),
        // The payment sandbox (serving the other providers) never reports.
        ..config_with_delay(600_000)
    }
}

async fn stripe() -> StripeServer {
    StripeServer::start(StripeConfig {
        secret_key: KEY.into(),
        webhook_secret: ENDPOINT_SECRET.into(),
        api_version: api::providers::payment_stripe::API_VERSION.into(),
        webhook_url: None,
    })
    .await
}

fn deposit(amount: &str, key: &str) -> Value {
    json!({"currency": "USD", "amount": amount, "provider": "stripe", "idempotency_key": key})
}

/// The status word of a webhook's answer.
fn ack(answer: Option<(u16, Value)>) -> String {
    let (status, body) = answer.expect("a webhook was sent");
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap_or_default().to_owned()
}

fn last_event_id(server: &StripeServer) -> String {
    let events = server.events();
    events.last().expect("an event")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_stripe_deposit_is_a_payment_intent_credited_once_and_refunds_are_taken_back_once() {
    let server = stripe().await;
    let t = start_money_with(config(&server)).await;
    server.set_webhook_url(&format!("http://{}/webhooks/stripe", t.addr));
    let (user, token) = t.verified_user("stripe@example.com").await;

    // Stripe fails once (503): retried under the same idempotency key.
    server.fail_next(1, 503);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("30", "d1"))
        .await;
    assert_eq!(s, 201, "{body}");
    let tx = body["transaction_id"].as_str().unwrap().to_owned();
    let intents = server.intents();
    assert_eq!(intents.len(), 1, "{intents:?}");
    let intent = &intents[0];
    assert_eq!(body["client_secret"], intent["client_secret"], "{body}");
    assert!(body.get("payment_url").is_none(), "{body}");
    assert_eq!(intent["amount"], 3000);
    assert_eq!(intent["currency"], "usd");
    assert_eq!(intent["metadata"]["user_id"], user.as_str());
    assert_eq!(intent["metadata"]["transaction_id"], tx.as_str());
    let requests = server.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200], "{requests:?}");
    let want_key = format!("nax-deposit-{tx}");
    for r in &requests {
        assert_eq!(r.idempotency_key.as_deref(), Some(want_key.as_str()));
        assert_eq!(r.api_version.as_deref(), Some("2024-06-20"));
    }
    let pi = intent["id"].as_str().unwrap().to_owned();

    // A declined card: acknowledged, ignored, the deposit stays open.
    assert_eq!(
        ack(server.fail_payment(&pi, "insufficient_funds").await),
        "accepted"
    );
    let declined = t.wait_webhook_outcomes(&last_event_id(&server)).await;
    assert_eq!(declined[0]["data"]["action"], "ignored", "{declined:?}");
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending", "{listed}");

    // The retry succeeds: credited once, and a redelivery is a duplicate.
    assert_eq!(ack(server.succeed(&pi).await), "accepted");
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    t.wait_available(&token, "USD", "30.00000000").await;
    assert_eq!(ack(server.resend_last().await), "duplicate");

    // A partial refund of 12.50 takes it back; the same notice again, and
    // an older total, take nothing more.
    assert_eq!(ack(server.refund(&pi, Some(1250)).await), "accepted");
    let first = last_event_id(&server);
    t.wait_available(&token, "USD", "17.50000000").await;
    let applied = t.wait_webhook_outcomes(&first).await;
    assert_eq!(
        applied[0]["data"]["action"], "refunded: debited 12.50000000",
        "{applied:?}"
    );
    assert_eq!(ack(server.resend_last().await), "duplicate");
    // A notice under another id with an older total changes nothing.
    let older = json!({"id": "evt_older_total", "object": "event", "type": "charge.refunded",
        "data": {"object": {"id": "ch_x", "object": "charge", "amount": 3000,
            "amount_refunded": 1000, "payment_intent": pi, "refunded": false}}});
    let (s, body) = t
        .signed_webhook("stripe", older.to_string().as_bytes())
        .await;
    assert_eq!((s, &body["status"]), (200, &json!("accepted")), "{body}");
    let ignored = t.wait_webhook_outcomes("evt_older_total").await;
    assert_eq!(
        ignored[0]["data"]["action"], "ignored: 12.50000000 refunded already",
        "{ignored:?}"
    );
    assert_eq!(t.balance(&token, "USD").await.0, "17.50000000");

    // The user spends most of the rest; the remaining refund (17.50) is
    // more than the balance holds: nothing is debited, the shortfall is
    // recorded for an operator.
    t.venue.debit(&user, "USD", 15 * ONE_USD).await.unwrap();
    assert_eq!(ack(server.refund(&pi, None).await), "accepted");
    let second = last_event_id(&server);
    let outcome = t.wait_webhook_outcomes(&second).await;
    assert_eq!(
        outcome[0]["data"]["action"], "refunded: 17.50000000 not recovered",
        "{outcome:?}"
    );
    assert_eq!(t.balance(&token, "USD").await.0, "2.50000000");
    let refunds: Vec<_> = t
        .events()
        .into_iter()
        .filter(|e| e.event_type == "deposit.refunded")
        .map(|e| e.data)
        .collect();
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    assert_eq!(refunds[0]["debited"], "12.50000000");
    assert_eq!(refunds[1]["refunded"], "30.00000000");
    assert_eq!(refunds[1]["debited"], "0.00000000");
    assert_eq!(refunds[1]["unrecovered"], "17.50000000");
}

#[tokio::test]
async fn stripe_down_is_503_its_refusals_422_and_payouts_are_refused() {
    let server = stripe().await;
    let t = start_money_with(config(&server)).await;
    let (user, token) = t.verified_user("stripe-down@example.com").await;

    // More failures than attempts: 503, nothing recorded; Stripe recovers
    // and the same request (same key) then opens the deposit.
    server.fail_next(3, 503);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("10", "d1"))
        .await;
    assert_error(s, &body, 503, "provider_unavailable");
    assert!(server.intents().is_empty());
    let (s, list, _) = t.get("/fiat/transactions", Some(&token)).await;
    assert_eq!((s, &list["transactions"]), (200, &json!([])), "{list}");
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("10", "d1"))
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(server.intents().len(), 1);

    // A refusal (a 4xx of Stripe's) is 422 `provider_rejected`; an amount
    // finer than cents never reaches Stripe.
    server.fail_next(1, 402);
    let (s, body, _) = t
        .post("/fiat/deposit", Some(&token), deposit("10", "d2"))
        .await;
    assert_error(s, &body, 422, "provider_rejected");
    assert_eq!(server.intents().len(), 1);

    // Paying a user's bank account is Stripe Connect's: refused at once,
    // the funds come back, nothing reaches Stripe.
    let before = server.requests().len();
    t.assert_payout_refused(&user, &token, "stripe").await;
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn a_wrong_key_is_unavailable_and_reconciliation_reads_an_intents_status() {
    let server = stripe().await;
    let config = config(&server);
    let parts = AdapterParts::open(&config).await;
    let ctx = parts.ctx(&config);
    let adapter = api::providers::payment_stripe::build(&ctx).unwrap();
    let order = api::providers::payment::PaymentOrder {
        transaction_id: "tx-1".into(),
        user_id: "user-1".into(),
        currency: "EUR".into(),
        amount: "12.34".into(),
    };
    let start = adapter.start_deposit(&order).await.unwrap();
    let pi = start.provider_ref.clone();
    assert!(pi.starts_with("pi_"), "{pi}");
    // The same order again (a retry after an unknown outcome) is the
    // same intent: Stripe replays it under the idempotency key.
    assert_eq!(adapter.start_deposit(&order).await.unwrap(), start);
    assert_eq!(server.intents().len(), 1);
    assert!(server.requests().last().unwrap().replayed);

    assert_eq!(adapter.payment_status(&pi).await, Ok(RemoteStatus::Pending));
    assert!(server.succeed(&pi).await.is_none());
    assert_eq!(
        adapter.payment_status(&pi).await,
        Ok(RemoteStatus::Completed)
    );
    assert_eq!(
        adapter.payment_status("pi_0000000000000000000000").await,
        Ok(RemoteStatus::NotFound)
    );

    // A key Stripe does not know: the provider is unavailable (an
    // operator's matter), not a refusal of the user's request.
    let wrong_key = ApiConfig {
        stripe_api_key: Some(Secret::new("sk_test_wrong")),
        ..config.clone()
    };
    let ctx = parts.ctx(&wrong_key);
    let wrong = api::providers::payment_stripe::build(&ctx).unwrap();
    let order = api::providers::payment::PaymentOrder {
        transaction_id: "tx-2".into(),
        ..order
    };
    assert!(matches!(
        wrong.start_deposit(&order).await,
        Err(api::providers::payment::ProviderError::Unavailable(_))
    ));
    assert_eq!(server.intents().len(), 1);
}
