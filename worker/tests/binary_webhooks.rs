//! The `nax-worker webhooks` binary on SQS (moto): it reports the queue's
//! backlog, its failures and its dead letters on `/metrics`. The
//! helpers that run the binary are `binary.rs`'s.

use crate::binary::{get, sample, terminate, worker, Running};
use api::events::{Event, EventPublisher, EventType};
use serde_json::json;
use std::time::{Duration, Instant};

/// `nax-worker webhooks` on SQS (moto) reports its queue on `/metrics`
/// (docs/ARCHITECTURE.md, "Where they run"): the five messages waiting when it starts
/// (`nax_worker_queue_visible`), the four it handles
/// (`nax_worker_processed_total`), and a poison message, a
/// `webhook.received` of a provider this build does not know, that comes
/// back after each failure (`nax_worker_failed_total` one up per receive)
/// until, after the queue's maximum receives, SQS moves it to the
/// dead-letter queue (`nax_worker_dlq_depth` 1, the queue empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_worker_reports_backlog_failures_and_dead_letters() {
    use api::events::sqs::{Queue, SqsPublisher};
    use api::queue::sqs::SqsSource;
    use api::queue::Source as _;
    use sandbox_venue::{BearerToken, VenueServerConfig};

    const TOKEN: &str = "binary-metrics-venue-token";
    let venue = sandbox_venue::serve(VenueServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        BearerToken::new(TOKEN).unwrap(),
    ))
    .await
    .expect("venue starts");
    let moto = testkit::shared_moto_endpoint();
    let prefix = format!("met{}-", uuid::Uuid::new_v4().simple());
    let sqs = crate::common::sqs_config(&moto, &prefix);
    let client = SqsPublisher::client(&sqs).await;
    SqsPublisher::ensure_queues(&client, &prefix)
        .await
        .expect("queues on moto");
    // A short visibility timeout (the queue's setting, as Terraform's
    // would be), so the poison message comes back within seconds.
    let url = SqsPublisher::queue_url(&client, &prefix, Queue::WebhookProcessing)
        .await
        .unwrap();
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .send()
        .await
        .expect("visibility timeout");
    // Four the applier is done with at once (no receipt: expired, dropped
    // with a log line), one it cannot handle.
    let received = |provider: &str, id: String| {
        Event::new(
            EventType::WebhookReceived,
            None,
            json!({ "provider": provider, "webhook_id": id }),
        )
    };
    let mut events: Vec<Event> = (0..4)
        .map(|i| received("stripe", format!("evt_gone_{i}")))
        .collect();
    events.push(received("from-a-newer-build", "evt_poison".into()));
    SqsPublisher::new(&sqs)
        .await
        .publish(&crate::common::shared(&events))
        .await
        .expect("published");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nevents_to_sqs = true\nsqs_endpoint = \"{moto}\"\nsqs_queue_prefix = \"{prefix}\"\n\
             aws_access_key_id = \"test\"\naws_secret_access_key = \"test\"\n"
        ),
    )
    .unwrap();
    let port = testkit::free_port();
    let child = worker(
        dir.path(),
        port,
        &["--config", config.to_str().unwrap(), "webhooks"],
    )
    .env("NAX_VENUE", "graphql")
    .env(
        "NAX_VENUE_ENDPOINT",
        format!("http://{}/graphql", venue.addr()),
    )
    .env("NAX_VENUE_TOKEN", TOKEN)
    .spawn()
    .expect("nax-worker starts");
    let mut child = Running(child);

    let series = |name: &str, label: &str| format!("{name}{{{label}}}");
    let queue = format!("queue=\"{}\"", Queue::WebhookProcessing.name());
    let consumer = "consumer=\"webhooks\"";
    let visible = series("nax_worker_queue_visible", &queue);
    let dead = series("nax_worker_dlq_depth", &queue);
    let processed = series("nax_worker_processed_total", consumer);
    let failed = series("nax_worker_failed_total", consumer);
    let max_receives = f64::from(Queue::WebhookProcessing.max_receive_count());
    let mut first_visible = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        if let Some((200, metrics)) = get(port, "/metrics").await {
            let read = |s: &str| sample(&metrics, s);
            // Read at the loop's start, then every 10 s: the highest
            // value scraped is the backlog at the start.
            if let Some(v) = read(&visible) {
                first_visible = Some(first_visible.map_or(v, |f: f64| f.max(v)));
            }
            let now = [&visible, &dead, &processed, &failed].map(|s| read(s));
            if now == [Some(0.0), Some(1.0), Some(4.0), Some(max_receives)] {
                break metrics;
            }
            assert!(
                Instant::now() < deadline,
                "visible, dead letters, processed, failed: {now:?}"
            );
        }
        assert!(Instant::now() < deadline, "no /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The depth read as it started, before its first receive.
    assert_eq!(first_visible, Some(5.0), "{last}");
    let depth = SqsSource::connect(&sqs, Queue::WebhookProcessing)
        .await
        .unwrap()
        .depth()
        .await
        .unwrap();
    assert_eq!(
        (depth.visible, depth.in_flight, depth.dead_letters),
        (0, 0, 1)
    );
    terminate(&mut child).await;
}
