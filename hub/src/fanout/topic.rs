//! One channel of one pair: its subscribers (split into shards), the seq of
//! its last message, and its history for `resume`.

use super::shards::{deliver, Delivery, ResyncRequest, ShardPool};
use super::{ChannelId, OnOverflow, Subscriber};
use crate::protocol::message::ChannelMessage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The last messages of a channel, for `resume`: at least `max_messages`
/// or `max_age`, whichever holds more.
#[derive(Debug)]
pub struct History {
    entries: VecDeque<(u64, u64, ChannelMessage, Instant)>,
    max_messages: usize,
    max_age: Duration,
}

impl History {
    pub fn new(max_messages: usize, max_age: Duration) -> Self {
        History {
            entries: VecDeque::new(),
            max_messages,
            max_age,
        }
    }

    fn push(&mut self, seq: u64, prev_seq: u64, msg: ChannelMessage, now: Instant) {
        self.entries.push_back((seq, prev_seq, msg, now));
        while self.entries.len() > self.max_messages {
            match self.entries.front() {
                Some((.., at)) if now.duration_since(*at) >= self.max_age => {
                    self.entries.pop_front();
                }
                _ => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every message after `seq`, if the history still holds all of them.
    pub fn after(&self, seq: u64) -> Option<impl Iterator<Item = (u64, &ChannelMessage)>> {
        let start = self.entries.iter().position(|(_, prev, ..)| *prev == seq)?;
        Some(self.entries.iter().skip(start).map(|(s, _, t, _)| (*s, t)))
    }
}

/// Topics of at most this many subscribers are delivered inline by the
/// publisher when no shard job of theirs is in flight: below it, handing
/// the pushes to the shard workers costs more (a cross-thread wake-up per
/// shard) than doing them (docs/BENCHMARKS.md, "In-process fan-out").
pub const INLINE_MAX_SUBSCRIBERS: usize = 1_024;

/// The same bound when the delivery writes through to idle sockets: a
/// push is then a socket write (a few µs), and inline the publisher alone
/// would make every write on one core, where the shard workers share them
/// across all (docs/ARCHITECTURE.md, "Writes").
pub const INLINE_MAX_WRITING: usize = 64;

/// One channel of one pair.
///
/// Each subscriber belongs to one shard for as long as it is subscribed
/// (`conn_id % shards`), and every message to it goes through that shard's
/// worker: per-worker FIFO order is what keeps a subscriber's messages in
/// order. A shard's list is copied (copy-on-write) at the first publish
/// after it changed, so a connect storm costs one copy per publish, not
/// one per join.
///
/// A small topic is delivered inline instead, but only while none of its
/// shard jobs is in flight (`in_flight`): a message delivered inline can
/// then never overtake an earlier one still queued at a shard, so every
/// subscriber's order holds as the topic grows and shrinks across the
/// threshold.
pub struct Topic {
    pub id: ChannelId,
    pub name: Arc<str>,
    pub on_overflow: OnOverflow,
    /// Seq of the last message published (0 before any).
    pub last_seq: u64,
    pub history: History,
    members: Vec<Vec<Arc<Subscriber>>>,
    published: Vec<Arc<[Arc<Subscriber>]>>,
    stale: Vec<bool>,
    /// When the last subscriber left; the history is kept this long after.
    idle_since: Option<Instant>,
    active: bool,
    /// Shard jobs of this topic queued or running.
    in_flight: Arc<AtomicUsize>,
    /// Subscribers that negotiated permessage-deflate: while there are
    /// any, each message is compressed once, for all of them.
    deflaters: usize,
}

impl Topic {
    pub fn new(
        id: ChannelId,
        name: &str,
        on_overflow: OnOverflow,
        history: History,
        shards: usize,
    ) -> Self {
        let shards = shards.max(1);
        Topic {
            id,
            name: Arc::from(name),
            on_overflow,
            last_seq: 0,
            history,
            members: vec![Vec::new(); shards],
            published: vec![Arc::from(Vec::new()); shards],
            stale: vec![false; shards],
            idle_since: None,
            active: false,
            in_flight: Arc::new(AtomicUsize::new(0)),
            deflaters: 0,
        }
    }

    /// Whether the next delivery may be done inline (see the type's doc),
    /// writing through (`through`) or not.
    fn inline(&self, through: bool) -> bool {
        let max = if through {
            INLINE_MAX_WRITING
        } else {
            INLINE_MAX_SUBSCRIBERS
        };
        self.subscriber_count() <= max && self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Whether messages must be encoded: someone listens, or listened
    /// recently enough to resume.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Marks the topic active from now on (first subscriber); returns true
    /// if it was not, so the caller can set `last_seq` to the current seq.
    pub fn activate(&mut self) -> bool {
        self.idle_since = None;
        !std::mem::replace(&mut self.active, true)
    }

    /// Deactivates a topic idle for longer than its history lasts.
    pub fn expire_idle(&mut self, now: Instant) {
        if let Some(since) = self.idle_since {
            if now.duration_since(since) > self.history.max_age {
                self.active = false;
                self.idle_since = None;
                self.history.clear();
            }
        }
    }

    pub fn subscriber_count(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }

    fn shard_of(&self, conn_id: u64) -> usize {
        (conn_id % self.members.len() as u64) as usize
    }

    /// Resumes `sub` (already added) after `seq`, the last seq it saw in
    /// this topic's current epoch (the caller checks the epoch): when the
    /// history still holds every message after it (or nothing was
    /// published since), subscribes its queue from `seq`, queues those
    /// messages and answers true (docs/PROTOCOL.md, "Subscribing and
    /// resuming"); else changes nothing and answers false.
    pub fn resume(&self, sub: &Subscriber, seq: u64, ts: u64) -> bool {
        if seq == self.last_seq {
            sub.queue.subscribe(self.id, seq, self.on_overflow);
            return true;
        }
        let Some(replay) = self.history.after(seq) else {
            return false;
        };
        sub.queue.subscribe(self.id, seq, self.on_overflow);
        for (s, msg) in replay {
            sub.queue.push_replay(self.id, s, msg, ts);
        }
        true
    }

    /// Adds a subscriber (once per connection).
    pub fn add(&mut self, sub: Arc<Subscriber>) {
        let i = self.shard_of(sub.conn_id);
        if !self.members[i].iter().any(|s| s.conn_id == sub.conn_id) {
            self.deflaters += usize::from(sub.queue.deflates());
            self.members[i].push(sub);
            self.stale[i] = true;
        }
        self.activate();
    }

    pub fn remove(&mut self, conn_id: u64, now: Instant) -> bool {
        let i = self.shard_of(conn_id);
        let before = self.members[i].len();
        let deflaters = &mut self.deflaters;
        self.members[i].retain(|s| {
            let keep = s.conn_id != conn_id;
            if !keep {
                *deflaters -= usize::from(s.queue.deflates());
            }
            keep
        });
        let removed = self.members[i].len() != before;
        if removed {
            self.stale[i] = true;
            if self.subscriber_count() == 0 {
                self.idle_since = Some(now);
            }
        }
        removed
    }

    /// The upstream's numbering restarted (new epoch): forget the history
    /// and the last seq, and have every subscriber's queue restart the
    /// channel's numbering after what it was already sent.
    pub fn restart_numbering(
        &mut self,
        pool: &ShardPool,
        resync: &mpsc::UnboundedSender<ResyncRequest>,
    ) {
        self.last_seq = 0;
        self.history.clear();
        // Queue work only, no writes: the larger threshold.
        if self.inline(false) {
            for member in self.members.iter().flatten() {
                member.queue.restart_numbering(self.id);
            }
            return;
        }
        for i in 0..self.members.len() {
            if self.stale[i] {
                self.published[i] = Arc::from(self.members[i].as_slice());
                self.stale[i] = false;
            }
            if !self.published[i].is_empty() {
                pool.restart(
                    i,
                    self.published[i].clone(),
                    self.id,
                    resync,
                    &self.in_flight,
                );
            }
        }
    }

    /// Records `msg` as the next message (seq `seq`) and hands it to the
    /// shard workers of its subscribers. `through`: idle connections are
    /// written at once; false when the publisher has a backlog (its
    /// connections' writers then batch).
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        seq: u64,
        mut msg: ChannelMessage,
        ts: u64,
        through: bool,
        pool: &ShardPool,
        resync: &mpsc::UnboundedSender<ResyncRequest>,
        now: Instant,
    ) {
        let prev = std::mem::replace(&mut self.last_seq, seq);
        if self.deflaters > 0 {
            msg.deflate();
        }
        self.history.push(seq, prev, msg.clone(), now);
        let mut delivery = Delivery {
            channel: self.id,
            seq,
            msg,
            ts,
            through,
        };
        if self.inline(through) {
            for members in &self.members {
                deliver(members, &delivery, through, resync);
            }
            return;
        }
        let mut first = true;
        for i in 0..self.members.len() {
            if self.stale[i] {
                self.published[i] = Arc::from(self.members[i].as_slice());
                self.stale[i] = false;
            }
            if self.published[i].is_empty() {
                continue;
            }
            if !std::mem::replace(&mut first, false) {
                delivery.msg = delivery.msg.detached();
            }
            let job = delivery.clone();
            pool.send(i, self.published[i].clone(), job, resync, &self.in_flight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> ChannelMessage {
        ChannelMessage::for_tests(s)
    }

    /// The seqs of the first `n` frames `s` is queued (waiting 5 s at most
    /// for each batch).
    async fn seqs(s: &Subscriber, n: usize) -> Vec<u64> {
        let mut got = Vec::new();
        while got.len() < n {
            tokio::time::timeout(Duration::from_secs(5), s.queue.ready())
                .await
                .unwrap_or_else(|_| panic!("subscriber {} got only {got:?}", s.conn_id));
            let mut out = VecDeque::new();
            s.queue.drain_into(&mut out);
            got.extend(out.into_iter().map(|f| f.seq));
        }
        got
    }

    /// Topic 7 of two shards, keeping ten messages.
    fn test_topic() -> Topic {
        Topic::new(
            7,
            "book.X-Y",
            OnOverflow::Resync,
            History::new(10, Duration::ZERO),
            2,
        )
    }

    /// A subscriber of channel 7 from its start, its frames released.
    fn listening(id: u64, queue_bytes: usize) -> Arc<Subscriber> {
        let s = Arc::new(Subscriber::new(id, queue_bytes));
        s.queue.subscribe(7, 0, OnOverflow::Resync);
        s.queue.release(&[7]);
        s
    }

    #[test]
    fn history_finds_everything_after_a_seq() {
        let mut h = History::new(3, Duration::ZERO);
        let now = Instant::now();
        for (seq, prev) in [(1, 0), (2, 1), (4, 2), (5, 4)] {
            h.push(seq, prev, t(&seq.to_string()), now);
        }
        // only 3 kept: 2, 4, 5
        let after = |s| {
            h.after(s)
                .map(|it| it.map(|(seq, _)| seq).collect::<Vec<_>>())
        };
        assert_eq!(after(2), Some(vec![4, 5]));
        assert_eq!(after(1), Some(vec![2, 4, 5]));
        assert_eq!(after(0), None);
        assert_eq!(after(3), None);
    }

    #[test]
    fn history_keeps_young_messages_beyond_the_count() {
        let mut h = History::new(1, Duration::from_secs(60));
        let now = Instant::now();
        for seq in 1..=5 {
            h.push(seq, seq - 1, t("x"), now);
        }
        assert_eq!(h.after(0).map(|it| it.count()), Some(5));
    }

    #[tokio::test]
    async fn a_small_topic_is_in_every_queue_when_publish_returns() {
        let pool = ShardPool::start(2);
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut topic = test_topic();
        let subs: Vec<_> = (0..10u64).map(|i| listening(i, 1 << 20)).collect();
        for s in &subs {
            topic.add(s.clone());
        }
        topic.publish(1, t("m1"), 0, true, &pool, &tx, Instant::now());
        // No await in between: the shard workers cannot have run.
        for s in &subs {
            assert_eq!(s.queue.queued_bytes(), 2, "subscriber {}", s.conn_id);
        }
    }

    /// On two threads, so shard workers run while the publisher goes on
    /// (inline deliveries race them unless the in-flight rule holds).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_reaches_every_subscriber_in_order() {
        let pool = ShardPool::start(2);
        let (tx, _rx) = mpsc::unbounded_channel();
        // Inline; inline; sharded.
        for n in [3usize, 300, INLINE_MAX_SUBSCRIBERS + 100] {
            let mut topic = Topic::new(
                7,
                "book.X-Y",
                OnOverflow::Resync,
                History::new(10, Duration::ZERO),
                pool.len(),
            );
            let subs: Vec<_> = (0..n as u64).map(|i| listening(i, 1 << 20)).collect();
            for s in &subs {
                topic.add(s.clone());
            }
            // Joins and leaves between publishes must not reorder anyone's stream.
            let extra: Vec<_> = (1_000_000..1_000_000 + n as u64)
                .map(|i| Arc::new(Subscriber::new(i, 1 << 20)))
                .collect();
            for seq in 1..=20u64 {
                topic.publish(
                    seq,
                    t(&format!("m{seq}")),
                    0,
                    true,
                    &pool,
                    &tx,
                    Instant::now(),
                );
                if seq % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                let e = &extra[(seq as usize) % extra.len()];
                if seq % 2 == 0 {
                    topic.add(e.clone());
                } else {
                    topic.remove(e.conn_id, Instant::now());
                }
            }
            for s in &subs {
                let got = seqs(s, 20).await;
                assert_eq!(
                    got,
                    (1..=20).collect::<Vec<_>>(),
                    "subscriber {}",
                    s.conn_id
                );
            }
            assert_eq!(topic.last_seq, 20);
        }
    }

    /// A topic at the inline threshold, one subscriber joining and leaving
    /// between publishes: it is sharded and inline by turns, with shard
    /// jobs still running when the next publish could go inline. Every
    /// subscriber still gets every message once, in order. Both thresholds
    /// (writing through or not), and a topic between them whose publisher's
    /// backlog comes and goes (`through` flipping).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crossing_the_inline_threshold_keeps_every_subscribers_order() {
        const MESSAGES: u64 = 300;
        // (subscribers, whether publish `seq` writes through)
        type Case = (usize, fn(u64) -> bool);
        let cases: [Case; 3] = [
            (INLINE_MAX_SUBSCRIBERS, |_| false),
            (INLINE_MAX_WRITING, |_| true),
            (INLINE_MAX_WRITING * 2, |seq| seq % 3 == 0),
        ];
        for (count, through) in cases {
            let pool = ShardPool::start(2);
            let (tx, _rx) = mpsc::unbounded_channel();
            let mut topic = test_topic();
            let subscriber = |id| listening(id, 1 << 24);
            let subs: Vec<_> = (0..count as u64).map(subscriber).collect();
            for s in &subs {
                topic.add(s.clone());
            }
            let extra = subscriber(u64::MAX);
            for seq in 1..=MESSAGES {
                let msg = t(&format!("m{seq}"));
                topic.publish(seq, msg, 0, through(seq), &pool, &tx, Instant::now());
                if seq % 2 == 1 {
                    topic.add(extra.clone());
                } else {
                    topic.remove(extra.conn_id, Instant::now());
                }
            }
            for s in &subs {
                let got = seqs(s, MESSAGES as usize).await;
                assert!(
                    got.iter().copied().eq(1..=MESSAGES),
                    "{count} subscribers, subscriber {}: {got:?}",
                    s.conn_id
                );
            }
        }
    }
}
