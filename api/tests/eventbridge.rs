//! `events::eventbridge::EventBridgePublisher` against the shared
//! `moto_server`: a bus, a rule matching our source and an SQS target,
//! as `infra/terraform/eventbridge.tf` sets up; only the four domain
//! events reach the target; an unreachable endpoint is an `Err` (the relay
//! keeps the batch), also through `Both`.

use api::events::eventbridge::{Both, EventBridgeConfig, EventBridgePublisher, SOURCE};
use api::events::sqs::StaticCredentials;
use api::events::{Event, EventPublisher, EventType};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(endpoint: String, bus: &str) -> EventBridgeConfig {
    EventBridgeConfig {
        bus: bus.to_owned(),
        endpoint: Some(endpoint),
        region: "us-east-1".to_owned(),
        static_credentials: Some(StaticCredentials::test()),
    }
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    api::aws::sdk_config(
        "us-east-1",
        Some(endpoint),
        Some(&StaticCredentials::test()),
    )
    .await
}

/// A bus with a rule for our source targeting a new queue; returns the
/// bus name and the queue URL.
async fn bus_with_queue(endpoint: &str) -> (String, String) {
    let prefix = format!("eb{}", uuid::Uuid::new_v4().simple());
    let sdk = sdk(endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bus = format!("{prefix}-bus");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("CreateEventBus");
    let url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-domain-events-queue"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("url")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    let rule = format!("{prefix}-domain-events");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({ "source": [SOURCE] }).to_string())
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("domain-events-queue")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");
    (bus, url)
}

/// Receives (and deletes) bodies until `want` arrived or 30 s passed.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(receive_once(sqs, url, 1).await);
    }
    out
}

async fn receive_once(sqs: &aws_sdk_sqs::Client, url: &str, wait_secs: i32) -> Vec<Value> {
    let got = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .expect("ReceiveMessage");
    let mut out = Vec::new();
    for m in got.messages() {
        out.push(serde_json::from_str(m.body().expect("body")).expect("json body"));
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().expect("handle"))
            .send()
            .await
            .expect("DeleteMessage");
    }
    out
}

fn events() -> (Vec<Event>, HashSet<String>) {
    let e = |t, data| Event::new(t, Some("u-1"), data);
    let wanted = vec![
        e(
            EventType::OrderFilled,
            json!({"order_id": "o1", "fill": {"qty": "0.100000"}}),
        ),
        e(
            EventType::DepositStateChanged,
            json!({"transaction_id": "d1", "status": "completed", "amount": "10.00"}),
        ),
        e(
            EventType::WithdrawalStateChanged,
            json!({"transaction_id": "w1", "status": "completed", "amount": "0.5"}),
        ),
        e(
            EventType::KycStatusChanged,
            json!({"from": "PENDING", "to": "VERIFIED"}),
        ),
    ];
    let others = vec![
        e(EventType::OrderAccepted, json!({"order": {}})),
        e(
            EventType::DepositStateChanged,
            json!({"transaction_id": "d1", "status": "processing"}),
        ),
        e(
            EventType::WithdrawalStateChanged,
            json!({"transaction_id": "w2", "status": "pending"}),
        ),
        e(EventType::UserRegistered, json!({})),
    ];
    let ids = wanted.iter().map(|e| e.id.clone()).collect();
    let mut all = others;
    all.extend(wanted);
    (all, ids)
}

#[tokio::test]
async fn only_the_domain_events_reach_the_bus_target() {
    let endpoint = testkit::shared_moto_endpoint();
    let (bus, url) = bus_with_queue(&endpoint).await;
    let publisher = EventBridgePublisher::new(&config(endpoint.clone(), &bus)).await;
    let (batch, wanted) = events();
    publisher.publish(&batch).await.expect("publish");

    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let got = receive(&sqs, &url, wanted.len()).await;
    // Anything else would be here by now: moto delivers within PutEvents.
    let extra = receive_once(&sqs, &url, 1).await;
    assert!(
        extra.is_empty(),
        "events that are not domain events: {extra:?}"
    );
    let mut ids = HashSet::new();
    for envelope in &got {
        assert_eq!(envelope["source"], SOURCE, "{envelope}");
        let detail = &envelope["detail"];
        assert_eq!(envelope["detail-type"], detail["type"], "{envelope}");
        let sent = batch
            .iter()
            .find(|e| e.id == detail["id"])
            .expect("a sent event");
        assert_eq!(detail["data"], sent.data);
        assert_eq!(detail["version"], 1);
        ids.insert(sent.id.clone());
    }
    assert_eq!(ids, wanted, "got {got:?}");
}

#[tokio::test]
async fn an_unreachable_bus_is_an_error_also_through_both() {
    let endpoint = testkit::shared_moto_endpoint();
    let (bus, url) = bus_with_queue(&endpoint).await;
    let down = format!("http://127.0.0.1:{}", testkit::free_port());
    let unreachable = Arc::new(EventBridgePublisher::new(&config(down, &bus)).await);
    let (batch, _) = events();
    assert!(unreachable.publish(&batch).await.is_err());
    // Nothing to put is no call: an empty or non-domain batch is Ok.
    assert!(unreachable.publish(&batch[..1]).await.is_ok());

    let reachable = Arc::new(EventBridgePublisher::new(&config(endpoint.clone(), &bus)).await);
    let both = Both {
        first: reachable.clone(),
        second: unreachable.clone(),
    };
    assert!(both.publish(&batch).await.is_err());
    let both = Both {
        first: unreachable,
        second: reachable,
    };
    assert!(both.publish(&batch).await.is_err());
    // The first publisher of the first `Both` had accepted the batch (at
    // least once: the relay's retry may deliver it again).
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    assert_eq!(receive(&sqs, &url, 4).await.len(), 4);
}
