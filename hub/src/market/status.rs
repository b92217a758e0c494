//! Market status (docs/PROTOCOL.md, "Market status"): each pair's market
//! state on this node and the `status` channel that publishes it.
//!
//! Each pair task holds a [`StatusReporter`] and tells it what holds for
//! its pair: the venue halted it (a `Status` upstream event), its book is
//! resyncing (no snapshot yet, a seq gap, a new epoch, the feed's
//! `Resyncing`), its upstream is silent (`stale_after`). The reporter
//! turns that into one [`MarketState`] by precedence (halted > resyncing >
//! stale > online) and, only when the state or its reason changes, sends
//! it to the status task. That task owns the `status` topic: it keeps the
//! table of every pair, publishes the whole table (small: one entry per
//! pair) once per change, answers subscribers with the table as it is,
//! and keeps the table readable for `GET /markets`.
//!
//! Numbering is the node's own (a state like `stale` is this node's view):
//! the epoch is drawn at start, `seq` counts the messages published. A
//! resume on the same node replays from the topic's history like any
//! public channel; on another node (another epoch) it is not recovered
//! and gets the current table.

use super::HistoryLimits;
use crate::fanout::{ChannelId, History, OnOverflow, ResyncRequest, ShardPool, Subscriber, Topic};
use crate::protocol::encode::{Encoder, Header};
use crate::protocol::status::{MarketState, PairStatus};
use feeds::event::now_micros;
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The `status` channel's id (below the market channels' first id).
pub const STATUS_CHANNEL: ChannelId = 1;

/// The reason of a pair not loaded yet.
const WAITING_FOR_SNAPSHOT: &str = "waiting for first snapshot";

/// What holds for one pair now; its state follows by precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Condition {
    /// The venue's reason, while it halts the pair.
    halted: Option<String>,
    /// Why the book waits for a snapshot, while it does.
    resyncing: Option<String>,
    /// Why the pair is stale, while its upstream is silent.
    stale: Option<String>,
}

impl Condition {
    /// The state and reason: halted > resyncing > stale > online.
    fn state(&self) -> (MarketState, Option<String>) {
        [
            (MarketState::Halted, &self.halted),
            (MarketState::Resyncing, &self.resyncing),
            (MarketState::Stale, &self.stale),
        ]
        .into_iter()
        .find_map(|(state, reason)| reason.clone().map(|r| (state, Some(r))))
        .unwrap_or((MarketState::Online, None))
    }
}

/// One pair's state change on its way to the status task.
struct Update {
    index: usize,
    state: MarketState,
    reason: Option<String>,
    /// When it changed, µs since the Unix epoch.
    at: u64,
}

/// A pair task's side of the status: the setters record what holds for
/// the pair and report the pair's state to the status task when it (or
/// its reason) changed. A pair starts `resyncing` ("waiting for first
/// snapshot").
pub struct StatusReporter {
    index: usize,
    condition: Condition,
    current: (MarketState, Option<String>),
    updates: mpsc::UnboundedSender<Update>,
}

impl StatusReporter {
    /// The venue halted the pair (`Some(reason)`) or resumed it (`None`).
    pub fn halted(&mut self, reason: Option<String>) {
        self.condition.halted = reason;
        self.report();
    }

    /// The book waits for a snapshot (`Some(why)`), or got one (`None`).
    pub fn resyncing(&mut self, reason: Option<&str>) {
        if self.condition.resyncing.as_deref() != reason {
            self.condition.resyncing = reason.map(str::to_owned);
            self.report();
        }
    }

    /// The upstream has been silent (`Some(why)`), or spoke (`None`).
    pub fn stale(&mut self, reason: Option<String>) {
        if self.condition.stale != reason {
            self.condition.stale = reason;
            self.report();
        }
    }

    fn report(&mut self) {
        let now = self.condition.state();
        if now == self.current {
            return;
        }
        self.current = now.clone();
        // The status task lives as long as the markets; if it is gone
        // nobody is listening.
        let _ = self.updates.send(Update {
            index: self.index,
            state: now.0,
            reason: now.1,
            at: now_micros(),
        });
    }
}

/// A request to the status task.
enum StatusCommand {
    Subscribe {
        subscriber: Arc<Subscriber>,
        resume: Option<(String, u64)>,
        reply: oneshot::Sender<bool>,
    },
    Unsubscribe {
        conn_id: u64,
    },
}

/// Handle to the status task and its table. Cheap to clone.
#[derive(Clone)]
pub struct StatusBoard {
    commands: mpsc::UnboundedSender<StatusCommand>,
    table: Arc<RwLock<Vec<PairStatus>>>,
}

impl StatusBoard {
    /// Starts the status task for `pairs` (in this order in every
    /// message) and returns its handle and one reporter per pair, in the
    /// same order.
    pub fn start(
        pairs: &[String],
        history: HistoryLimits,
        pool: ShardPool,
    ) -> (StatusBoard, Vec<StatusReporter>) {
        let start = now_micros();
        let waiting = (
            MarketState::Resyncing,
            Some(WAITING_FOR_SNAPSHOT.to_owned()),
        );
        let table: Vec<PairStatus> = pairs
            .iter()
            .map(|pair| PairStatus {
                pair: pair.clone(),
                state: waiting.0,
                reason: waiting.1.clone(),
                since: start,
            })
            .collect();
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let reporters = (0..pairs.len())
            .map(|index| StatusReporter {
                index,
                condition: Condition {
                    resyncing: waiting.1.clone(),
                    ..Condition::default()
                },
                current: waiting.clone(),
                updates: updates_tx.clone(),
            })
            .collect();
        let shared = Arc::new(RwLock::new(table.clone()));
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (resync_tx, resync_rx) = mpsc::unbounded_channel();
        let mut topic = Topic::new(
            STATUS_CHANNEL,
            "status",
            OnOverflow::Resync,
            History::new(history.max_messages, history.max_age),
            pool.len(),
        );
        // Always active: the history keeps recording for resumes.
        topic.activate();
        let mut task = StatusTask {
            topic,
            pairs: table,
            shared: shared.clone(),
            epoch: format!("{:08x}", rand::random::<u32>()),
            encoder: Encoder::new(),
            pool,
            resync_tx,
            ts: start,
        };
        task.publish();
        tokio::spawn(task.run(commands, updates, resync_rx));
        let board = StatusBoard {
            commands: commands_tx,
            table: shared,
        };
        (board, reporters)
    }

    /// Subscribes `subscriber` to `status`; the answer says whether
    /// `resume` recovered the channel from history.
    pub fn subscribe(
        &self,
        subscriber: Arc<Subscriber>,
        resume: Option<(String, u64)>,
    ) -> oneshot::Receiver<bool> {
        let (reply, rx) = oneshot::channel();
        let _ = self.commands.send(StatusCommand::Subscribe {
            subscriber,
            resume,
            reply,
        });
        rx
    }

    pub fn unsubscribe(&self, conn_id: u64) {
        let _ = self.commands.send(StatusCommand::Unsubscribe { conn_id });
    }

    /// Every pair's status as last published.
    pub fn table(&self) -> Vec<PairStatus> {
        self.table.read().clone()
    }
}

struct StatusTask {
    topic: Topic,
    pairs: Vec<PairStatus>,
    /// `pairs` as last published, for `GET /markets`.
    shared: Arc<RwLock<Vec<PairStatus>>>,
    epoch: String,
    encoder: Encoder,
    pool: ShardPool,
    resync_tx: mpsc::UnboundedSender<ResyncRequest>,
    /// When the last published change happened.
    ts: u64,
}

impl StatusTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<StatusCommand>,
        mut updates: mpsc::UnboundedReceiver<Update>,
        mut resync: mpsc::UnboundedReceiver<ResyncRequest>,
    ) {
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(StatusCommand::Subscribe { subscriber, resume, reply }) => {
                        let _ = reply.send(self.subscribe(subscriber, resume));
                    }
                    Some(StatusCommand::Unsubscribe { conn_id }) => {
                        self.topic.remove(conn_id, Instant::now());
                    }
                    None => return,
                },
                Some(req) = resync.recv() => self.resync_subscriber(req),
                // One message per change, so that a client sees every
                // state a pair went through, in order (changes are rare).
                update = updates.recv() => {
                    let Some(update) = update else { return };
                    self.apply(update);
                    self.publish();
                }
            }
        }
    }

    fn apply(&mut self, u: Update) {
        let entry = &mut self.pairs[u.index];
        if entry.state != u.state {
            entry.since = u.at;
        }
        entry.state = u.state;
        entry.reason = u.reason;
        self.ts = self.ts.max(u.at);
    }

    /// Shares the table, then publishes it as the next message (so a
    /// client that got the message reads the same table over REST).
    fn publish(&mut self) {
        self.shared.write().clone_from(&self.pairs);
        let seq = self.topic.last_seq + 1;
        let h = Header {
            channel: &self.topic.name,
            epoch: &self.epoch,
            seq,
            prev_seq: self.topic.last_seq,
            ts: self.ts,
        };
        let bytes = self.encoder.status(&h, None, &self.pairs);
        let msg = self.encoder.channel_message(bytes);
        self.topic.publish(
            seq,
            msg,
            self.ts,
            true,
            &self.pool,
            &self.resync_tx,
            Instant::now(),
        );
    }

    /// The table as of the last message, as one subscriber's state message.
    fn state_message(
        &mut self,
        reason: Option<&str>,
        prev_seq: u64,
    ) -> axum::extract::ws::Utf8Bytes {
        let h = Header {
            channel: &self.topic.name,
            epoch: &self.epoch,
            seq: self.topic.last_seq,
            prev_seq,
            ts: self.ts,
        };
        let bytes = self.encoder.status(&h, reason, &self.pairs);
        self.encoder.channel_message(bytes).into_text()
    }

    /// As a pair task's subscribe of a raw kind with state: recovered from
    /// history when `resume` names this node's epoch and a seq the history
    /// still follows, else the table now.
    fn subscribe(&mut self, sub: Arc<Subscriber>, resume: Option<(String, u64)>) -> bool {
        self.topic.add(sub.clone());
        let last = self.topic.last_seq;
        let on_overflow = self.topic.on_overflow;
        if let Some((_, seq)) = resume.filter(|(e, _)| *e == self.epoch) {
            if self.topic.resume(&sub, seq, self.ts) {
                return true;
            }
        }
        sub.queue.subscribe(STATUS_CHANNEL, last, on_overflow);
        let text = self.state_message(None, 0);
        sub.queue.push_snapshot(STATUS_CHANNEL, last, text, self.ts);
        false
    }

    /// A subscriber's queue overflowed: it gets the table again.
    fn resync_subscriber(&mut self, req: ResyncRequest) {
        if !req.subscriber.queue.is_subscribed(STATUS_CHANNEL) {
            return;
        }
        let prev = req.subscriber.queue.last_delivered_seq(STATUS_CHANNEL);
        let last = self.topic.last_seq;
        let text = self.state_message(Some("slow_consumer"), prev);
        req.subscriber
            .queue
            .push_snapshot(STATUS_CHANNEL, last, text, self.ts);
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
