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
    EventLog::open(dir)
        .unwrap()
        .publish(&shared(events))
        .await
        .unwrap();
}

/// `events` as a publisher takes them.
fn shared(events: &[Event]) -> Vec<Arc<Event>> {
    events.iter().cloned().map(Arc::new).collect()
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
    assert_eq!(ids(&got), [events[0].id.as_str(), events[2].id.as_str()]);
    source.delete(&handles(&got[..1])).await.unwrap();
    drop(source);
    // A restart: the deleted one is gone, the received-but-not-deleted one
    // comes back first (at least once).
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [events[2].id.as_str(), events[3].id.as_str()]);
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
    assert_eq!(ids(&first), [poison.id.as_str()]);
    // Not the same message while it is invisible: the one behind it.
    let second = source.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&second), [next.id.as_str()]);
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
async fn fifo_holds_a_group_while_an_earlier_receive_is_in_flight_and_lets_other_groups_go() {
    let dir = tempfile::tempdir().unwrap();
    let a0 = event(EventType::UserRegistered, "a", 0);
    let a1 = event(EventType::OrderAccepted, "a", 1);
    let b0 = event(EventType::UserRegistered, "b", 2);
    let a2 = event(EventType::OrderAccepted, "a", 3);
    publish(
        dir.path(),
        &[a0.clone(), a1.clone(), b0.clone(), a2.clone()],
    )
    .await;
    let source = LogSource::open(dir.path(), Queue::AuditLog, options(60_000)).unwrap();
    let first = source.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [a0.id.as_str()]);
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(
        ids(&got),
        [b0.id.as_str()],
        "a is held while a0 is in flight"
    );
    source.delete(&handles(&got)).await.unwrap();
    source.delete(&handles(&first)).await.unwrap();
    // One receive may hand out several of a group, in order.
    let got = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&got), [a1.id.as_str(), a2.id.as_str()]);
}

#[tokio::test]
async fn a_torn_last_line_waits_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let whole = event(EventType::WebhookReceived, "u", 0);
    let torn = event(EventType::WebhookReceived, "u", 1);
    publish(dir.path(), std::slice::from_ref(&whole)).await;
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
    assert_eq!(ids(&got), [whole.id.as_str()]);
    append(&format!("{tail}\n"));
    let got = source.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ids(&got), [torn.id.as_str()]);
}

/// The run loop's FIFO rule end to end on the embedded source: a poison
/// holds its own group's successor until it is dead-lettered; the other
/// group goes on at once.
#[tokio::test]
async fn a_fifo_poison_holds_only_its_own_group_until_it_is_dead_lettered() {
    use crate::queue::{run, Consumer, Outcome, RunOptions};
    use parking_lot::Mutex;
    use std::sync::Arc;
    struct Picky(String, Mutex<Vec<String>>);
    #[async_trait]
    impl Consumer for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }
        async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
            batch
                .iter()
                .map(|d| {
                    if d.event.id == self.0 {
                        Outcome::Retry("poison".into())
                    } else {
                        self.1.lock().push(d.event.id.clone());
                        Outcome::Done
                    }
                })
                .collect()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let e = |user: &str, i| event(EventType::OrderAccepted, user, i);
    let events = vec![e("a", 0), e("a", 1), e("b", 2), e("b", 3)];
    publish(dir.path(), &events).await;
    let source = Arc::new(LogSource::open(dir.path(), Queue::AuditLog, options(300)).unwrap());
    let consumer = Arc::new(Picky(events[0].id.clone(), Mutex::new(Vec::new())));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(
        source.clone(),
        consumer.clone(),
        RunOptions {
            stop: stopped,
            ready: Default::default(),
        },
    ));
    // a1 may be handled in the poison's batch, but is not deleted then: it
    // comes back, and goes only after the poison left.
    let count = |id: &str| {
        consumer
            .1
            .lock()
            .iter()
            .filter(|x| x.as_str() == id)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dead = crate::events::log::EventLog::read_all(source.dead_letter_file()).unwrap();
        if dead == vec![events[0].clone()] && count(&events[1].id) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "handled: {:?}",
            consumer.1.lock()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    let order = consumer.1.lock().clone();
    let first = |i: usize| order.iter().position(|id| *id == events[i].id).unwrap();
    let last_a1 = order.iter().rposition(|id| *id == events[1].id).unwrap();
    assert!(first(2) < last_a1 && first(3) < last_a1, "{order:?}");
    assert_eq!(count(&events[2].id), 1, "group b went once, at once");
    assert_eq!(count(&events[3].id), 1);
}

#[tokio::test]
async fn a_further_receive_answers_at_once_when_every_waiting_message_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let a = |i| event(EventType::OrderAccepted, "a", i);
    publish(dir.path(), &[a(0), a(1)]).await;
    let source = LogSource::open(dir.path(), Queue::AuditLog, options(60_000)).unwrap();
    assert_eq!(source.receive(1, Duration::ZERO).await.unwrap().len(), 1);
    // a1 waits behind a0 (in flight): no use waiting for it.
    let asked = Instant::now();
    let more = source
        .receive_more(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(more.is_empty());
    assert!(asked.elapsed() < Duration::from_secs(10), "it did not wait");
    // A first receive still waits its time (another group may come).
    let asked = Instant::now();
    let wait = Duration::from_millis(300);
    assert!(source.receive(10, wait).await.unwrap().is_empty());
    assert!(asked.elapsed() >= wait);
}

#[tokio::test]
async fn one_busy_users_messages_go_ten_a_batch_without_waiting_out_the_gather() {
    use crate::queue::{run, Batching, Consumer, Outcome, RunOptions};
    use parking_lot::Mutex;
    use std::sync::Arc;
    // The audit archive's batching: many, gathered for a while.
    struct Sizes(Mutex<Vec<usize>>);
    #[async_trait]
    impl Consumer for Sizes {
        fn name(&self) -> &'static str {
            "sizes"
        }
        fn batching(&self) -> Batching {
            Batching {
                max: 500,
                wait: Duration::from_secs(30),
            }
        }
        async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
            self.0.lock().push(batch.len());
            vec![Outcome::Done; batch.len()]
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Event> = (0..40)
        .map(|i| event(EventType::OrderAccepted, "busy", i))
        .collect();
    publish(dir.path(), &events).await;
    let source = Arc::new(LogSource::open(dir.path(), Queue::AuditLog, options(60_000)).unwrap());
    let consumer = Arc::new(Sizes(Mutex::new(Vec::new())));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(
        source.clone(),
        consumer.clone(),
        RunOptions {
            stop: stopped,
            ready: Default::default(),
        },
    ));
    // Four batches of ten (a receive hands out ten of a group, as SQS
    // FIFO does), none of them waiting out the 30 s gather while the rest
    // of the group is held behind it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while consumer.0.lock().iter().sum::<usize>() < events.len() {
        assert!(Instant::now() < deadline, "{:?}", consumer.0.lock());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(*consumer.0.lock(), [10, 10, 10, 10]);
}

/// A receive dropped while its read runs on the blocking pool (a consumer
/// stopped while it gathers) gives its messages back: the next receive
/// gets them at once, not after the visibility timeout (a minute here).
#[tokio::test]
async fn a_receive_dropped_midway_gives_its_messages_back() {
    use std::future::Future as _;
    use std::task::Poll;
    // Enough events that reading them takes the blocking pool a while:
    // the first poll starts the read and is pending on it (if the pool
    // finished first anyway, try again on a fresh log).
    let events: Vec<_> = (0..2_000)
        .map(|i| event(EventType::WebhookReceived, &format!("u{}", i % 7), i))
        .collect();
    for _attempt in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), &events).await;
        let source =
            LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
        let mut receive = Box::pin(source.receive(10, Duration::ZERO));
        let first = std::future::poll_fn(|cx| Poll::Ready(receive.as_mut().poll(cx))).await;
        if first.is_ready() {
            continue;
        }
        drop(receive);
        // In flight for a minute unless given back.
        let deadline = Instant::now() + Duration::from_secs(5);
        while source.depth().await.unwrap().in_flight > 0 {
            assert!(Instant::now() < deadline, "still in flight after 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = source.receive(10, Duration::ZERO).await.unwrap();
        let want: Vec<_> = events[..10].iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids(&got), want, "given back, then received again first");
        return;
    }
    panic!("20 first polls in a row found the read already done");
}

#[tokio::test]
async fn what_this_process_appended_is_taken_from_the_tail_and_the_rest_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = |i| event(EventType::WebhookReceived, "u", i);
    let (a, b, c) = (webhook(0), webhook(1), webhook(2));
    // An earlier process's line: nobody in this one appended it.
    publish(dir.path(), std::slice::from_ref(&a)).await;
    let source = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    let first = source.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [a.id.as_str()]);
    log.publish(&shared(&[b.clone(), c.clone()])).await.unwrap();
    // Spoil b's line in the file (same length): a reader of the file
    // would skip it; the tail still has it as published.
    let path = dir.path().join(EventLog::FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let b_line = text.lines().nth(1).unwrap();
    std::fs::write(&path, text.replace(b_line, &"x".repeat(b_line.len()))).unwrap();

    let mut got = first;
    got.extend(source.receive(10, Duration::ZERO).await.unwrap());
    assert_eq!(ids(&got), [a.id.as_str(), b.id.as_str(), c.id.as_str()]);
    assert_eq!(*got[1].event, b, "the event as published");
    // The handles are the lines' ends in the file: deleting b's moves
    // nothing; deleting a's moves the cursor past both, and a reader of
    // the file alone (a new process) finds c, and only c, after it.
    source.delete(&handles(&got[1..2])).await.unwrap();
    source.delete(&handles(&got[..1])).await.unwrap();
    drop((source, log));
    let restarted = LogSource::open(dir.path(), Queue::WebhookProcessing, options(60_000)).unwrap();
    let again = restarted.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&again), [c.id.as_str()]);
    assert_eq!(again[0].handle, got[2].handle);
}
