//! `nax_worker_oldest_message_age_seconds` (docs/OPERATIONS.md, "Metrics"):
//! the age of the oldest message waiting or in flight on a queue, as best
//! its source can tell. While a message is retried (received, not
//! deleted, invisible until its visibility timeout runs out) the gauge
//! keeps rising, also between its receives; once it is handled and the
//! queue is empty the gauge falls back to 0. Over the embedded event log
//! and over SQS (`moto_server`, `NAX_TEST_MOTO_PORT`).

use api::events::log::EventLog;
use api::events::sqs::{Queue, SqsConfig, SqsPublisher, StaticCredentials};
use api::events::{Event, EventPublisher, EventType};
use api::queue::log::{LogOptions, LogSource};
use api::queue::sqs::SqsSource;
use api::queue::{run, Consumer, Delivery, Outcome, RunOptions, Source};
use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The gauge of `queue` now (`None` before it was first set).
fn age(queue: Queue) -> Option<f64> {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    let text = HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("one recorder")
        })
        .render();
    let series = format!(
        "nax_worker_oldest_message_age_seconds{{queue=\"{}\"}} ",
        queue.name()
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse().expect("a number"))
}

/// Leaves every message for `retries` receives, then handles it.
struct Reluctant {
    retries: u32,
    seen: AtomicU32,
    done: AtomicBool,
}

#[async_trait]
impl Consumer for Reluctant {
    fn name(&self) -> &'static str {
        "reluctant"
    }

    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
        batch
            .iter()
            .map(|_| {
                if self.seen.fetch_add(1, Ordering::SeqCst) < self.retries {
                    Outcome::Retry("not yet".into())
                } else {
                    self.done.store(true, Ordering::SeqCst);
                    Outcome::Done
                }
            })
            .collect()
    }
}

/// Runs [`Reluctant`] on `source`, whose queue holds one message (with a
/// 2 s visibility timeout), sampling the gauge every 100 ms: between the
/// message's first and second receive (while it waits to come back) the
/// age must pass 0.9 s, overall 1.5 s, and it must read 0 within 3 s of
/// the message being handled.
async fn rises_while_retried_then_falls_to_zero(source: Arc<dyn Source>) {
    let queue = source.queue();
    // The recorder is installed before the loop sets the gauge.
    assert_eq!(age(queue), None);
    let consumer = Arc::new(Reluctant {
        retries: 2,
        seen: AtomicU32::new(0),
        done: AtomicBool::new(false),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(
        source,
        consumer.clone(),
        RunOptions {
            stop: stopped,
            ready: Arc::new(AtomicBool::new(false)),
        },
    ));
    let started = Instant::now();
    // (receives so far, the gauge)
    let mut samples: Vec<(u32, f64)> = Vec::new();
    while !consumer.done.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the message was not handled within 30 s"
        );
        let seen = consumer.seen.load(Ordering::SeqCst);
        if seen > 0 {
            let gauge = age(queue).expect("the gauge is set once a message was received");
            samples.push((seen, gauge));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let highest = |of: &dyn Fn(u32) -> bool| {
        samples
            .iter()
            .filter(|(seen, _)| of(*seen))
            .map(|(_, age)| *age)
            .fold(0.0, f64::max)
    };
    assert!(
        highest(&|seen| seen == 1) >= 0.9,
        "the age rose while the message waited to come back: {samples:?}"
    );
    assert!(
        highest(&|_| true) >= 1.5,
        "the age rose while the message was retried: {samples:?}"
    );
    let handled = Instant::now();
    loop {
        let now = age(queue);
        if now == Some(0.0) {
            break;
        }
        assert!(
            handled.elapsed() < Duration::from_secs(3),
            "the age did not fall to 0 once the queue drained: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_event_log_the_age_rises_while_retried_and_falls_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let event = Event::new(EventType::UserRegistered, Some("u"), json!({}));
    EventLog::open(dir.path())
        .unwrap()
        .publish(&crate::common::shared(&[event]))
        .await
        .unwrap();
    let options = LogOptions {
        visibility: Duration::from_secs(2),
        poll: Duration::from_millis(20),
    };
    let source = LogSource::open(dir.path(), Queue::HubspotSync, options).unwrap();
    rises_while_retried_then_falls_to_zero(Arc::new(source)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sqs_the_age_rises_while_retried_and_falls_to_zero() {
    let config = SqsConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        region: "us-east-1".to_owned(),
        queue_prefix: format!("age{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    };
    let client = SqsPublisher::client(&config).await;
    SqsPublisher::ensure_queues(&client, &config.queue_prefix)
        .await
        .unwrap();
    let event = Event::new(EventType::WebhookReceived, Some("u"), json!({}));
    SqsPublisher::new(&config)
        .await
        .publish(&crate::common::shared(&[event]))
        .await
        .unwrap();
    let source = SqsSource::connect(&config, Queue::WebhookProcessing)
        .await
        .unwrap()
        .with_visibility(Duration::from_secs(2));
    rises_while_retried_then_falls_to_zero(Arc::new(source)).await;
}
