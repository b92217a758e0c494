//! One pair's task: it owns the pair's book cache and every channel of the
//! pair, applies upstream events in order, encodes each channel message
//! once and publishes it.
//!
//! Because one task does all of it, a subscriber's snapshot is taken
//! between two upstream events: it includes every change up to its `seq`
//! and the next published message is `seq + 1`. Conflated channels
//! (`@100ms`, `@1000ms`) publish on their interval the net of what changed;
//! their new subscribers get their snapshot at that tick, so that their
//! first update chains from it.

mod conflate;

use super::ticker::TickerState;
use super::topics::{self, TopicKind, TOPICS_PER_PAIR};
use crate::fanout::{ChannelId, History, OnOverflow, ResyncRequest, ShardPool, Subscriber, Topic};
use crate::metrics as m;
use crate::protocol::channel::Cadence;
use crate::protocol::encode::{Encoder, Header, Ticker};
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use conflate::Conflation;
use feeds::event::now_micros;
use feeds::{MarketEvent, PublicTrade, SnapshotReason};
use orderbook::checksum::checksum_top;
use orderbook::{BookDelta, L2Book, MarketSpec, Price, Side};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A request to a pair task.
pub enum PairCommand {
    Subscribe {
        subscriber: Arc<Subscriber>,
        channel: ChannelId,
        /// `(epoch, seq)` the client last saw, if it asks to resume.
        resume: Option<(String, u64)>,
        /// True when the channel was recovered from history.
        reply: oneshot::Sender<bool>,
    },
    Unsubscribe {
        conn_id: u64,
        channel: ChannelId,
    },
    Orderbook {
        depth: usize,
        reply: oneshot::Sender<OrderbookView>,
    },
}

/// What the dispatcher sends a pair task, in upstream order.
pub enum PairInput {
    Event(MarketEvent),
    /// The upstream restarted its numbering: every channel of the pair
    /// starts over in this epoch (the next snapshot rebuilds the book).
    NewEpoch(Arc<str>),
}

/// `GET /markets/{pair}/orderbook`: the cached book as docs/API.md describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderbookView {
    pub pair: String,
    pub seq: u64,
    pub epoch: String,
    pub ts: u64,
    pub bids: Vec<[String; 2]>,
    pub asks: Vec<[String; 2]>,
    pub checksum: u32,
}

pub struct PairTask {
    spec: MarketSpec,
    epoch: String,
    book: L2Book,
    seq: u64,
    trade_seq: u64,
    /// Hub ingest time of the last applied event.
    ts: u64,
    ticker: TickerState,
    last_ticker: Ticker,
    topics: Vec<Topic>,
    conflation: Vec<Conflation>,
    first_channel: ChannelId,
    encoder: Encoder,
    pool: ShardPool,
    resync_tx: mpsc::UnboundedSender<ResyncRequest>,
    warm: Arc<AtomicBool>,
    stale: Arc<AtomicBool>,
    /// No upstream message for this long marks the pair stale.
    stale_after: Option<Duration>,
    last_event: Instant,
}

/// Everything a pair task needs to start.
pub struct PairSetup {
    pub spec: MarketSpec,
    pub epoch: String,
    pub first_channel: ChannelId,
    pub history_messages: usize,
    pub history_age: Duration,
    pub pool: ShardPool,
    pub warm: Arc<AtomicBool>,
    /// Set while the upstream has been silent for `stale_after`.
    pub stale: Arc<AtomicBool>,
    pub stale_after: Option<Duration>,
}

impl PairTask {
    /// Runs the pair until both its event and command channels close.
    pub async fn run(
        setup: PairSetup,
        mut events: mpsc::Receiver<PairInput>,
        mut commands: mpsc::UnboundedReceiver<PairCommand>,
    ) {
        let (resync_tx, mut resync_rx) = mpsc::unbounded_channel();
        let topics = (0..TOPICS_PER_PAIR)
            .map(|i| {
                let kind = topics::kind_of(i);
                let name = topics::channel_name(&setup.spec.symbol, i);
                let on_overflow = if kind == TopicKind::Trades {
                    OnOverflow::Close
                } else {
                    OnOverflow::Resync
                };
                let history = History::new(setup.history_messages, setup.history_age);
                Topic::new(
                    setup.first_channel + i as ChannelId,
                    &name,
                    on_overflow,
                    history,
                    setup.pool.len(),
                )
            })
            .collect();
        let mut task = PairTask {
            spec: setup.spec,
            epoch: setup.epoch,
            book: L2Book::new(),
            seq: 0,
            trade_seq: 0,
            ts: 0,
            ticker: TickerState::default(),
            last_ticker: Ticker::default(),
            topics,
            conflation: (0..TOPICS_PER_PAIR)
                .map(|_| Conflation::default())
                .collect(),
            first_channel: setup.first_channel,
            encoder: Encoder::new(),
            pool: setup.pool,
            resync_tx,
            warm: setup.warm,
            stale: setup.stale,
            stale_after: setup.stale_after,
            last_event: Instant::now(),
        };
        let mut fast = tokio::time::interval(Duration::from_millis(100));
        fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        let (mut events_open, mut commands_open) = (true, true);
        while events_open || commands_open {
            tokio::select! {
                biased;
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => task.command(cmd),
                    None => commands_open = false,
                },
                Some(req) = resync_rx.recv() => task.resync_subscriber(req),
                _ = fast.tick() => {
                    ticks += 1;
                    task.tick(Cadence::Every100ms);
                    if ticks.is_multiple_of(10) {
                        task.tick(Cadence::Every1000ms);
                        let now = Instant::now();
                        task.topics.iter_mut().for_each(|t| t.expire_idle(now));
                        task.check_stale(now);
                    }
                }
                ev = events.recv(), if events_open => match ev {
                    Some(PairInput::Event(ev)) => task.event(ev),
                    Some(PairInput::NewEpoch(epoch)) => task.new_epoch(&epoch),
                    None => {
                        tracing::warn!(pair = %task.spec.symbol, "upstream stream ended");
                        task.warm.store(false, Ordering::Relaxed);
                        events_open = false;
                    }
                },
            }
        }
    }

    fn publish(&mut self, i: usize, seq: u64, bytes: Bytes) {
        let text = utf8(bytes);
        let (ts, now) = (self.ts, Instant::now());
        self.topics[i].publish(seq, text, ts, &self.pool, &self.resync_tx, now);
    }

    /// The seq a topic's numbering follows now.
    fn current_seq(&self, kind: TopicKind) -> u64 {
        match kind {
            TopicKind::Book | TopicKind::Depth(_) => self.seq,
            TopicKind::Trades => self.trade_seq,
            // Both sources only grow, so their sum numbers ticker changes
            // identically on every node.
            TopicKind::Ticker => self.seq + self.trade_seq,
        }
    }

    // ---- upstream events -------------------------------------------------

    /// Marks the pair stale after `stale_after` without upstream messages.
    fn check_stale(&mut self, now: Instant) {
        let Some(after) = self.stale_after else {
            return;
        };
        let silent = now.duration_since(self.last_event) > after;
        if silent && !self.stale.swap(true, Ordering::Relaxed) {
            tracing::warn!(pair = %self.spec.symbol, silent_ms = after.as_millis() as u64, "upstream feed stale");
            metrics::counter!(m::STALE_FEEDS_TOTAL, "pair" => self.spec.symbol.clone())
                .increment(1);
        }
    }

    /// The upstream's numbering restarted: every channel starts over in
    /// `epoch`. Subscribers keep their subscriptions; each channel's next
    /// message is their first in the new epoch (`prev_seq` 0), and book
    /// channels get the new book as a `resync` snapshot when it arrives.
    fn new_epoch(&mut self, epoch: &str) {
        tracing::warn!(pair = %self.spec.symbol, old = %self.epoch, new = %epoch, "upstream epoch changed");
        self.epoch = epoch.to_owned();
        self.seq = 0;
        self.trade_seq = 0;
        self.warm.store(false, Ordering::Relaxed);
        self.last_ticker = Ticker::default();
        for i in 0..TOPICS_PER_PAIR {
            self.topics[i].restart_numbering(&self.pool, &self.resync_tx);
            let c = &mut self.conflation[i];
            c.changed.clear();
            c.trades.clear();
            c.resync = true;
            c.dirty = true;
        }
    }

    fn event(&mut self, ev: MarketEvent) {
        self.ts = now_micros();
        self.last_event = Instant::now();
        if self.stale.swap(false, Ordering::Relaxed) {
            tracing::info!(pair = %self.spec.symbol, "upstream feed live again");
        }
        metrics::counter!(m::UPSTREAM_EVENTS_TOTAL, "pair" => self.spec.symbol.clone())
            .increment(1);
        match ev {
            MarketEvent::Snapshot {
                reason,
                seq,
                trade_seq,
                bids,
                asks,
                ..
            } => self.snapshot(reason, seq, trade_seq, &bids, &asks),
            MarketEvent::Delta { seq, deltas, .. } => self.delta(seq, &deltas),
            MarketEvent::Trades { seq, trades, .. } => self.trades(seq, &trades),
        }
    }

    fn snapshot(
        &mut self,
        reason: SnapshotReason,
        seq: u64,
        trade_seq: u64,
        bids: &[(Price, orderbook::Qty)],
        asks: &[(Price, orderbook::Qty)],
    ) {
        if let Err(e) = self.book.apply_snapshot(bids, asks) {
            tracing::error!(pair = %self.spec.symbol, error = %e, "upstream snapshot refused");
            return;
        }
        let was_warm = self.warm.swap(true, Ordering::Relaxed);
        self.seq = seq;
        self.trade_seq = self.trade_seq.max(trade_seq);
        if was_warm || reason == SnapshotReason::Resync {
            metrics::counter!(m::RESYNCS_TOTAL, "pair" => self.spec.symbol.clone(), "reason" => "upstream").increment(1);
        }
        // Clients that subscribed before the first snapshot (or hold a book
        // the upstream just replaced) get the new book as a `resync`.
        for i in 0..TOPICS_PER_PAIR {
            if !self.topics[i].is_active() {
                continue;
            }
            match (topics::kind_of(i), topics::cadence_of(i)) {
                (TopicKind::Book, Cadence::Raw) => {
                    let prev = self.topics[i].last_seq;
                    let bytes = self.encode_snapshot(i, "resync", self.seq, prev);
                    self.publish(i, self.seq, bytes);
                }
                (TopicKind::Depth(n), Cadence::Raw) => self.publish_depth(i, n),
                (TopicKind::Book, _) => self.conflation[i].resync = true,
                (TopicKind::Depth(_), _) => self.conflation[i].dirty = true,
                _ => {}
            }
        }
        self.update_ticker();
    }

    fn delta(&mut self, seq: u64, deltas: &[BookDelta]) {
        if seq != self.seq + 1 {
            // The feed resyncs us with a snapshot; until then changes are
            // not applied (the book would be wrong).
            tracing::warn!(pair = %self.spec.symbol, expected = self.seq + 1, got = seq, "upstream seq gap");
            return;
        }
        self.seq = seq;
        for d in deltas {
            self.book.apply_delta(*d);
        }
        if let Err(e) = self.book.check_not_crossed() {
            tracing::error!(pair = %self.spec.symbol, seq, error = %e, "upstream book crossed");
        }
        let checksum = self.book.checksum();
        for i in 0..TOPICS_PER_PAIR {
            if !self.topics[i].is_active() {
                continue;
            }
            match (topics::kind_of(i), topics::cadence_of(i)) {
                (TopicKind::Book, Cadence::Raw) => {
                    let h = header(
                        &self.topics[i],
                        &self.epoch,
                        seq,
                        self.topics[i].last_seq,
                        self.ts,
                    );
                    let bytes = self.encoder.book_update(&self.spec, &h, deltas, checksum);
                    self.publish(i, seq, bytes);
                }
                (TopicKind::Depth(n), cadence)
                    if top_changed(&self.book, deltas, usize::from(n)) =>
                {
                    if cadence == Cadence::Raw {
                        self.publish_depth(i, n);
                    } else {
                        self.conflation[i].dirty = true;
                    }
                }
                (TopicKind::Book, _) => {
                    self.conflation[i]
                        .changed
                        .extend(deltas.iter().map(|d| (d.side, d.price)));
                }
                _ => {}
            }
        }
        self.update_ticker();
    }

    fn trades(&mut self, seq: u64, trades: &[PublicTrade]) {
        self.trade_seq = seq;
        self.ticker.record(trades);
        for i in 0..TOPICS_PER_PAIR {
            if !self.topics[i].is_active() || topics::kind_of(i) != TopicKind::Trades {
                continue;
            }
            if topics::cadence_of(i) == Cadence::Raw {
                let h = header(
                    &self.topics[i],
                    &self.epoch,
                    seq,
                    self.topics[i].last_seq,
                    self.ts,
                );
                let bytes = self.encoder.trades(&self.spec, &h, trades);
                self.publish(i, seq, bytes);
            } else {
                self.conflation[i].trades.extend_from_slice(trades);
            }
        }
        self.update_ticker();
    }

    fn update_ticker(&mut self) {
        let ticker = self.ticker.ticker(&self.book);
        if ticker == self.last_ticker {
            return;
        }
        self.last_ticker = ticker;
        for i in 0..TOPICS_PER_PAIR {
            if !self.topics[i].is_active() || topics::kind_of(i) != TopicKind::Ticker {
                continue;
            }
            if topics::cadence_of(i) == Cadence::Raw {
                let seq = self.current_seq(TopicKind::Ticker);
                let bytes = self.encode_ticker(i, None, seq, self.topics[i].last_seq);
                self.publish(i, seq, bytes);
            } else {
                self.conflation[i].dirty = true;
            }
        }
    }

    fn publish_depth(&mut self, i: usize, n: u16) {
        let prev = self.topics[i].last_seq;
        let bytes = self.encode_depth(i, n, None, self.seq, prev);
        self.publish(i, self.seq, bytes);
    }

    // ---- encoding of per-topic messages -----------------------------------

    fn encode_snapshot(&mut self, i: usize, reason: &str, seq: u64, prev_seq: u64) -> Bytes {
        let h = header(&self.topics[i], &self.epoch, seq, prev_seq, self.ts);
        self.encoder
            .book_snapshot(&self.spec, &h, reason, &self.book, usize::MAX)
    }

    fn encode_depth(
        &mut self,
        i: usize,
        n: u16,
        reason: Option<&str>,
        seq: u64,
        prev_seq: u64,
    ) -> Bytes {
        let h = header(&self.topics[i], &self.epoch, seq, prev_seq, self.ts);
        let n = usize::from(n);
        let checksum = checksum_top(&self.book, n);
        self.encoder
            .depth(&self.spec, &h, &self.book, n, checksum, reason)
    }

    fn encode_ticker(&mut self, i: usize, reason: Option<&str>, seq: u64, prev_seq: u64) -> Bytes {
        let h = header(&self.topics[i], &self.epoch, seq, prev_seq, self.ts);
        self.encoder
            .ticker(&self.spec, &h, &self.last_ticker, reason)
    }

    /// The message that replaces a client's state of topic `i` (book
    /// snapshot, depth or ticker), or `None` for trades. It carries the
    /// topic's last seq: the state now is the state as of that message
    /// (raw topics publish every change; conflated ones just published), so
    /// the next message chains from it.
    fn state_message(&mut self, i: usize, reason: &'static str, prev_seq: u64) -> Option<Bytes> {
        let seq = self.topics[i].last_seq;
        let tagged = Some(reason).filter(|r| *r != "subscribe");
        match topics::kind_of(i) {
            TopicKind::Book => Some(self.encode_snapshot(i, reason, seq, prev_seq)),
            TopicKind::Depth(n) => Some(self.encode_depth(i, n, tagged, seq, prev_seq)),
            TopicKind::Ticker => Some(self.encode_ticker(i, tagged, seq, prev_seq)),
            TopicKind::Trades => None,
        }
    }

    // ---- subscribers ------------------------------------------------------

    fn command(&mut self, cmd: PairCommand) {
        match cmd {
            PairCommand::Subscribe {
                subscriber,
                channel,
                resume,
                reply,
            } => {
                let recovered = self.subscribe(subscriber, channel, resume);
                let _ = reply.send(recovered);
            }
            PairCommand::Unsubscribe { conn_id, channel } => {
                if let Some(i) = self.index(channel) {
                    self.topics[i].remove(conn_id, Instant::now());
                    self.conflation[i]
                        .waiting
                        .retain(|(s, _)| s.conn_id != conn_id);
                }
            }
            PairCommand::Orderbook { depth, reply } => {
                let _ = reply.send(self.orderbook(depth));
            }
        }
    }

    fn index(&self, channel: ChannelId) -> Option<usize> {
        let i = channel.checked_sub(self.first_channel)? as usize;
        (i < TOPICS_PER_PAIR).then_some(i)
    }

    fn subscribe(
        &mut self,
        sub: Arc<Subscriber>,
        channel: ChannelId,
        resume: Option<(String, u64)>,
    ) -> bool {
        let Some(i) = self.index(channel) else {
            return false;
        };
        let kind = topics::kind_of(i);
        if self.topics[i].activate() {
            self.topics[i].last_seq = self.current_seq(kind);
        }
        self.topics[i].add(sub.clone());
        let on_overflow = self.topics[i].on_overflow;
        let last = self.topics[i].last_seq;
        if let Some((epoch, seq)) = resume.filter(|(e, _)| *e == self.epoch) {
            if seq == last {
                sub.queue.subscribe(channel, seq, on_overflow);
                return true;
            }
            if let Some(replay) = self.topics[i].history.after(seq) {
                sub.queue.subscribe(channel, seq, on_overflow);
                for (s, text) in replay {
                    sub.queue.push_replay(channel, s, text, self.ts);
                }
                tracing::debug!(epoch, seq, "resumed from history");
                return true;
            }
        }
        let conflated = topics::cadence_of(i) != Cadence::Raw;
        match kind {
            TopicKind::Trades => {
                sub.queue.subscribe(channel, last, on_overflow);
                sub.queue.expect_first(channel);
            }
            _ if conflated => {
                // Nothing until the tick's snapshot sets the floor.
                sub.queue.subscribe(channel, u64::MAX, on_overflow);
                self.conflation[i].waiting.push((sub, "subscribe"));
            }
            _ => {
                sub.queue.subscribe(channel, last, on_overflow);
                if let Some(bytes) = self.state_message(i, "subscribe", 0) {
                    sub.queue.push_snapshot(channel, last, utf8(bytes), self.ts);
                }
            }
        }
        false
    }

    /// A subscriber's queue overflowed on a conflatable channel: send it one
    /// fresh state message (now, or at the next tick for conflated topics).
    fn resync_subscriber(&mut self, req: ResyncRequest) {
        let Some(i) = self.index(req.channel) else {
            return;
        };
        metrics::counter!(m::SLOW_CONSUMER_CONFLATIONS_TOTAL).increment(1);
        if !req.subscriber.queue.is_subscribed(req.channel) {
            return;
        }
        if topics::cadence_of(i) != Cadence::Raw {
            self.conflation[i]
                .waiting
                .push((req.subscriber, "slow_consumer"));
            return;
        }
        let prev = req.subscriber.queue.last_delivered_seq(req.channel);
        let last = self.topics[i].last_seq;
        if let Some(bytes) = self.state_message(i, "slow_consumer", prev) {
            req.subscriber
                .queue
                .push_snapshot(req.channel, last, utf8(bytes), self.ts);
        }
    }

    fn orderbook(&self, depth: usize) -> OrderbookView {
        let side = |s| {
            self.book
                .top_n(s, depth)
                .map(|l| [self.spec.format_price(l.price), self.spec.format_qty(l.qty)])
                .collect()
        };
        OrderbookView {
            pair: self.spec.symbol.clone(),
            seq: self.seq,
            epoch: self.epoch.clone(),
            ts: self.ts,
            bids: side(Side::Buy),
            asks: side(Side::Sell),
            checksum: self.book.checksum(),
        }
    }
}

/// Whether `deltas` (already applied) changed the top `n` levels of `book`:
/// a delta matters if its side now has fewer than `n` levels or its price
/// is at or better than the side's `n`-th price.
fn top_changed(book: &L2Book, deltas: &[BookDelta], n: usize) -> bool {
    let nth = |side: Side| book.top_n(side, n).nth(n - 1).map(|l| l.price);
    let (bid_nth, ask_nth) = (nth(Side::Buy), nth(Side::Sell));
    deltas.iter().any(|d| match (d.side, bid_nth, ask_nth) {
        (Side::Buy, Some(p), _) => d.price >= p,
        (Side::Sell, _, Some(p)) => d.price <= p,
        _ => true,
    })
}

/// The header of topic `i`'s next message. A free function so that it
/// borrows only the topic and the epoch, leaving the encoder free.
fn header<'a>(topic: &'a Topic, epoch: &'a str, seq: u64, prev_seq: u64, ts: u64) -> Header<'a> {
    Header {
        channel: &topic.name,
        epoch,
        seq,
        prev_seq,
        ts,
    }
}

fn utf8(bytes: Bytes) -> Utf8Bytes {
    Utf8Bytes::try_from(bytes).expect("the encoder writes only UTF-8 JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderbook::Qty;

    #[test]
    fn top_changed_sees_only_changes_within_the_top_n() {
        let mut book = L2Book::new();
        let bids: Vec<_> = (1..=10).map(|p| (Price(p), Qty(1))).collect();
        let asks: Vec<_> = (11..=20).map(|p| (Price(p), Qty(1))).collect();
        book.apply_snapshot(&bids, &asks).unwrap();
        let d = |side, p, q| BookDelta {
            side,
            price: Price(p),
            qty: Qty(q),
        };
        // bid top 5 are 10..6; a change at 3 is outside, at 6 inside
        assert!(!top_changed(&book, &[d(Side::Buy, 3, 2)], 5));
        assert!(top_changed(&book, &[d(Side::Buy, 6, 2)], 5));
        assert!(top_changed(&book, &[d(Side::Sell, 15, 2)], 5));
        assert!(!top_changed(&book, &[d(Side::Sell, 16, 2)], 5));
        // deleting the 5th best bid (6) makes 5 the new 5th: the change is inside
        book.apply_delta(d(Side::Buy, 6, 0));
        assert!(top_changed(&book, &[d(Side::Buy, 6, 0)], 5));
        // fewer levels than n: every change counts
        assert!(top_changed(&book, &[d(Side::Buy, 1, 5)], 50));
    }
}
