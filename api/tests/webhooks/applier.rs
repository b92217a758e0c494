//! The webhook applier behind `POST /webhooks/{provider}`: exactly once
//! under concurrent deliveries and racing appliers, nothing lost when the
//! worker is down between receipt and apply, and the in-process applier
//! on SQS (moto). Part of `webhooks.rs`.

use super::*;
use api::queue::Outcome as QueueOutcome;
use api::webhooks::worker::WebhookApplier;
use api::webhooks::WebhooksState;
use api::ApiConfig;
use axum::extract::FromRef;
use common::money::{start_money_on_dynamodb, start_money_on_sqs};

/// The config of a server whose webhook applier does not run in process:
/// deliveries are stored and queued, and nothing applies them.
fn no_applier_config() -> ApiConfig {
    ApiConfig {
        webhook_worker_in_process: false,
        ..config_with_delay(600_000)
    }
}

/// Such a server on the embedded store.
async fn without_applier() -> TestApi {
    start_money_with(no_applier_config()).await
}

/// The `webhook.received` event of `webhook_id`, once the relay logged it.
async fn received_event(t: &TestApi, webhook_id: &str) -> api::events::Event {
    let deadline = tokio::time::Instant::now() + common::webhooks::DEADLINE;
    loop {
        let found = t
            .events()
            .into_iter()
            .find(|e| e.event_type == "webhook.received" && e.data["webhook_id"] == webhook_id);
        if let Some(event) = found {
            return event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook.received of {webhook_id} never logged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Test (a): three concurrent deliveries of one signed body store one
/// receipt (one `accepted`, two `duplicate`), and two appliers racing on
/// that receipt's delivery change state once: both finish the delivery,
/// one credit, one `webhook.applied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_three_times_concurrently_credits_once() {
    delivered_three_times_credits_once(without_applier().await).await;
}

/// The same on DynamoDB (moto): the receipt's conditional writes and the
/// ledger's transactions are DynamoDB's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_three_times_concurrently_credits_once_on_dynamodb() {
    delivered_three_times_credits_once(start_money_on_dynamodb(no_applier_config()).await).await;
}

async fn delivered_three_times_credits_once(t: TestApi) {
    let (token, user, tx) = open_deposit(&t, "three@example.com", "stripe", "10").await;
    let body = stripe_paid(&user, &tx, "10.00", "evt_three");
    delivered_three_times_at_once(&t, &body).await;
    let stored = t.receipt("stripe", "evt_three").await.expect("a receipt");
    assert_eq!(stored.status, ReceiptStatus::Received);

    let event = received_event(&t, "evt_three").await;
    let state: WebhooksState = FromRef::from_ref(&t.api);
    let appliers = [
        WebhookApplier::new(state.clone()),
        WebhookApplier::new(state),
    ];
    let runs: Vec<_> = appliers
        .into_iter()
        .map(|applier| {
            let event = event.clone();
            tokio::spawn(async move { applier.apply_event(&event).await })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap(), QueueOutcome::Done);
    }
    let receipt = t.receipt("stripe", "evt_three").await.unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    assert_eq!(receipt.version, 2, "moved once");
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    assert_eq!(t.balance(&token, "USD").await.0, "10.00000000");
    let outcomes = t.wait_webhook_outcomes("evt_three").await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    // The same delivery again (the queue is at least once) changes nothing.
    let again = WebhookApplier::new(FromRef::from_ref(&t.api));
    assert_eq!(again.apply_event(&event).await, QueueOutcome::Done);
    assert_eq!(t.receipt("stripe", "evt_three").await.unwrap().version, 2);
    assert_eq!(t.balance(&token, "USD").await.0, "10.00000000");
}

/// Appliers racing on receipts whose only guard is the receipt itself
/// (notices that change no transaction): each receipt moves once, one
/// `webhook.applied` each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appliers_move_a_receipt_once() {
    let t = without_applier().await;
    let ids: Vec<String> = (0..5).map(|i| format!("evt_ignored_{i}")).collect();
    for id in &ids {
        let body = format!(r#"{{"id":"{id}","type":"customer.created","data":{{"object":{{}}}}}}"#);
        let (s, ack) = t.signed_webhook("stripe", body.as_bytes()).await;
        assert_eq!((s, &ack), (200, &json!({"status": "accepted"})));
    }
    for id in &ids {
        let event = received_event(&t, id).await;
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let applier = WebhookApplier::new(FromRef::from_ref(&t.api));
                let event = event.clone();
                tokio::spawn(async move { applier.apply_event(&event).await })
            })
            .collect();
        for run in runs {
            assert_eq!(run.await.unwrap(), QueueOutcome::Done);
        }
        let receipt = t.receipt("stripe", id).await.unwrap();
        assert_eq!(
            (receipt.status, receipt.version),
            (ReceiptStatus::Ignored, 2)
        );
    }
    // Events are relayed in commit order: once a later one is logged,
    // every outcome of the races is too.
    let marker = br#"{"id":"evt_marker","type":"customer.created","data":{"object":{}}}"#;
    let (s, _) = t.signed_webhook("stripe", marker).await;
    assert_eq!(s, 200);
    received_event(&t, "evt_marker").await;
    for id in &ids {
        let outcomes = t.webhook_outcomes(id);
        assert_eq!(outcomes.len(), 1, "{id}: {outcomes:?}");
    }
}

/// Test (b): the worker is down between receipt and apply (here not
/// running at all, then the process is stopped): the accepted delivery
/// is not lost; a new process on the same data directory, applier on,
/// credits it exactly once.
#[tokio::test]
async fn a_worker_stop_between_receipt_and_apply_loses_nothing() {
    let t = without_applier().await;
    let (token, user, tx) = open_deposit(&t, "crash@example.com", "stripe", "50").await;
    let body = stripe_paid(&user, &tx, "50.00", "evt_crash");
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "accepted"})));
    let stored = t.receipt("stripe", "evt_crash").await.expect("a receipt");
    assert_eq!(stored.status, ReceiptStatus::Received);
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending");
    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
    let dir = t.stop().await;

    let t = common::start_in(config_with_delay(600_000), dir).await;
    assert!(t.api.config.webhook_worker_in_process);
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    t.wait_available(&token, "USD", "50.00000000").await;
    let receipt = t.handled_receipt("stripe", "evt_crash").await;
    assert_eq!(
        (receipt.status, receipt.version),
        (ReceiptStatus::Applied, 2)
    );
    assert_eq!(t.wait_webhook_outcomes("evt_crash").await.len(), 1);
    // A redelivery by the provider after the restart is a duplicate.
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
    assert_eq!(t.balance(&token, "USD").await.0, "50.00000000");
}

/// The in-process applier on SQS (`events_to_sqs`, moto): the
/// `webhook.received` goes through `webhook-processing-queue` and the
/// deposit is credited once.
#[tokio::test]
async fn the_in_process_applier_consumes_sqs() {
    let config = ApiConfig {
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(api::secret::Secret::new("test")),
        events_to_sqs: true,
        sqs_endpoint: testkit::shared_moto_endpoint(),
        sqs_queue_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        ..config_with_delay(600_000)
    };
    let t = start_money_on_sqs(config).await;
    let (token, user, tx) = open_deposit(&t, "sqs@example.com", "stripe", "12.5").await;
    let body = stripe_paid(&user, &tx, "12.50", "evt_sqs");
    let receipt = t.deliver_handled("stripe", &body, "evt_sqs").await;
    assert_eq!(
        (receipt.status, receipt.version),
        (ReceiptStatus::Applied, 2)
    );
    t.wait_status("/fiat/transactions", &token, &tx, "completed")
        .await;
    t.wait_available(&token, "USD", "12.50000000").await;
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
}

/// Delivers the signed Stripe `body` three times concurrently: one is
/// accepted, two are answered as duplicates.
pub(super) async fn delivered_three_times_at_once(t: &TestApi, body: &[u8]) {
    let (a, b, c) = tokio::join!(
        t.signed_webhook("stripe", body),
        t.signed_webhook("stripe", body),
        t.signed_webhook("stripe", body),
    );
    let mut answers: Vec<String> = [a, b, c]
        .into_iter()
        .map(|(s, ack)| {
            assert_eq!(s, 200, "{ack}");
            ack["status"].as_str().unwrap().to_owned()
        })
        .collect();
    answers.sort();
    assert_eq!(answers, ["accepted", "duplicate", "duplicate"]);
}
