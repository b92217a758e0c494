//! Tests of the status board (`status.rs`).
use super::*;
use std::collections::VecDeque;
use std::time::Duration;

/// The next `n` frames queued for `sub`, as JSON.
async fn frames(sub: &Subscriber, n: usize) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(5), sub.queue.ready())
            .await
            .expect("a frame within 5 s");
        let mut out = VecDeque::new();
        sub.queue.drain_into(&mut out);
        got.extend(
            out.iter().map(|f| {
                serde_json::from_str(f.body.as_text().expect("a text frame")).expect("JSON")
            }),
        );
    }
    got
}

#[tokio::test]
async fn subscribers_get_the_table_then_each_change_and_markets_reads_it() {
    let history = HistoryLimits {
        max_messages: 10,
        max_age: Duration::from_secs(60),
    };
    let pairs = ["A-B".to_owned(), "C-D".to_owned()];
    let (board, mut reporters) = StatusBoard::start(&pairs, history, ShardPool::start(1));
    let sub = Arc::new(Subscriber::new(7, 1 << 20));
    assert!(!board.subscribe(sub.clone(), None).await.unwrap());
    sub.queue.release(&[STATUS_CHANNEL]);
    let first = &frames(&sub, 1).await[0];
    assert_eq!((&first["seq"], &first["prev_seq"]), (&1.into(), &0.into()));
    assert_eq!(first["pairs"][1]["state"], "resyncing");
    assert_eq!(first["pairs"][1]["reason"], WAITING_FOR_SNAPSHOT);
    let epoch = first["epoch"].as_str().unwrap().to_owned();

    reporters[1].resyncing(None);
    reporters[1].halted(Some("breaker".into()));
    let next = frames(&sub, 2).await;
    assert_eq!(
        (&next[0]["seq"], &next[0]["prev_seq"]),
        (&2.into(), &1.into())
    );
    assert_eq!(next[0]["pairs"][1]["state"], "online");
    assert_eq!(next[1]["pairs"][1]["state"], "halted");
    assert_eq!(next[1]["pairs"][0]["state"], "resyncing", "A-B unchanged");
    let table = board.table();
    assert_eq!(table[1].state, MarketState::Halted);
    assert_eq!(table[1].reason.as_deref(), Some("breaker"));

    // Resumed from seq 1 on this epoch: the two changes again.
    let late = Arc::new(Subscriber::new(8, 1 << 20));
    let resume = Some((epoch, 1));
    assert!(board.subscribe(late.clone(), resume).await.unwrap());
    late.queue.release(&[STATUS_CHANNEL]);
    let replayed = frames(&late, 2).await;
    assert_eq!(replayed[1]["seq"], 3);
    // Another epoch: the table now, not recovered.
    let other = Arc::new(Subscriber::new(9, 1 << 20));
    let resume = Some(("ffffffff".to_owned(), 1));
    assert!(!board.subscribe(other.clone(), resume).await.unwrap());
    other.queue.release(&[STATUS_CHANNEL]);
    let fresh = &frames(&other, 1).await[0];
    assert_eq!((&fresh["seq"], &fresh["prev_seq"]), (&3.into(), &0.into()));
}

fn reasons(c: &Condition) -> (MarketState, Option<&str>) {
    let (state, reason) = c.state();
    (state, reason.map(|r| Box::leak(r.into_boxed_str()) as &str))
}

#[tokio::test]
async fn a_slow_consumer_gets_the_table_again_not_a_close() {
    let history = HistoryLimits {
        max_messages: 10,
        max_age: Duration::from_secs(60),
    };
    let pairs = ["A-B".to_owned(), "C-D".to_owned()];
    let (board, mut reporters) = StatusBoard::start(&pairs, history, ShardPool::start(1));
    // Room for one message (about 230 bytes), not two.
    let sub = Arc::new(Subscriber::new(7, 400));
    assert!(!board.subscribe(sub.clone(), None).await.unwrap());
    sub.queue.release(&[STATUS_CHANNEL]);
    tokio::time::timeout(Duration::from_secs(5), sub.queue.ready())
        .await
        .expect("the table");
    // Not drained: the change overflows the queue, whose status frames
    // are dropped and replaced by the table as of seq 2.
    reporters[0].resyncing(None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let replacement = loop {
        let queued: Option<serde_json::Value> = {
            let mut out = VecDeque::new();
            if sub.queue.conflations() > 0 && sub.queue.queued_bytes() > 0 {
                assert!(sub.queue.drain_into(&mut out).is_none(), "not closed");
            }
            assert!(out.len() <= 1, "only the replacement: {out:?}");
            out.back()
                .map(|f| serde_json::from_str(f.body.as_text().expect("a text frame")).unwrap())
        };
        if let Some(m) = queued {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "no replacement");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(replacement["seq"], 2, "{replacement}");
    assert_eq!(
        replacement["prev_seq"], 0,
        "nothing was delivered: {replacement}"
    );
    assert_eq!(replacement["reason"], "slow_consumer", "{replacement}");
    assert_eq!(replacement["pairs"][0]["state"], "online");
}

#[test]
fn precedence_is_halted_then_resyncing_then_stale_then_online() {
    let mut c = Condition::default();
    assert_eq!(reasons(&c), (MarketState::Online, None));
    c.stale = Some("silent".into());
    assert_eq!(reasons(&c), (MarketState::Stale, Some("silent")));
    c.resyncing = Some("gap".into());
    assert_eq!(reasons(&c), (MarketState::Resyncing, Some("gap")));
    c.halted = Some("breaker".into());
    assert_eq!(reasons(&c), (MarketState::Halted, Some("breaker")));
    c.resyncing = None;
    c.halted = None;
    assert_eq!(reasons(&c), (MarketState::Stale, Some("silent")));
}

#[test]
fn a_reporter_sends_only_changes_of_the_state_or_its_reason() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waiting = (
        MarketState::Resyncing,
        Some(WAITING_FOR_SNAPSHOT.to_owned()),
    );
    let mut r = StatusReporter {
        index: 3,
        condition: Condition {
            resyncing: waiting.1.clone(),
            ..Condition::default()
        },
        current: waiting,
        updates: tx,
    };
    // Stale under resyncing: the state does not change.
    r.stale(Some("silent".into()));
    assert!(rx.try_recv().is_err());
    r.resyncing(None);
    let u = rx.try_recv().expect("resyncing -> stale");
    assert_eq!((u.index, u.state), (3, MarketState::Stale));
    r.stale(None);
    assert_eq!(rx.try_recv().unwrap().state, MarketState::Online);
    r.halted(Some("breaker".into()));
    let u = rx.try_recv().unwrap();
    assert_eq!(
        (u.state, u.reason.as_deref()),
        (MarketState::Halted, Some("breaker"))
    );
    r.halted(Some("breaker".into()));
    assert!(rx.try_recv().is_err(), "the same halt again is no change");
    r.halted(Some("maintenance".into()));
    assert_eq!(
        rx.try_recv().unwrap().reason.as_deref(),
        Some("maintenance")
    );
}
