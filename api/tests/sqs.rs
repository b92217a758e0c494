//! `events::sqs::SqsPublisher` against a real `moto_server`: routing,
//! FIFO group and deduplication ids, dead-letter redrive, an SQS outage
//! during which the relay keeps every event in the outbox, and each
//! group's order on the audit queue (also when SQS refuses an entry).
//! Deliveries are checked as sequences: every event at least once, each
//! group in commit order once duplicates are removed, duplicates counted.
//!
//! The shared moto comes from `scripts/test.sh` (`NAX_TEST_MOTO_PORT`);
//! the outage test starts and kills its own `moto_server` child. Tests
//! fail loudly when moto is missing; they never skip.

mod fault;

use crate::common::shared;
use api::events::relay::Relay;
use api::events::sqs::{Queue, SqsConfig, SqsPublisher, StaticCredentials};
use api::events::{Event, EventPublisher, EventType};
use api::store::embedded::EmbeddedStore;
use api::store::{Store, Write};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{shared_moto_port, OwnServer};

/// A config on `port` with a fresh queue prefix (tests never share queues).
fn config(port: u16) -> SqsConfig {
    SqsConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".to_owned(),
        queue_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    }
}

async fn queue_url(client: &Client, name: &str) -> String {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect("GetQueueUrl")
        .queue_url()
        .expect("queue url")
        .to_owned()
}

/// A received message: body, and the FIFO group and deduplication ids.
struct Received {
    body: Event,
    group: Option<String>,
    dedup: Option<String>,
    /// The `traceparent` message attribute.
    traceparent: Option<String>,
}

/// Receives (and deletes) until `want` messages arrived or `deadline`.
async fn drain(client: &Client, url: &str, want: usize, deadline: Duration) -> Vec<Received> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < want && start.elapsed() < deadline {
        let answer = match client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for m in answer.messages() {
            let attrs = m.attributes();
            let attr = |name| attrs.and_then(|a| a.get(&name)).cloned();
            out.push(Received {
                body: serde_json::from_str(m.body().expect("body")).expect("body is an event"),
                group: attr(MessageSystemAttributeName::MessageGroupId),
                dedup: attr(MessageSystemAttributeName::MessageDeduplicationId),
                traceparent: m
                    .message_attributes()
                    .and_then(|a| a.get("traceparent"))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned),
            });
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
    out
}

fn event(kind: EventType, user: Option<&str>, n: usize) -> Event {
    Event::new(kind, user, json!({ "n": n }))
}

#[tokio::test]
async fn publish_routes_every_event_with_fifo_keys() {
    let cfg = config(shared_moto_port());
    let client = SqsPublisher::client(&cfg).await;
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("create queues");
    let publisher = SqsPublisher::new(&cfg).await;

    // 25 events: three SendMessageBatch calls to the audit queue.
    let kinds = [
        EventType::UserRegistered,
        EventType::OrderAccepted,
        EventType::KycStatusChanged,
        EventType::WebhookReceived,
        EventType::UserProfileUpdated,
    ];
    let events: Vec<Event> = (0..25)
        .map(|n| {
            let user = format!("user-{}", n % 3);
            let user = (n % 5 != 3).then_some(user.as_str());
            let mut e = event(kinds[n % kinds.len()], user, n);
            // Every other event made inside a traced request.
            e.traceparent = (n % 2 == 0).then(|| format!("00-{:032x}-{:016x}-01", n + 1, n + 1));
            e
        })
        .collect();
    publisher.publish(&shared(&events)).await.expect("publish");
    // A re-sent batch (the relay after a crash) is deduplicated by SQS
    // (moto deduplicates only against messages still queued, so re-send
    // before reading).
    publisher
        .publish(&shared(&events[..5]))
        .await
        .expect("re-publish");

    let by_id: HashMap<&str, &Event> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let audit_url = queue_url(
        &client,
        &format!("{}audit-log-queue.fifo", cfg.queue_prefix),
    )
    .await;
    let audit = drain(&client, &audit_url, events.len(), Duration::from_secs(20)).await;
    assert_eq!(
        audit.len(),
        events.len(),
        "every event reaches the audit log"
    );
    for m in &audit {
        let sent = by_id[m.body.id.as_str()];
        assert_eq!(&m.body, sent, "body is the event JSON");
        let group = sent.user_id.clone().unwrap_or_else(|| "system".to_owned());
        assert_eq!(m.group.as_deref(), Some(group.as_str()), "group = user id");
        assert_eq!(
            m.dedup.as_deref(),
            Some(sent.id.as_str()),
            "dedup id = event id"
        );
        assert_eq!(
            m.traceparent, sent.traceparent,
            "the trace context travels as the traceparent message attribute"
        );
    }
    let mut audit_ids: Vec<_> = audit.iter().map(|m| m.body.id.clone()).collect();
    audit_ids.sort();
    audit_ids.dedup();
    assert_eq!(audit_ids.len(), events.len(), "no duplicates");
    let again = drain(&client, &audit_url, 1, Duration::from_secs(2)).await;
    assert!(again.is_empty(), "FIFO dedup drops re-sent event ids");

    for (queue, kinds) in [
        (
            Queue::HubspotSync,
            &[
                "user.registered",
                "user.profile_updated",
                "kyc.status_changed",
            ][..],
        ),
        (Queue::WebhookProcessing, &["webhook.received"][..]),
    ] {
        let want: HashSet<&str> = events
            .iter()
            .filter(|e| kinds.contains(&e.event_type.as_str()))
            .map(|e| e.id.as_str())
            .collect();
        let url = queue_url(&client, &format!("{}{}", cfg.queue_prefix, queue.name())).await;
        // Standard queues do not deduplicate: the re-sent ones come twice
        // (consumers deduplicate by event id).
        let resent = events[..5]
            .iter()
            .filter(|e| want.contains(e.id.as_str()))
            .count();
        let total = want.len() + resent;
        let got = drain(&client, &url, total + 1, Duration::from_secs(3)).await;
        let got_ids: HashSet<&str> = got.iter().map(|m| m.body.id.as_str()).collect();
        assert_eq!(got.len(), total, "{queue:?} gets exactly its events");
        assert_eq!(got_ids, want, "{queue:?} routing");
        for m in &got {
            assert_eq!(&m.body, by_id[m.body.id.as_str()]);
        }
    }
}

#[tokio::test]
async fn hubspot_message_moves_to_dead_letter_queue_after_max_receives() {
    let cfg = config(shared_moto_port());
    let client = SqsPublisher::client(&cfg).await;
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("create queues");
    let attrs = client
        .get_queue_attributes()
        .queue_url(queue_url(&client, &format!("{}hubspot-sync-queue", cfg.queue_prefix)).await)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .expect("GetQueueAttributes");
    let policy: serde_json::Value = serde_json::from_str(
        attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .expect("redrive policy"),
    )
    .expect("policy json");
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "5");

    let publisher = SqsPublisher::new(&cfg).await;
    let sent = event(EventType::UserRegistered, Some("user-dlq"), 1);
    publisher
        .publish(&shared(std::slice::from_ref(&sent)))
        .await
        .expect("publish");

    let url = queue_url(&client, &format!("{}hubspot-sync-queue", cfg.queue_prefix)).await;
    let mut receives = 0;
    for _ in 0..(Queue::HubspotSync.max_receive_count() + 3) {
        let answer = client
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(0)
            .send()
            .await
            .expect("ReceiveMessage");
        receives += answer.messages().len();
    }
    assert_eq!(
        receives,
        Queue::HubspotSync.max_receive_count() as usize,
        "received exactly maxReceiveCount times before the redrive"
    );
    let dlq_url = queue_url(
        &client,
        &format!("{}hubspot-sync-queue-dlq", cfg.queue_prefix),
    )
    .await;
    let dead = drain(&client, &dlq_url, 1, Duration::from_secs(5)).await;
    assert_eq!(dead.len(), 1, "the message lands in the DLQ");
    assert_eq!(dead[0].body, sent);
}

/// Checks `received` (in arrival order) against `committed` (event id and
/// FIFO group, in commit order): every event arrived at least once, and
/// within each group first arrivals follow commit order. Returns how many
/// deliveries were duplicates (at least once allows them).
fn check_fifo(what: &str, committed: &[(String, String)], received: &[Received]) -> usize {
    let rank: HashMap<&str, usize> = committed
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let mut first_seen = HashSet::new();
    let mut last_of_group: HashMap<String, usize> = HashMap::new();
    let mut duplicates = 0;
    for m in received {
        let Some(&at) = rank.get(m.body.id.as_str()) else {
            continue;
        };
        if !first_seen.insert(m.body.id.clone()) {
            duplicates += 1;
            continue;
        }
        let group = m.group.clone().unwrap_or_default();
        assert_eq!(group, committed[at].1, "{what}: group of {}", m.body.id);
        if let Some(&before) = last_of_group.get(&group) {
            assert!(
                before < at,
                "{what}: in group {group}, event #{at} arrived after #{before} ({duplicates} duplicates so far)"
            );
        }
        last_of_group.insert(group, at);
    }
    let missing: Vec<&String> = committed
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !first_seen.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} events never arrived ({duplicates} duplicates): {missing:?}",
        missing.len(),
        committed.len()
    );
    duplicates
}

#[tokio::test]
async fn an_entry_sqs_refuses_is_resent_before_the_rest_of_its_group() {
    let port = shared_moto_port();
    let cfg = config(port);
    let client = SqsPublisher::client(&cfg).await;
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("create queues");
    // SQS refuses the marked event once; the publisher goes through the
    // proxy, the test reads moto directly.
    let marker = format!("refuse-{}", uuid::Uuid::new_v4().simple());
    let proxy = fault::start(port, &marker, 1).await;
    let publisher = SqsPublisher::new(&SqsConfig {
        endpoint: Some(proxy),
        ..cfg.clone()
    })
    .await;
    let events: Vec<Event> = (0..12)
        .map(|n| {
            let user = if n % 3 == 2 { "user-b" } else { "user-a" };
            let data = if n == 1 {
                json!({ "n": n, "note": marker })
            } else {
                json!({ "n": n })
            };
            Event::new(EventType::OrderFilled, Some(user), data)
        })
        .collect();
    publisher
        .publish(&shared(&events))
        .await
        .expect("publish after one refusal");
    let committed: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.id.clone(), e.user_id.clone().expect("user")))
        .collect();
    let url = queue_url(
        &client,
        &format!("{}audit-log-queue.fifo", cfg.queue_prefix),
    )
    .await;
    let got = drain(&client, &url, events.len(), Duration::from_secs(20)).await;
    let duplicates = check_fifo("one refused entry", &committed, &got);
    assert_eq!(duplicates, 0, "nothing was sent twice");
}

async fn commit(store: &dyn Store, relay: &Relay, n: usize, from: usize) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for i in from..from + n {
        let kind = if i % 2 == 0 {
            EventType::OrderFilled
        } else {
            EventType::UserRegistered
        };
        let user = format!("user-{}", i % 4);
        let e = event(kind, Some(&user), i);
        ids.push((e.id.clone(), user));
        store.commit(vec![Write::Emit(e)]).await.expect("commit");
        relay.notify();
    }
    ids
}

/// Every audit message (deleted once read) until `want` distinct events
/// arrived or 30 s passed, in arrival order.
async fn audit(client: &Client, cfg: &SqsConfig, want: &[(String, String)]) -> Vec<Received> {
    let url = queue_url(client, &format!("{}audit-log-queue.fifo", cfg.queue_prefix)).await;
    let ids: HashSet<&str> = want.iter().map(|(id, _)| id.as_str()).collect();
    let mut got: Vec<Received> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let seen: HashSet<&str> = got.iter().map(|m| m.body.id.as_str()).collect();
        if ids.is_subset(&seen) {
            break;
        }
        got.extend(drain(client, &url, 1, Duration::from_secs(2)).await);
    }
    got
}

#[tokio::test]
async fn sqs_outage_keeps_events_in_the_outbox_until_it_returns() {
    let port = testkit::free_port();
    let mut moto = OwnServer::moto(port);
    let cfg = config(port);
    let client = SqsPublisher::client(&cfg).await;
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("create queues");

    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("open store"));
    let publisher = Arc::new(SqsPublisher::new(&cfg).await);
    let relay = Relay::start(store.clone(), publisher);

    let before = commit(&*store, &relay, 12, 0).await;
    let got = audit(&client, &cfg, &before).await;
    let duplicates_before = check_fifo("while SQS is up", &before, &got);

    moto.kill();
    let during = commit(&*store, &relay, 15, 100).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending: HashSet<String> = store
        .outbox_pending(1000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|e| e.event.id.clone())
        .collect();
    assert_eq!(
        pending,
        during.iter().map(|(id, _)| id.clone()).collect(),
        "every event committed during the outage stays in the outbox"
    );

    let _moto = OwnServer::moto(port);
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("re-create queues");
    let got = audit(&client, &cfg, &during).await;
    let duplicates = check_fifo("after the outage", &during, &got);
    // At least once: a batch SQS took only part of is sent again whole
    // (moto deduplicates only against messages still queued). Each event
    // goes out at most once per relay attempt, so duplicates stay below
    // the number of events.
    eprintln!(
        "sqs outage: {} + {} events, {duplicates_before} + {duplicates} duplicates",
        before.len(),
        during.len()
    );
    assert!(
        duplicates_before == 0 && duplicates < during.len(),
        "duplicates: {duplicates_before} while up, {duplicates} of {} after the outage",
        during.len()
    );
    let start = Instant::now();
    while !store.outbox_pending(10).await.expect("outbox").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "outbox not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.stop().await;
}

#[tokio::test]
async fn publish_fails_when_sqs_refuses_a_message() {
    let cfg = config(shared_moto_port());
    let client = SqsPublisher::client(&cfg).await;
    SqsPublisher::ensure_queues(&client, &cfg.queue_prefix)
        .await
        .expect("create queues");
    let publisher = SqsPublisher::new(&cfg).await;
    // Over SQS's message size limit: refused, so publish must not say Ok
    // (the relay keeps the event in the outbox).
    let huge = Event::new(
        EventType::OrderFilled,
        Some("user-big"),
        json!({ "blob": "x".repeat(1024 * 1024 + 1) }),
    );
    let small = event(EventType::OrderFilled, Some("user-big"), 1);
    let result = publisher.publish(&shared(&[small, huge])).await;
    assert!(
        result.is_err(),
        "a refused message makes publish fail: {result:?}"
    );
}

#[tokio::test]
async fn publish_fails_when_queues_are_missing() {
    let cfg = config(shared_moto_port());
    let publisher = SqsPublisher::new(&cfg).await;
    let result = publisher
        .publish(&shared(&[event(EventType::OrderFilled, None, 1)]))
        .await;
    assert!(
        result.is_err(),
        "unresolvable queues make publish fail: {result:?}"
    );
}
