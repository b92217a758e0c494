//! Tests of the shard workers: rounds, the deliveries that join them, and
//! restarts between deliveries, on test sockets that record their writes.

use super::*;
use crate::fanout::queue::script::{framed, Socket};
use crate::fanout::OnOverflow;
use std::time::Duration;

/// A subscriber of channel 1 from its start, writing through to a socket.
fn listening(id: u64) -> (Arc<Subscriber>, Arc<Socket>) {
    let sub = Arc::new(Subscriber::new(id, 1 << 20));
    sub.queue.subscribe(1, 0, OnOverflow::Resync);
    sub.queue.release(&[1]);
    let socket = Arc::new(Socket::default());
    sub.queue.attach_through(socket.clone());
    (sub, socket)
}

/// One thread: the worker runs only once the test awaits, and finds
/// every job queued.
#[tokio::test]
async fn deliveries_waiting_for_the_same_subscribers_go_out_together_in_order() {
    const MESSAGES: u64 = 40;
    let pool = ShardPool::start(1);
    let (tx, _rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (subs, sockets): (Vec<_>, Vec<_>) = (0..3).map(listening).unzip();
    let subs: Arc<[Arc<Subscriber>]> = subs.into();
    let other: Arc<[Arc<Subscriber>]> = Arc::from(vec![listening(9).0]);
    for seq in 1..=MESSAGES {
        let msg = ChannelMessage::for_tests(&format!("m{seq}"));
        let delivery = |seq| Delivery {
            channel: 1,
            seq,
            msg: msg.clone(),
            ts: 0,
            through: true,
        };
        pool.send(0, subs.clone(), delivery(seq), &tx, &in_flight);
        // Another list's job ends a group.
        if seq == 10 {
            pool.send(0, other.clone(), delivery(seq), &tx, &in_flight);
        }
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.load(Ordering::Acquire) > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the jobs are done");
    let expected: Vec<u8> = (1..=MESSAGES)
        .flat_map(|seq| framed(&format!("m{seq}")))
        .collect();
    for socket in &sockets {
        assert_eq!(*socket.bytes.lock(), expected);
        // 1-10, then 11-40 (at most 32 a group).
        assert_eq!(*socket.calls.lock(), 2);
    }
}

/// Waits until every job counted in `in_flight` is done.
async fn settled(in_flight: &AtomicUsize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.load(Ordering::Acquire) > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the jobs are done");
}

fn delivery(channel: ChannelId, seq: u64) -> Delivery {
    Delivery {
        channel,
        seq,
        msg: ChannelMessage::for_tests(&format!("c{channel}m{seq}")),
        ts: 0,
        through: true,
    }
}

/// The payloads of `bytes`, a run of small unmasked text frames.
fn texts(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let [0x81, len, rest @ ..] = bytes {
        let len = usize::from(*len);
        assert!(len < 126, "a small frame");
        out.push(String::from_utf8(rest[..len].to_vec()).expect("text"));
        bytes = &rest[len..];
    }
    assert!(bytes.is_empty(), "whole frames only");
    out
}

/// What `sub` was sent, in order: written to its socket, then queued
/// for its writer.
fn received(sub: &Subscriber, socket: &Socket) -> Vec<String> {
    let mut out = texts(&socket.bytes.lock());
    let mut queued = std::collections::VecDeque::new();
    sub.queue.drain_into(&mut queued);
    out.extend(
        queued
            .iter()
            .filter_map(|f| f.body.as_text())
            .map(str::to_owned),
    );
    out
}

/// A worker and 600 subscribers of channel 1, one delivery of which
/// (`c1m1`) has been written to the first chunk of its round, which then
/// yielded.
struct MidRound {
    pool: ShardPool,
    resync: mpsc::UnboundedSender<ResyncRequest>,
    in_flight: Arc<AtomicUsize>,
    subs: Arc<[Arc<Subscriber>]>,
    sockets: Vec<Arc<Socket>>,
}

impl MidRound {
    /// One thread: the worker runs only while the test awaits.
    async fn start() -> Self {
        let (resync, _) = mpsc::unbounded_channel();
        let (subs, sockets): (Vec<_>, Vec<_>) = (0..600).map(listening).unzip();
        let round = MidRound {
            pool: ShardPool::start(1),
            resync,
            in_flight: Arc::new(AtomicUsize::new(0)),
            subs: subs.into(),
            sockets,
        };
        round.send(1);
        while *round.sockets[0].calls.lock() == 0 {
            tokio::task::yield_now().await;
        }
        round
    }

    fn send(&self, seq: u64) {
        let (subs, d) = (self.subs.clone(), delivery(1, seq));
        self.pool.send(0, subs, d, &self.resync, &self.in_flight);
    }
}

/// The second message is sent once the round of the first has written its
/// first chunk (256 subscribers) and yielded. The rest of the round gets
/// both in one write; the first chunk gets the second when the round
/// wraps.
#[tokio::test]
async fn a_delivery_that_arrives_mid_round_joins_the_rest_of_it() {
    let round = MidRound::start().await;
    let first_chunk = round.sockets.iter().filter(|s| *s.calls.lock() > 0).count();
    assert_eq!(
        first_chunk, YIELD_EVERY,
        "the round yielded after one chunk"
    );
    round.send(2);
    settled(&round.in_flight).await;
    let both: Vec<u8> = [framed("c1m1"), framed("c1m2")].concat();
    for (i, socket) in round.sockets.iter().enumerate() {
        assert_eq!(*socket.bytes.lock(), both, "subscriber {i}");
        let writes = if i < first_chunk { 2 } else { 1 };
        assert_eq!(*socket.calls.lock(), writes, "subscriber {i}");
    }
}

/// 40 deliveries arrive once the first chunk of a round is written, more
/// than a round holds under way (32). Those that wait join as the oldest
/// finish; every subscriber gets all 41 once and in order, and at every
/// yield while a subscriber still lacks one, the round's jobs are counted
/// in flight (the topic delivers inline only when none is, so nothing
/// overtakes them).
#[tokio::test]
async fn a_round_counts_its_deliveries_in_flight_until_its_last_subscriber() {
    const MORE: u64 = 40;
    let round = MidRound::start().await;
    for seq in 2..=MORE + 1 {
        round.send(seq);
    }
    let expected: Vec<String> = (1..=MORE + 1).map(|seq| format!("c1m{seq}")).collect();
    let whole = framed("c1m1").len() * 9 + framed("c1m10").len() * 32;
    let mut yields = 0;
    loop {
        let lacking = round
            .sockets
            .iter()
            .filter(|s| s.bytes.lock().len() < whole)
            .count();
        let counted = round.in_flight.load(Ordering::Acquire);
        if lacking > 0 {
            assert!(
                counted > 0,
                "{lacking} subscribers wait with nothing in flight"
            );
        } else if counted == 0 {
            break;
        }
        yields += 1;
        assert!(yields < 10_000, "the round ends");
        tokio::task::yield_now().await;
    }
    for (i, (sub, socket)) in round.subs.iter().zip(&round.sockets).enumerate() {
        assert_eq!(received(sub, socket), expected, "subscriber {i}");
    }
}

/// Deliveries of two channels to one list and of one channel to
/// another list, sent while rounds are under way at pseudo-random
/// points: every subscriber gets each message of each channel once,
/// in order, and a round's deliveries never overtake a job queued
/// before them.
#[tokio::test]
async fn deliveries_joining_rounds_reach_everyone_once_and_in_order() {
    const SUBSCRIBERS: u64 = 300;
    const MESSAGES: u64 = 60;
    let pool = ShardPool::start(1);
    let (tx, _rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (subs, sockets): (Vec<_>, Vec<_>) = (0..SUBSCRIBERS)
        .map(|id| {
            let (sub, socket) = listening(id);
            sub.queue.subscribe(2, 0, OnOverflow::Resync);
            sub.queue.release(&[2]);
            (sub, socket)
        })
        .unzip();
    let subs: Arc<[Arc<Subscriber>]> = subs.into();
    let (other, other_socket) = listening(SUBSCRIBERS);
    let other: Arc<[Arc<Subscriber>]> = Arc::from(vec![other]);
    let mut sent: Vec<(ChannelId, u64)> = Vec::new();
    let mut seqs = [0u64; 3];
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..MESSAGES {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Mostly channel 1; now and then channel 2 or the other list.
        let (list, channel) = match rng % 8 {
            0 => (&other, 1),
            1 => (&subs, 2),
            _ => (&subs, 1),
        };
        let slot = if Arc::ptr_eq(list, &other) {
            0
        } else {
            channel as usize
        };
        seqs[slot] += 1;
        pool.send(
            0,
            list.clone(),
            delivery(channel, seqs[slot]),
            &tx,
            &in_flight,
        );
        if !Arc::ptr_eq(list, &other) {
            sent.push((channel, seqs[slot]));
        }
        for _ in 0..(rng >> 8) % 4 + i % 2 {
            tokio::task::yield_now().await;
        }
    }
    settled(&in_flight).await;
    let expected: Vec<String> = sent
        .iter()
        .map(|&(channel, seq)| format!("c{channel}m{seq}"))
        .collect();
    assert!(sent.iter().any(|&(c, _)| c == 2) && seqs[0] > 0);
    for (i, (sub, socket)) in subs.iter().zip(&sockets).enumerate() {
        assert_eq!(received(sub, socket), expected, "subscriber {i}");
    }
    let other_expected: Vec<String> = (1..=seqs[0]).map(|seq| format!("c1m{seq}")).collect();
    assert_eq!(received(&other[0], &other_socket), other_expected);
    // Joining saved writes: fewer than one a message written.
    let writes: usize = sockets.iter().map(|s| *s.calls.lock()).sum();
    let written: usize = sockets.iter().map(|s| texts(&s.bytes.lock()).len()).sum();
    assert!(
        written > 0 && writes < written,
        "{writes} writes of {written} messages"
    );
}

/// A restart queued between deliveries keeps its place: the messages
/// before it go out as they are, the first after it as the client's
/// first on the channel (`prev_seq` 0), queued for the writer.
#[tokio::test]
async fn a_restart_between_deliveries_keeps_its_place() {
    let pool = ShardPool::start(1);
    let (tx, _rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (sub, socket) = listening(0);
    let subs: Arc<[Arc<Subscriber>]> = Arc::from(vec![sub.clone()]);
    let text = |seq: u64, prev: u64| format!(r#"{{"prev_seq":{prev},"seq":{seq}}}"#);
    let delivery = |seq: u64, prev: u64| Delivery {
        channel: 1,
        seq,
        msg: ChannelMessage::for_tests(&text(seq, prev)),
        ts: 0,
        through: true,
    };
    for seq in 1..=5 {
        pool.send(0, subs.clone(), delivery(seq, seq - 1), &tx, &in_flight);
    }
    pool.restart(0, subs.clone(), 1, &tx, &in_flight);
    for seq in 1..=3 {
        pool.send(0, subs.clone(), delivery(seq, seq + 6), &tx, &in_flight);
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.load(Ordering::Acquire) > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the jobs are done");
    let before: Vec<u8> = (1..=5)
        .flat_map(|seq| framed(&text(seq, seq - 1)))
        .collect();
    assert_eq!(*socket.bytes.lock(), before);
    assert_eq!(*socket.calls.lock(), 1);
    let mut queued = std::collections::VecDeque::new();
    sub.queue.drain_into(&mut queued);
    let texts: Vec<&str> = queued.iter().filter_map(|f| f.body.as_text()).collect();
    assert_eq!(texts, [text(1, 0), text(2, 8), text(3, 9)]);
}
