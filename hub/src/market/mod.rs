//! The book cache: one task per pair fed by the upstream stream, and the
//! handle the rest of the hub uses to reach them (subscribe, unsubscribe,
//! read a book); and the pairs' market status (`status.rs`).

pub mod archive;
pub mod cache;
mod dispatch;
mod pair;
mod status;
mod ticker;
mod view;

pub use pair::{CandlesView, PairCommand, PairInput, RECENT_TRADES};
pub use view::OrderbookView;

use crate::fanout::{ChannelId, ShardPool, Subscriber};
use crate::protocol::channel::{Channel, ChannelKind};
use crate::protocol::kinds::{pair_topics, topic_index};
use crate::protocol::status::PairStatus;
use crate::shutdown::Shutdown;
use api::market_archive::MarketArchive;
use archive::ArchiveWriter;
use dispatch::{dispatch, Dispatcher};
use feeds::MarketFeed;
use orderbook::MarketSpec;
use pair::{PairSetup, PairTask};
use status::{StatusBoard, STATUS_CHANNEL};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Channel ids below this are the node-wide `status` channel
/// ([`status::STATUS_CHANNEL`]); the market channels start here.
const FIRST_MARKET_CHANNEL: ChannelId = 16;
/// Upstream events a pair task may have queued before the dispatcher waits
/// (and the venue, seeing us lag, resyncs us with a snapshot).
const PAIR_EVENT_BUFFER: usize = 8192;

/// How the book cache treats its upstream.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamOptions {
    /// Subscribe again when the market stream ends (a remote venue that
    /// reconnected with a new epoch); off for finite feeds (replays).
    pub resubscribe: bool,
    /// A pair with no upstream message for this long is stale.
    pub stale_after: Option<Duration>,
    /// Resubscribe backoff, doubling from min to max (jittered).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// One upstream of the book cache: a venue's feed and the pairs served
/// from it. With several (docs/ARCHITECTURE.md, "Several venues") each
/// keeps its own epoch, resubscribes on its own and goes stale alone.
pub struct Upstream {
    /// The venue's name, in logs and readiness problems.
    pub name: String,
    pub feed: Arc<dyn MarketFeed>,
    /// The pairs served from this feed; empty: every pair it lists.
    pub pairs: Vec<String>,
    pub options: UpstreamOptions,
}

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
    stale: Arc<AtomicBool>,
}

/// A resolved market channel: its channel id and the task that serves it.
#[derive(Debug, Clone)]
pub struct MarketChannel {
    pub id: ChannelId,
    served_by: ServedBy,
}

/// The task that serves a market channel.
#[derive(Debug, Clone)]
enum ServedBy {
    /// The pair's task (a topic of the pair).
    Pair(String),
    /// The status board (the `status` channel).
    Status,
}

/// Each upstream's epoch and the node's, made from them once per change
/// (heartbeats read it every second on every connection).
struct Epochs {
    per_upstream: Vec<Arc<str>>,
    node: Arc<str>,
}

impl Epochs {
    fn new(per_upstream: Vec<Arc<str>>) -> Epochs {
        let node = Arc::from(feeds::multi::combined_epoch(
            per_upstream.iter().map(|e| &**e),
        ));
        Epochs { per_upstream, node }
    }

    fn set(&mut self, index: usize, epoch: Arc<str>) {
        let mut per_upstream = std::mem::take(&mut self.per_upstream);
        per_upstream[index] = epoch;
        *self = Epochs::new(per_upstream);
    }
}

struct Inner {
    specs: Vec<MarketSpec>,
    pairs: HashMap<String, PairHandle>,
    /// Each upstream's epoch (its pairs' channels carry it; it changes
    /// when the upstream restarts its numbering), in upstream order.
    epochs: parking_lot::RwLock<Epochs>,
    /// The upstreams by name, for readiness.
    feeds: Vec<(String, Arc<dyn MarketFeed>)>,
    /// The market archive, when the hub has one (REST reads older than
    /// what the pair tasks keep in memory), until [`Markets::stop`].
    archive: parking_lot::RwLock<Option<Arc<dyn MarketArchive>>>,
    writer: Option<ArchiveWriter>,
    status: StatusBoard,
    /// Each upstream's dispatcher task, until [`Markets::stop`] triggers
    /// `stop_ingest` and waits for them.
    dispatchers: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop_ingest: Shutdown,
}

/// Handle to every pair's task. Cheap to clone.
#[derive(Clone)]
pub struct Markets {
    inner: Arc<Inner>,
}

impl Markets {
    /// Subscribes to every upstream and starts one task per pair plus, per
    /// upstream, the dispatcher that routes its events to them; returns
    /// once every pair is rebuilt from `archive` (candles, 24 h figures,
    /// recent trades). A pair served by two upstreams, or one its upstream
    /// does not list, is refused.
    pub async fn start(
        upstreams: Vec<Upstream>,
        history: HistoryLimits,
        pool: ShardPool,
        archive: Option<Arc<dyn MarketArchive>>,
    ) -> anyhow::Result<Markets> {
        let writer = archive.clone().map(ArchiveWriter::start);
        let mut served = Vec::new();
        for up in upstreams {
            let stream = up.feed.subscribe().await?;
            let listed = up.feed.markets();
            let specs: Vec<MarketSpec> = if up.pairs.is_empty() {
                listed.clone()
            } else {
                let mut specs = Vec::new();
                for pair in &up.pairs {
                    match listed.iter().find(|s| &s.symbol == pair) {
                        Some(spec) => specs.push(spec.clone()),
                        None => anyhow::bail!("venue {} does not list {pair}", up.name),
                    }
                }
                specs
            };
            served.push((up, stream, listed, specs));
        }
        let all: Vec<&MarketSpec> = served.iter().flat_map(|s| &s.3).collect();
        let symbols: Vec<String> = all.iter().map(|s| s.symbol.clone()).collect();
        if let Some(twice) = symbols
            .iter()
            .enumerate()
            .find(|(i, s)| symbols[..*i].contains(s))
        {
            anyhow::bail!("{} is served by two venues", twice.1);
        }
        let (status, reporters) = StatusBoard::start(&symbols, history, pool.clone());
        let mut reporters = reporters.into_iter();
        let mut pairs = HashMap::new();
        let mut restoring = Vec::new();
        let mut dispatchers = Vec::new();
        let mut n = 0;
        for (up, stream, listed, specs) in &served {
            let epoch: Arc<str> = Arc::from(stream.epoch.as_str());
            // Pairs the venue lists but another serves (or none): dropped.
            let mut routes: HashMap<String, Option<mpsc::Sender<PairInput>>> =
                listed.iter().map(|s| (s.symbol.clone(), None)).collect();
            for spec in specs {
                let first_channel = FIRST_MARKET_CHANNEL + (n * pair_topics().len()) as ChannelId;
                n += 1;
                let (event_tx, event_rx) = mpsc::channel(PAIR_EVENT_BUFFER);
                let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                let warm = Arc::new(AtomicBool::new(false));
                let stale = Arc::new(AtomicBool::new(false));
                let setup = PairSetup {
                    spec: spec.clone(),
                    epoch: epoch.to_string(),
                    first_channel,
                    history_messages: history.max_messages,
                    history_age: history.max_age,
                    pool: pool.clone(),
                    warm: warm.clone(),
                    stale: stale.clone(),
                    stale_after: up.options.stale_after,
                    archive: archive.clone().zip(writer.clone()),
                    restored: {
                        let (tx, rx) = oneshot::channel();
                        restoring.push(rx);
                        tx
                    },
                    status: reporters.next().expect("a reporter per pair"),
                };
                tokio::spawn(PairTask::run(setup, event_rx, cmd_rx));
                routes.insert(spec.symbol.clone(), Some(event_tx));
                pairs.insert(
                    spec.symbol.clone(),
                    PairHandle {
                        first_channel,
                        commands: cmd_tx,
                        warm,
                        stale,
                    },
                );
            }
            dispatchers.push((routes, epoch));
        }
        // Every pair is rebuilt from the archive before the hub serves.
        for rx in restoring {
            let _ = rx.await;
        }
        let specs = all.into_iter().cloned().collect();
        let markets = Markets {
            inner: Arc::new(Inner {
                specs,
                pairs,
                epochs: parking_lot::RwLock::new(Epochs::new(
                    dispatchers.iter().map(|d| d.1.clone()).collect(),
                )),
                feeds: served
                    .iter()
                    .map(|(up, ..)| (up.name.clone(), up.feed.clone()))
                    .collect(),
                archive: parking_lot::RwLock::new(archive),
                writer,
                status,
                dispatchers: parking_lot::Mutex::new(Vec::new()),
                stop_ingest: Shutdown::new(),
            }),
        };
        for (index, ((up, stream, ..), (routes, _))) in
            served.into_iter().zip(dispatchers).enumerate()
        {
            let resubscribe = up.options.resubscribe.then_some(up.feed);
            let task = tokio::spawn(dispatch(
                Dispatcher {
                    name: up.name,
                    index,
                    routes,
                    markets: markets.clone(),
                    resubscribe,
                    options: up.options,
                    stop: markets.inner.stop_ingest.clone(),
                },
                stream,
            ));
            markets.inner.dispatchers.lock().push(task);
        }
        Ok(markets)
    }

    pub fn specs(&self) -> &[MarketSpec] {
        &self.inner.specs
    }

    /// The node's epoch (heartbeats, private channels): the upstreams'
    /// epochs joined with `.` (one upstream: its own, the epoch of every
    /// market channel).
    pub fn epoch(&self) -> Arc<str> {
        self.inner.epochs.read().node.clone()
    }

    /// The pair task and channel id of a market channel, `None` for an
    /// unknown pair or a non-market channel.
    pub fn resolve(&self, channel: &Channel) -> Option<MarketChannel> {
        if channel.kind == ChannelKind::Status {
            return Some(MarketChannel {
                id: STATUS_CHANNEL,
                served_by: ServedBy::Status,
            });
        }
        let ChannelKind::Topic(kind) = channel.kind else {
            return None;
        };
        let pair = channel.pair.as_ref()?;
        let handle = self.inner.pairs.get(pair)?;
        let i = topic_index(kind, channel.cadence)?;
        Some(MarketChannel {
            id: handle.first_channel + i as ChannelId,
            served_by: ServedBy::Pair(pair.clone()),
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
        let pair = match &channel.served_by {
            ServedBy::Status => return self.inner.status.subscribe(subscriber, resume),
            ServedBy::Pair(pair) => pair,
        };
        let (reply, rx) = oneshot::channel();
        if let Some(h) = self.inner.pairs.get(pair) {
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
        let pair = match &channel.served_by {
            ServedBy::Status => return self.inner.status.unsubscribe(conn_id),
            ServedBy::Pair(pair) => pair,
        };
        if let Some(h) = self.inner.pairs.get(pair) {
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

    /// The market archive, when the hub has one.
    pub fn archive(&self) -> Option<Arc<dyn MarketArchive>> {
        self.inner.archive.read().clone()
    }

    /// Shutdown, once no client is served: stops reading every upstream
    /// (each dispatcher routes the event in hand, then drops its stream),
    /// has every pair task apply what was routed to it and hand nothing
    /// more to the archive writer, then writes what the writer holds,
    /// stops it and lets go of the archive (an embedded one is closed once
    /// the last request using it ends). So every trade the hub read is
    /// archived (unless the writer's queue was full). Waits at most
    /// `within` for each of the three steps; dispatchers still routing
    /// then are aborted.
    pub async fn stop(&self, within: Duration) {
        self.inner.stop_ingest.trigger();
        let mut dispatchers = std::mem::take(&mut *self.inner.dispatchers.lock());
        let joined = async {
            for task in &mut dispatchers {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(within, joined).await.is_err() {
            // A dispatcher still routing (its pair's queue full past the
            // drain time): the event in its hand is dropped, not applied.
            tracing::warn!("market ingestion did not stop in time: dispatchers aborted");
            for task in &dispatchers {
                task.abort();
            }
            for task in dispatchers {
                let _ = task.await;
            }
        }
        let stopped = async {
            let mut replies = Vec::new();
            for h in self.inner.pairs.values() {
                let (reply, rx) = oneshot::channel();
                if h.commands.send(PairCommand::StopIngest { reply }).is_ok() {
                    replies.push(rx);
                }
            }
            for rx in replies {
                let _ = rx.await;
            }
        };
        if tokio::time::timeout(within, stopped).await.is_err() {
            tracing::warn!("pair tasks did not stop their hand-offs to the market archive in time");
        }
        if let Some(w) = &self.inner.writer {
            w.close(within).await;
        }
        self.inner.archive.write().take();
    }

    /// Asks `pair`'s task; `None` for an unknown pair (or a task gone).
    pub async fn ask<T>(
        &self,
        pair: &str,
        command: impl FnOnce(oneshot::Sender<T>) -> PairCommand,
    ) -> Option<T> {
        let h = self.inner.pairs.get(pair)?;
        let (reply, rx) = oneshot::channel();
        h.commands.send(command(reply)).ok()?;
        rx.await.ok()
    }

    /// Why an upstream feed cannot be relied on now (e.g. reconnecting),
    /// if one cannot: the first one's problem, named when there are
    /// several.
    pub fn upstream_problem(&self) -> Option<String> {
        let several = self.inner.feeds.len() > 1;
        self.inner.feeds.iter().find_map(|(name, feed)| {
            let problem = feed.problem()?;
            Some(if several {
                format!("venue {name}: {problem}")
            } else {
                problem
            })
        })
    }

    /// Every pair's market status on this node (docs/PROTOCOL.md,
    /// "Market status"), in the order of [`Markets::specs`].
    pub fn statuses(&self) -> Vec<PairStatus> {
        self.inner.status.table()
    }

    /// Pairs whose upstream has been silent past `stale_after`.
    pub fn stale_pairs(&self) -> Vec<String> {
        self.pairs_where(|h| h.stale.load(Ordering::Relaxed))
    }

    /// Pairs whose book is not loaded (no snapshot yet, or stream ended).
    pub fn cold_pairs(&self) -> Vec<String> {
        self.pairs_where(|h| !h.warm.load(Ordering::Relaxed))
    }

    /// The pairs whose handle satisfies `pred`, sorted.
    fn pairs_where(&self, pred: impl Fn(&PairHandle) -> bool) -> Vec<String> {
        let mut pairs: Vec<String> = self
            .inner
            .pairs
            .iter()
            .filter(|(_, h)| pred(h))
            .map(|(p, _)| p.clone())
            .collect();
        pairs.sort();
        pairs
    }
}
