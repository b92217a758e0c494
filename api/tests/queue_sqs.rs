//! `api::queue::run` over `api::queue::sqs::SqsSource` on a real
//! `moto_server`: a poison message reaches the dead-letter queue after the
//! queue's maximum receives without holding up the messages behind it
//! (on the FIFO audit queue, its own group's successors wait for it:
//! docs/ARCHITECTURE.md, "After the queues"); and a delivery carries the
//! `traceparent` message attribute, which wins over the body's field.

use api::events::sqs::{Queue, SqsConfig, SqsPublisher, StaticCredentials};
use api::events::{Event, EventPublisher, EventType};
use api::queue::sqs::SqsSource;
use api::queue::{run, Consumer, Delivery, Outcome, RunOptions, Source};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config() -> SqsConfig {
    SqsConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        region: "us-east-1".to_owned(),
        queue_prefix: format!("q{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    }
}

/// Fails one event every time; records when each other one was handled.
struct Picky {
    poison: String,
    handled: Mutex<Vec<(String, Instant)>>,
}

#[async_trait]
impl Consumer for Picky {
    fn name(&self) -> &'static str {
        "picky"
    }

    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
        batch
            .iter()
            .map(|d| {
                if d.event.id == self.poison {
                    Outcome::Retry("poison".into())
                } else {
                    self.handled
                        .lock()
                        .push((d.event.id.clone(), Instant::now()));
                    Outcome::Done
                }
            })
            .collect()
    }
}

async fn until<T>(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes `events`, runs `Picky` on `queue` until the poison is in the
/// dead-letter queue and every other event was handled; returns when each
/// was handled and when the poison was dead-lettered.
async fn poison_run(queue: Queue, events: &[Event]) -> (Arc<Picky>, Instant, Instant) {
    let config = config();
    let client = SqsPublisher::client(&config).await;
    SqsPublisher::ensure_queues(&client, &config.queue_prefix)
        .await
        .unwrap();
    SqsPublisher::new(&config)
        .await
        .publish(&crate::common::shared(events))
        .await
        .unwrap();
    let source = SqsSource::connect(&config, queue)
        .await
        .unwrap()
        .with_visibility(Duration::from_secs(1));
    let source: Arc<dyn Source> = Arc::new(source);
    let consumer = Arc::new(Picky {
        poison: events[0].id.clone(),
        handled: Mutex::new(Vec::new()),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(run(
        source.clone(),
        consumer.clone(),
        RunOptions {
            stop: stopped,
            ready: Arc::new(AtomicBool::new(false)),
        },
    ));
    let dlq = client
        .get_queue_url()
        .queue_name(format!(
            "{}{}",
            config.queue_prefix,
            queue.dead_letter_name()
        ))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let dead_at = until(
        "the poison in the dead-letter queue",
        Duration::from_secs(60),
        async || {
            let out = client
                .receive_message()
                .queue_url(&dlq)
                .send()
                .await
                .unwrap();
            let bodies: Vec<Event> = out
                .messages()
                .iter()
                .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
                .collect();
            bodies
                .iter()
                .any(|e| e.id == events[0].id)
                .then(Instant::now)
        },
    )
    .await;
    until(
        "every other event handled",
        Duration::from_secs(30),
        async || (consumer.handled.lock().len() >= events.len() - 1).then_some(()),
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let handled: Vec<String> = consumer
        .handled
        .lock()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    for e in &events[1..] {
        assert!(handled.contains(&e.id), "{} was handled", e.event_type);
    }
    assert!(!handled.contains(&events[0].id));
    (consumer, started, dead_at)
}

fn handled_at(consumer: &Picky, event: &Event) -> Instant {
    consumer
        .handled
        .lock()
        .iter()
        .find(|(id, _)| *id == event.id)
        .map(|(_, at)| *at)
        .expect("handled")
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_and_the_rest_goes_on() {
    let events: Vec<Event> = (0..6)
        .map(|i| {
            Event::new(
                EventType::UserRegistered,
                Some(&format!("u{i}")),
                json!({ "i": i }),
            )
        })
        .collect();
    let (consumer, started, dead_at) = poison_run(Queue::HubspotSync, &events).await;
    // Needs max receives × the 1 s visibility; the others went at once.
    assert!(
        dead_at - started >= Duration::from_secs(Queue::HubspotSync.max_receive_count() as u64 - 1)
    );
    for e in &events[1..] {
        assert!(
            handled_at(&consumer, e) < dead_at,
            "{} waited for the poison",
            e.id
        );
    }
}

/// The other group goes on at once. That the poison's own successor waits
/// for it is SQS FIFO's rule, which moto does not keep on redelivery (it
/// hands out the later message of a group before the earlier one whose
/// visibility ran out); it is tested on the embedded source, which keeps
/// it (`api/src/queue/log/tests.rs`, `fifo_holds_a_group...`), and the run
/// loop never deletes a message after a failed earlier one of its group in
/// a batch (`keep_group_order`).
#[tokio::test]
async fn on_the_fifo_queue_other_groups_go_on_while_a_poison_leaves() {
    let event =
        |user: &str, i: u32| Event::new(EventType::OrderAccepted, Some(user), json!({ "i": i }));
    let events = vec![event("a", 0), event("a", 1), event("b", 2), event("b", 3)];
    let (consumer, _, dead_at) = poison_run(Queue::AuditLog, &events).await;
    assert!(handled_at(&consumer, &events[2]) < dead_at);
    assert!(handled_at(&consumer, &events[3]) < dead_at);
}

/// A delivery carries the `traceparent` message attribute (what the
/// consumer's `worker.handle` span joins), which wins over the event
/// body's field; the body's field when the message has no attribute.
#[tokio::test]
async fn a_delivery_carries_the_traceparent_attribute_over_the_bodys() {
    const ATTRIBUTE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const BODY: &str = "00-1bf7651916cd43dd8448eb211c80319d-00f067aa0ba902b7-01";
    let config = config();
    let client = SqsPublisher::client(&config).await;
    SqsPublisher::ensure_queues(&client, &config.queue_prefix)
        .await
        .unwrap();
    let url = SqsPublisher::queue_url(&client, &config.queue_prefix, Queue::HubspotSync)
        .await
        .unwrap();
    let mut with_attribute = Event::new(EventType::UserRegistered, Some("a"), json!({}));
    with_attribute.traceparent = Some(BODY.to_owned());
    let mut body_only = with_attribute.clone();
    body_only.id = Event::new(EventType::UserRegistered, Some("b"), json!({})).id;
    for (event, attribute) in [(&with_attribute, Some(ATTRIBUTE)), (&body_only, None)] {
        let send = client
            .send_message()
            .queue_url(&url)
            .message_body(serde_json::to_string(event).unwrap());
        let send = match attribute {
            Some(value) => send.message_attributes(
                "traceparent",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .unwrap(),
            ),
            None => send,
        };
        send.send().await.unwrap();
    }
    let source = SqsSource::connect(&config, Queue::HubspotSync)
        .await
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < 2 && started.elapsed() < Duration::from_secs(10) {
        got.extend(source.receive(10, Duration::from_secs(1)).await.unwrap());
    }
    let traceparent_of = |event: &Event| {
        got.iter()
            .find(|d| d.event.id == event.id)
            .map(|d| d.traceparent.clone())
            .expect("received")
    };
    assert_eq!(traceparent_of(&with_attribute).as_deref(), Some(ATTRIBUTE));
    assert_eq!(traceparent_of(&body_only).as_deref(), Some(BODY));
}
