use super::*;
use crate::events::{EventPublisher, EventType};
use serde_json::json;

fn event(kind: EventType, user: &str, i: u32) -> Event {
    Event::new(kind, Some(user), json!({ "i": i }))
}

fn options(visibility_ms: u64) -> LogOptions {
    LogOptions {
        visibility: Duration::from_millis(visibility_ms),
        poll: Duration::from_millis(10),
    }
}

async fn publish(dir: &Path, events: &[Event]) {
    EventLog::open(dir).unwrap().publish(events).await.unwrap();
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.event.id.clone()).collect()
}

fn handles(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.handle.clone()).collect()
}

#[tokio::test]
async fn hands_out_only_its_queues_events_in_order_and_resumes_after_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = |i| event(EventType::WebhookReceived, "u", i);
    let events = vec![
        webhook(0),
        event(EventType::OrderAccepted, "u", 1),
        webhook(2),
        webhook(3),
    ];
    publish(dir.path(), &events).await;
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let got = source.receive(2, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [events[0].id.clone(), events[2].id.clone()]);
    source.delete(&handles(&got[..1])).await.unwrap();
    drop(source);
    // A restart: the deleted one is gone, the received-but-not-deleted one
    // comes back first (at least once).
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [events[2].id.clone(), events[3].id.clone()]);
    assert_eq!(
        got[0].receives, 1,
        "receive counts start again after a restart"
    );
}

#[tokio::test]
async fn an_undeleted_message_comes_back_then_goes_to_the_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let poison = event(EventType::WebhookReceived, "u", 0);
    let next = event(EventType::WebhookReceived, "u", 1);
    publish(dir.path(), &[poison.clone(), next.clone()]).await;
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(50)).unwrap();
    let first = source.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [poison.id.clone()]);
    // Not the same message while it is invisible: the one behind it.
    let second = source.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&second), [next.id.clone()]);
    source.delete(&handles(&second)).await.unwrap();
    let mut receives = vec![1];
    loop {
        let got = source.receive(1, Duration::from_millis(500)).await.unwrap();
        match got.first() {
            Some(d) => {
                assert_eq!(d.event.id, poison.id);
                receives.push(d.receives);
            }
            None => break,
        }
    }
    let max = Queue::WebhookProcessing.max_receive_count();
    assert_eq!(receives, (1..=max).collect::<Vec<_>>());
    let dead = crate::events::log::EventLog::read_all(source.dead_letter_file()).unwrap();
    assert_eq!(dead, vec![poison]);
    let depth = source.depth().await.unwrap();
    assert_eq!(
        depth,
        Depth {
            visible: 0,
            in_flight: 0,
            dead_letters: 1
        }
    );
}

#[tokio::test]
async fn fifo_holds_a_group_while_its_head_is_in_flight_and_lets_other_groups_go() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = event(EventType::UserRegistered, "a", 0);
    let a1 = event(EventType::OrderAccepted, "a", 1);
    let b0 = event(EventType::UserRegistered, "b", 2);
    publish(dir.path(), &[a0.clone(), a1.clone(), b0.clone()]).await;
    let source = LogSource::open(dir.path(), Queue::AuditLog, options(60_000)).unwrap();
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [a0.id.clone(), b0.id.clone()], "one per group");
    source.delete(&handles(&got)).await.unwrap();
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [a1.id.clone()]);
}

#[tokio::test]
async fn a_torn_last_line_waits_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let whole = event(EventType::WebhookReceived, "u", 0);
    let torn = event(EventType::WebhookReceived, "u", 1);
    publish(dir.path(), &[whole.clone()]).await;
    let text = serde_json::to_string(&torn).unwrap();
    let (head, tail) = text.split_at(text.len() / 2);
    let path = dir.path().join(EventLog::FILE);
    let append = |s: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    append(head);
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [whole.id.clone()]);
    append(&format!("{tail}\n"));
    let got = source.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ids(&got), [torn.id.clone()]);
}
