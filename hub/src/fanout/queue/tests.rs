//! Unit tests of the outbound queue: filtering, holding, overflow policy,
//! the first-message variant.

use super::*;

fn text(s: &str) -> Utf8Bytes {
    Utf8Bytes::from(s)
}

fn msg(s: &str) -> ChannelMessage {
    ChannelMessage::for_tests(s)
}

fn drain(q: &OutboundQueue) -> Vec<String> {
    let mut out = VecDeque::new();
    q.drain_into(&mut out);
    out.into_iter()
        .map(|f| f.body.as_text().expect("a text frame").to_string())
        .collect()
}

#[test]
fn filters_unsubscribed_and_already_snapshotted_messages() {
    let q = OutboundQueue::new(1024);
    assert_eq!(q.push_channel(1, 5, &msg("a"), 0), Pushed::Filtered);
    q.subscribe(1, 5, OnOverflow::Resync);
    q.release(&[1]);
    assert_eq!(q.push_channel(1, 5, &msg("old"), 0), Pushed::Filtered);
    assert_eq!(q.push_channel(1, 6, &msg("new"), 0), Pushed::Queued);
    assert_eq!(drain(&q), vec!["new"]);
    assert!(q.unsubscribe(1));
    assert_eq!(q.push_channel(1, 7, &msg("x"), 0), Pushed::Filtered);
}

#[test]
fn overflow_on_a_book_channel_conflates_to_one_snapshot() {
    let q = OutboundQueue::new(10);
    q.subscribe(1, 0, OnOverflow::Resync);
    q.subscribe(2, 0, OnOverflow::Resync);
    q.release(&[1, 2]);
    assert_eq!(q.push_channel(2, 1, &msg("bbb"), 0), Pushed::Queued);
    assert_eq!(q.push_channel(1, 1, &msg("aaaa"), 0), Pushed::Queued);
    assert_eq!(q.push_channel(1, 2, &msg("aaaa"), 0), Pushed::NeedsResync);
    // channel 1's frames are gone, channel 2's stay; further updates wait for the snapshot
    assert_eq!(q.queued_bytes(), 3);
    assert_eq!(q.push_channel(1, 3, &msg("a"), 0), Pushed::Filtered);
    assert_eq!(q.push_snapshot(1, 3, text("SNAP"), 0), Pushed::Queued);
    assert_eq!(q.push_channel(1, 3, &msg("dup"), 0), Pushed::Filtered);
    assert_eq!(q.push_channel(1, 4, &msg("u4"), 0), Pushed::Queued);
    assert_eq!(drain(&q), vec!["bbb", "SNAP", "u4"]);
    assert_eq!(q.conflations(), 1);
    assert_eq!(q.last_delivered_seq(1), 4);
}

#[test]
fn frames_are_held_until_the_reply_is_queued() {
    let q = OutboundQueue::new(1024);
    q.subscribe(1, 0, OnOverflow::Resync);
    assert_eq!(q.push_snapshot(1, 3, text("snap"), 0), Pushed::Queued);
    assert_eq!(q.push_channel(1, 4, &msg("u4"), 0), Pushed::Queued);
    assert_eq!(q.push_control(text("subscribed")), Pushed::Queued);
    q.release(&[1]);
    assert_eq!(q.push_channel(1, 5, &msg("u5"), 0), Pushed::Queued);
    assert_eq!(drain(&q), vec!["subscribed", "snap", "u4", "u5"]);
    assert_eq!(q.queued_bytes(), 0);
}

#[test]
fn overflow_on_trades_closes() {
    let q = OutboundQueue::new(4);
    q.subscribe(9, 0, OnOverflow::Close);
    assert_eq!(q.push_channel(9, 1, &msg("abc"), 0), Pushed::Queued);
    assert_eq!(q.push_channel(9, 2, &msg("abc"), 0), Pushed::Closing);
    let mut out = VecDeque::new();
    assert_eq!(q.drain_into(&mut out), Some(CloseReason::SlowConsumer));
    assert!(out.is_empty());
    assert_eq!(q.push_control(text("x")), Pushed::Filtered);
}

#[test]
fn the_first_frame_after_expect_first_has_prev_seq_zero() {
    let q = OutboundQueue::new(1024);
    q.subscribe(1, 4, OnOverflow::Close);
    q.expect_first(1);
    q.release(&[1]);
    let m = |seq: u64| msg(&format!(r#"{{"seq":{seq},"prev_seq":{},"x":1}}"#, seq - 1));
    assert_eq!(q.push_channel(1, 5, &m(5), 0), Pushed::Queued);
    assert_eq!(q.push_channel(1, 6, &m(6), 0), Pushed::Queued);
    assert_eq!(
        drain(&q),
        vec![
            r#"{"seq":5,"prev_seq":0,"x":1}"#,
            r#"{"seq":6,"prev_seq":5,"x":1}"#
        ]
    );
}

#[test]
fn snapshot_that_cannot_fit_closes() {
    let q = OutboundQueue::new(4);
    q.subscribe(1, 0, OnOverflow::Resync);
    assert_eq!(q.push_snapshot(1, 1, text("too big"), 0), Pushed::Closing);
}
