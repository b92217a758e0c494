//! `events::eventbridge::EventBridgePublisher` against the shared
//! `moto_server`: a bus, a rule matching our source and an SQS target,
//! as `infra/terraform/eventbridge.tf` sets up; only the four domain
//! events reach the target; entries the bus refuses are re-sent, and
//! refused every time they are an `Err`; an unreachable endpoint is an
//! `Err` (the relay keeps the batch), also through `Both`; the publisher
//! `ApiParts::from_config` builds with `eventbridge_bus` sends to SQS and
//! the bus. moto refuses an entry only when its detail is not JSON, so a
//! proxy in front of it spoils the detail of chosen entries.

use api::events::eventbridge::{Both, EventBridgeConfig, EventBridgePublisher, SOURCE};
use api::events::sqs::StaticCredentials;
use api::events::{Event, EventPublisher, EventType};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{Rewrite, Step};

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
    publisher
        .publish(&crate::common::shared(&batch))
        .await
        .expect("publish");

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
    assert!(unreachable
        .publish(&crate::common::shared(&batch))
        .await
        .is_err());
    // Nothing to put is no call: an empty or non-domain batch is Ok.
    assert!(unreachable
        .publish(&crate::common::shared(&batch[..1]))
        .await
        .is_ok());

    let reachable = Arc::new(EventBridgePublisher::new(&config(endpoint.clone(), &bus)).await);
    let both = Both {
        first: reachable.clone(),
        second: unreachable.clone(),
    };
    assert!(both.publish(&crate::common::shared(&batch)).await.is_err());
    let both = Both {
        first: unreachable,
        second: reachable,
    };
    assert!(both.publish(&crate::common::shared(&batch)).await.is_err());
    // The first publisher of the first `Both` had accepted the batch (at
    // least once: the relay's retry may deliver it again).
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    assert_eq!(receive(&sqs, &url, 4).await.len(), 4);
}

/// Spoils the detail of `PutEvents` entries containing `marker` (moto
/// then refuses them as `MalformedDetail`), in `left` calls.
struct Spoil {
    marker: String,
    left: AtomicU32,
}

impl Rewrite for Spoil {
    type Note = ();

    fn request(&self, headers: &axum::http::HeaderMap, body: Vec<u8>) -> Step<()> {
        let put = headers
            .get("x-amz-target")
            .is_some_and(|t| t == "AWSEvents.PutEvents");
        let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
            return Step::Forward(body, ());
        };
        if !put || self.left.load(Ordering::SeqCst) == 0 {
            return Step::Forward(body, ());
        }
        let mut spoiled = false;
        for entry in request["Entries"].as_array_mut().into_iter().flatten() {
            if entry["Detail"]
                .as_str()
                .is_some_and(|d| d.contains(&self.marker))
            {
                entry["Detail"] = json!("not json");
                spoiled = true;
            }
        }
        if spoiled {
            self.left.fetch_sub(1, Ordering::SeqCst);
        }
        Step::Forward(request.to_string().into_bytes(), ())
    }

    fn answer(&self, _: (), _: axum::http::StatusCode, body: Vec<u8>) -> Vec<u8> {
        body
    }
}

#[tokio::test]
async fn refused_entries_are_sent_again_and_an_error_when_refused_every_time() {
    let endpoint = testkit::shared_moto_endpoint();
    let (bus, url) = bus_with_queue(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    for (times, ok) in [(1, true), (u32::MAX, false)] {
        let (batch, wanted) = events();
        let marked = batch
            .iter()
            .find(|e| e.event_type == "kyc.status_changed")
            .expect("a kyc event")
            .id
            .clone();
        let spoil = Spoil {
            marker: marked.clone(),
            left: AtomicU32::new(times),
        };
        let proxy = testkit::start_http_proxy(&endpoint, false, spoil).await;
        let publisher = EventBridgePublisher::new(&config(proxy, &bus)).await;
        let result = publisher.publish(&crate::common::shared(&batch)).await;
        let arrived: HashSet<String> = receive(&sqs, &url, if ok { 4 } else { 3 })
            .await
            .iter()
            .map(|e| e["detail"]["id"].as_str().expect("id").to_owned())
            .collect();
        if ok {
            assert_eq!(result, Ok(()));
            assert_eq!(arrived, wanted, "the refused entry arrives once re-sent");
        } else {
            let err = result.expect_err("refused every time");
            assert!(err.to_string().contains("MalformedDetail"), "{err}");
            let mut others = wanted.clone();
            others.remove(&marked);
            assert_eq!(arrived, others);
        }
        assert!(receive_once(&sqs, &url, 1).await.is_empty());
    }
}

#[tokio::test]
async fn the_configured_publisher_sends_to_sqs_and_the_bus() {
    let endpoint = testkit::shared_moto_endpoint();
    let (bus, url) = bus_with_queue(&endpoint).await;
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    let config = api::ApiConfig {
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(api::secret::Secret::new("test")),
        events_to_sqs: true,
        sqs_endpoint: endpoint.clone(),
        sqs_queue_prefix: prefix.clone(),
        sqs_create_queues: true,
        eventbridge_bus: bus,
        eventbridge_endpoint: endpoint.clone(),
        ..api::ApiConfig::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let venue = feeds::SandboxVenue::start(feeds::SandboxConfig {
        events_per_sec: 0,
        ..feeds::SandboxConfig::default()
    })
    .expect("venue");
    let parts = api::ApiParts::from_config(
        config,
        dir.path().to_path_buf(),
        Arc::new(venue.clone()),
        "http://127.0.0.1:9".into(),
    )
    .await
    .expect("parts");
    let (batch, wanted) = events();
    parts
        .publisher
        .publish(&crate::common::shared(&batch))
        .await
        .expect("publish");
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let on_bus: HashSet<String> = receive(&sqs, &url, 4)
        .await
        .iter()
        .map(|e| e["detail"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(on_bus, wanted);
    let audit = sqs
        .get_queue_url()
        .queue_name(format!("{prefix}audit-log-queue.fifo"))
        .send()
        .await
        .expect("audit queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let audited: HashSet<String> = receive(&sqs, &audit, batch.len())
        .await
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(audited.len(), batch.len(), "every event on the audit queue");
    venue.stop().await;
}
