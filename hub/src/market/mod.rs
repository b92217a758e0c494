//! The book cache: one task per pair fed by the upstream stream, and the
//! handle the rest of the hub uses to reach them (subscribe, unsubscribe,
//! read a book).

mod pair;
mod ticker;
pub mod topics;

pub use pair::{OrderbookView, PairCommand};

use crate::fanout::{ChannelId, ShardPool, Subscriber};
use crate::protocol::channel::Channel;
use feeds::{MarketFeed, VenueError};
use orderbook::MarketSpec;
use pair::{PairSetup, PairTask};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Channel ids below this are per-connection channels (heartbeat, private).
const FIRST_MARKET_CHANNEL: ChannelId = 16;
/// Upstream events a pair task may have queued before the dispatcher waits
/// (and the venue, seeing us lag, resyncs us with a snapshot).
const PAIR_EVENT_BUFFER: usize = 8192;

/// History kept per channel for `resume`.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    pub max_messages: usize,
    pub max_age: Duration,
}

struct PairHandle {
    first_channel: ChannelId,
    commands: mpsc::UnboundedSender<PairCommand>,
    warm: Arc<AtomicBool>,
}

/// A resolved market channel: which pair task, which channel id.
#[derive(Debug, Clone)]
pub struct MarketChannel {
    pub pair: String,
    pub id: ChannelId,
}

struct Inner {
    specs: Vec<MarketSpec>,
    pairs: HashMap<String, PairHandle>,
    epoch: String,
}

/// Handle to every pair's task. Cheap to clone.
#[derive(Clone)]
pub struct Markets {
    inner: Arc<Inner>,
}

impl Markets {
    /// Subscribes to `feed` and starts one task per pair plus the
    /// dispatcher that routes upstream events to them.
    pub async fn start(
        feed: &dyn MarketFeed,
        history: HistoryLimits,
        pool: ShardPool,
    ) -> Result<Markets, VenueError> {
        let mut stream = feed.subscribe().await?;
        let specs = feed.markets();
        let mut pairs = HashMap::new();
        let mut routes = HashMap::new();
        for (n, spec) in specs.iter().enumerate() {
            let first_channel = FIRST_MARKET_CHANNEL + (n * topics::TOPICS_PER_PAIR) as ChannelId;
            let (event_tx, event_rx) = mpsc::channel(PAIR_EVENT_BUFFER);
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            let warm = Arc::new(AtomicBool::new(false));
            let setup = PairSetup {
                spec: spec.clone(),
                epoch: stream.epoch.clone(),
                first_channel,
                history_messages: history.max_messages,
                history_age: history.max_age,
                pool: pool.clone(),
                warm: warm.clone(),
            };
            tokio::spawn(PairTask::run(setup, event_rx, cmd_rx));
            routes.insert(spec.symbol.clone(), event_tx);
            pairs.insert(
                spec.symbol.clone(),
                PairHandle {
                    first_channel,
                    commands: cmd_tx,
                    warm,
                },
            );
        }
        tokio::spawn(async move {
            while let Some(event) = stream.events.recv().await {
                match routes.get(&**event.pair()) {
                    Some(tx) => {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    None => tracing::warn!(pair = %event.pair(), "event for an unconfigured pair"),
                }
            }
            tracing::warn!("upstream market stream ended");
        });
        Ok(Markets {
            inner: Arc::new(Inner {
                specs,
                pairs,
                epoch: stream.epoch,
            }),
        })
    }

    pub fn specs(&self) -> &[MarketSpec] {
        &self.inner.specs
    }

    /// The epoch of every market channel.
    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    /// The pair task and channel id of a market channel, `None` for an
    /// unknown pair or a non-market channel.
    pub fn resolve(&self, channel: &Channel) -> Option<MarketChannel> {
        let pair = channel.pair.as_ref()?;
        let handle = self.inner.pairs.get(pair)?;
        let i = topics::index_of(channel)?;
        Some(MarketChannel {
            pair: pair.clone(),
            id: handle.first_channel + i as ChannelId,
        })
    }

    /// Subscribes `subscriber`; the answer says whether `resume` recovered
    /// the channel from history. The snapshot (or recovered messages) is
    /// queued, held until the connection releases the channel.
    pub fn subscribe(
        &self,
        channel: &MarketChannel,
        subscriber: Arc<Subscriber>,
        resume: Option<(String, u64)>,
    ) -> oneshot::Receiver<bool> {
        let (reply, rx) = oneshot::channel();
        if let Some(h) = self.inner.pairs.get(&channel.pair) {
            let _ = h.commands.send(PairCommand::Subscribe {
                subscriber,
                channel: channel.id,
                resume,
                reply,
            });
        }
        rx
    }

    pub fn unsubscribe(&self, channel: &MarketChannel, conn_id: u64) {
        if let Some(h) = self.inner.pairs.get(&channel.pair) {
            let _ = h.commands.send(PairCommand::Unsubscribe {
                conn_id,
                channel: channel.id,
            });
        }
    }

    /// The cached book of `pair`, top `depth` levels each side.
    pub async fn orderbook(&self, pair: &str, depth: usize) -> Option<OrderbookView> {
        let h = self.inner.pairs.get(pair)?;
        let (reply, rx) = oneshot::channel();
        h.commands
            .send(PairCommand::Orderbook { depth, reply })
            .ok()?;
        rx.await.ok()
    }

    /// Pairs whose book is not loaded (no snapshot yet, or stream ended).
    pub fn cold_pairs(&self) -> Vec<String> {
        let mut cold: Vec<String> = self
            .inner
            .pairs
            .iter()
            .filter(|(_, h)| !h.warm.load(Ordering::Relaxed))
            .map(|(p, _)| p.clone())
            .collect();
        cold.sort();
        cold
    }
}
