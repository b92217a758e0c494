//! One pair's task: it owns the pair's book cache and every topic of the
//! pair (each kind of `protocol::kinds::KINDS` at each of its cadences),
//! applies upstream events in order (`apply.rs`), encodes each topic's
//! message once and publishes it; conflated topics publish on their tick
//! (`conflate.rs`); subscribers join and resume in `subscribe.rs`.
//!
//! Because one task does all of it, a subscriber's snapshot is taken
//! between two upstream events: it includes every change up to its `seq`
//! and the next published message is `seq + 1`. Conflated channels
//! (`@100ms`, `@1000ms`) publish on their interval the net of what changed;
//! their new subscribers get their snapshot at that tick, so that their
//! first update chains from it.

mod apply;
mod candles;
mod conflate;
mod subscribe;

pub use candles::CandlesView;

use super::archive::ArchiveWriter;
use super::status::StatusReporter;
use super::ticker::TickerState;
use super::view::OrderbookView;
use crate::fanout::{ChannelId, History, ResyncRequest, ShardPool, Subscriber, Topic};
use crate::protocol::channel::{Cadence, Channel, ChannelKind};
use crate::protocol::encode::{Encoder, Header, Ticker};
use crate::protocol::kinds::{pair_topics, Cx, PairView, TopicDef};
use crate::protocol::series::Candles;
use api::market_archive::{ArchivedTrade, MarketArchive, TradeKey};
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use conflate::Conflation;
use orderbook::candle::Interval;
use orderbook::{L2Book, MarketSpec};
use std::collections::VecDeque;
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
    /// `GET /markets/{pair}/ticker`: the body.
    Ticker {
        reply: oneshot::Sender<Bytes>,
    },
    /// Candles of `interval` in memory with `from <= start < to`, the
    /// newest `limit`.
    Candles {
        interval: Interval,
        from: u64,
        to: u64,
        limit: usize,
        reply: oneshot::Sender<CandlesView>,
    },
    /// The recent trades in memory strictly older than `before`, newest
    /// first, at most `limit`.
    Trades {
        before: Option<TradeKey>,
        limit: usize,
        reply: oneshot::Sender<Vec<ArchivedTrade>>,
    },
    /// Hub shutdown, once the pair's dispatcher has stopped: apply every
    /// event it routed, read no more, hand nothing more to the archive
    /// writer (it is closed next), answer. Candles that close later are
    /// rebuilt from the archived trades at the next start.
    StopIngest {
        reply: oneshot::Sender<()>,
    },
}

/// What the dispatcher sends a pair task, in upstream order.
pub enum PairInput {
    Event(feeds::MarketEvent),
    /// The upstream restarted its numbering: every channel of the pair
    /// starts over in this epoch (the next snapshot rebuilds the book).
    NewEpoch(Arc<str>),
}

/// The pair's market state: what every topic's message is made from.
struct PairState {
    spec: MarketSpec,
    epoch: String,
    book: L2Book,
    seq: u64,
    trade_seq: u64,
    /// Hub ingest time of the last applied event.
    ts: u64,
    ticker: TickerState,
    last_ticker: Ticker,
    candles: Candles,
    /// The last [`RECENT_TRADES`] trades, oldest first.
    recent: VecDeque<ArchivedTrade>,
}

/// Trades kept in memory per pair for `GET /markets/{pair}/trades`.
pub const RECENT_TRADES: usize = 1000;

impl PairState {
    fn view(&self) -> PairView<'_> {
        PairView {
            spec: &self.spec,
            book: &self.book,
            ticker: &self.last_ticker,
            candles: &self.candles,
            seq: self.seq,
            trade_seq: self.trade_seq,
        }
    }
}

pub struct PairTask {
    state: PairState,
    /// One per entry of [`pair_topics`], in its order.
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
    /// The pair's name, shared with the archive writer's items.
    pair: Arc<str>,
    archive: Option<ArchiveWriter>,
    /// The newest trade the rebuild read from the archive: live trades at
    /// or below it were already counted (the stream is subscribed before
    /// the rebuild, and a shared archive receives other nodes' trades
    /// meanwhile). Kept until the upstream epoch changes.
    restored_upto: Option<TradeKey>,
    /// The pair's market status (`market/status.rs`).
    status: StatusReporter,
    /// Events wait behind the one being applied: publish without writing
    /// through, so connections' writers batch (docs/ARCHITECTURE.md,
    /// "Writes").
    backlog: bool,
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
    /// Where trades and closed candles are kept, and what the pair's
    /// candles are rebuilt from at start (docs/ARCHITECTURE.md, "Market
    /// archive"); `None`: in memory only.
    pub archive: Option<(Arc<dyn MarketArchive>, ArchiveWriter)>,
    /// Told once the pair is rebuilt from the archive (at once without
    /// one), before it handles any event or command.
    pub restored: oneshot::Sender<()>,
    pub status: StatusReporter,
}

impl PairTask {
    /// Runs the pair until both its event and command channels close.
    pub async fn run(
        setup: PairSetup,
        mut events: mpsc::Receiver<PairInput>,
        mut commands: mpsc::UnboundedReceiver<PairCommand>,
    ) {
        let (resync_tx, mut resync_rx) = mpsc::unbounded_channel();
        let symbol = setup.spec.symbol.clone();
        let topics = pair_topics()
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let name = Channel {
                    kind: ChannelKind::Topic(def.kind),
                    pair: Some(setup.spec.symbol.clone()),
                    cadence: def.cadence,
                };
                let history = History::new(setup.history_messages, setup.history_age);
                Topic::new(
                    setup.first_channel + i as ChannelId,
                    &name.to_string(),
                    def.kind.kind().on_overflow(),
                    history,
                    setup.pool.len(),
                )
            })
            .collect();
        let mut task = PairTask {
            state: PairState {
                spec: setup.spec,
                epoch: setup.epoch,
                book: L2Book::new(),
                seq: 0,
                trade_seq: 0,
                ts: 0,
                ticker: TickerState::default(),
                last_ticker: Ticker::default(),
                candles: Candles::default(),
                recent: VecDeque::with_capacity(RECENT_TRADES),
            },
            topics,
            conflation: pair_topics()
                .iter()
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
            pair: Arc::from(symbol.as_str()),
            archive: setup.archive.as_ref().map(|(_, w)| w.clone()),
            restored_upto: None,
            status: setup.status,
            backlog: false,
        };
        if let Some((archive, _)) = setup.archive {
            // Before any subscriber is served: commands and events wait.
            task.restore(&*archive).await;
        }
        let _ = setup.restored.send(());
        let mut fast = tokio::time::interval(Duration::from_millis(100));
        fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        let (mut events_open, mut commands_open) = (true, true);
        while events_open || commands_open {
            tokio::select! {
                biased;
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => {
                        if matches!(cmd, PairCommand::StopIngest { .. }) {
                            // The dispatcher has stopped: what it routed
                            // is all queued.
                            while let Ok(input) = events.try_recv() {
                                task.input(input, !events.is_empty());
                            }
                            events_open = false;
                        }
                        task.command(cmd)
                    }
                    None => commands_open = false,
                },
                Some(req) = resync_rx.recv() => task.resync_subscriber(req),
                _ = fast.tick() => {
                    ticks += 1;
                    let now = Instant::now();
                    task.close_candles_by_time(now);
                    task.flush_raw(now);
                    task.tick(Cadence::Every100ms);
                    if ticks.is_multiple_of(10) {
                        task.tick(Cadence::Every1000ms);
                        let now = Instant::now();
                        task.topics.iter_mut().for_each(|t| t.expire_idle(now));
                        task.check_stale(now);
                    }
                }
                ev = events.recv(), if events_open => match ev {
                    Some(input) => task.input(input, !events.is_empty()),
                    None => {
                        tracing::warn!(pair = %task.state.spec.symbol, "upstream stream ended");
                        task.warm.store(false, Ordering::Relaxed);
                        task.status.resyncing(Some("upstream stream ended"));
                        events_open = false;
                    }
                },
            }
        }
    }

    /// One input from the dispatcher; `backlog` when more are queued.
    fn input(&mut self, input: PairInput, backlog: bool) {
        match input {
            PairInput::Event(ev) => {
                self.backlog = backlog;
                self.event(ev)
            }
            PairInput::NewEpoch(epoch) => self.new_epoch(&epoch),
        }
    }

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
            PairCommand::Unsubscribe { conn_id, channel } => self.unsubscribe(conn_id, channel),
            PairCommand::Orderbook { depth, reply } => {
                let s = &self.state;
                let at = (s.epoch.as_str(), s.seq, s.ts);
                let _ = reply.send(OrderbookView::of(&s.spec, &s.book, depth, at));
            }
            PairCommand::Ticker { reply } => {
                let s = &self.state;
                let at = (s.epoch.as_str(), s.seq + s.trade_seq, s.ts);
                let _ = reply.send(self.encoder.rest_ticker(&s.spec, at, &s.last_ticker));
            }
            PairCommand::Candles {
                interval,
                from,
                to,
                limit,
                reply,
            } => {
                let _ = reply.send(self.candles_view(interval, from, to, limit));
            }
            PairCommand::Trades {
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(self.recent_trades(before, limit));
            }
            PairCommand::StopIngest { reply } => {
                self.archive = None;
                let _ = reply.send(());
            }
        }
    }

    /// The topic of a channel id of this pair.
    fn index(&self, channel: ChannelId) -> Option<usize> {
        let i = channel.checked_sub(self.first_channel)? as usize;
        (i < self.topics.len()).then_some(i)
    }

    /// The seq topic `i`'s numbering is at now.
    fn current_seq(&self, i: usize) -> u64 {
        def(i).kind.kind().numbering().seq(&self.state.view())
    }

    fn publish(&mut self, i: usize, seq: u64, bytes: Bytes) {
        let msg = self.encoder.channel_message(bytes);
        let (ts, now) = (self.state.ts, Instant::now());
        let through = !self.backlog;
        self.topics[i].publish(seq, msg, ts, through, &self.pool, &self.resync_tx, now);
    }

    /// The message that replaces a client's state of topic `i`, or `None`
    /// for a kind without state. It carries the topic's last seq: the
    /// state now is the state as of that message (raw topics publish every
    /// change; conflated ones just published), so the next message chains
    /// from it.
    fn state_message(
        &mut self,
        i: usize,
        reason: &'static str,
        prev_seq: u64,
    ) -> Option<Utf8Bytes> {
        let seq = self.topics[i].last_seq;
        let h = header(&self.topics[i], &self.state, seq, prev_seq);
        let view = self.state.view();
        let cx = Cx::new(&mut self.encoder, &view, &h);
        let bytes = def(i).kind.kind().state(cx, reason)?;
        Some(self.encoder.channel_message(bytes).into_text())
    }
}

/// Topic `i` of every pair.
fn def(i: usize) -> TopicDef {
    pair_topics()[i]
}

/// Whether topic `i` nets its messages: a conflated cadence, or a raw one
/// whose kind sets a floor ([`crate::protocol::kinds::Kind::raw_every_ms`]).
fn netted(i: usize) -> bool {
    def(i).cadence != Cadence::Raw || def(i).kind.kind().raw_every_ms().is_some()
}

/// The header of a topic's next message. A free function so that it
/// borrows only the topic and the state, leaving the encoder free.
fn header<'a>(topic: &'a Topic, state: &'a PairState, seq: u64, prev_seq: u64) -> Header<'a> {
    Header {
        channel: &topic.name,
        epoch: &state.epoch,
        seq,
        prev_seq,
        ts: state.ts,
    }
}
