//! The hand-off from the pair tasks to the market archive
//! (`api::market_archive`): a pair task never awaits the store; it hands
//! its trades and closed candles to one writer task over a bounded
//! channel. The writer batches what is queued and retries with backoff
//! while the archive is unavailable (`StoreError::Unavailable`); a batch
//! the archive refuses for another reason is dropped (a retry would fail
//! the same way). When the queue is full what does not fit is dropped;
//! every drop is counted (`nax_archive_dropped_total`) and logged: the
//! live channels never wait for the store. At shutdown the pair tasks
//! stop handing over before the writer is closed
//! ([`crate::market::Markets::stop`]), so nothing they applied is dropped.

use crate::metrics as m;
use api::market_archive::{ArchivedTrade, MarketArchive};
use api::store::StoreError;
use feeds::PublicTrade;
use orderbook::candle::{Candle, Interval};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

/// Items queued for the writer at most (a few MB).
const QUEUE: usize = 16_384;
/// Items written per batch at most.
const BATCH: usize = 512;
/// How long a batch gathers after its first item: one commit, and one
/// `fsync`, for every trade of that time instead of one each (the
/// archive's commits were 6 % of the hub's CPU at 1,500 orders/s;
/// docs/BENCHMARKS.md, "Orders: fewer commits"). Readers do not see the
/// lag: the pair task answers the newest [`crate::market::RECENT_TRADES`]
/// trades from memory.
const LINGER: Duration = Duration::from_millis(50);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

enum Item {
    Trades(Arc<str>, Vec<ArchivedTrade>),
    Candle(Arc<str>, Interval, Candle),
    /// Write everything queued before, answer, and stop (hub shutdown).
    Close(oneshot::Sender<()>),
}

/// The pair tasks' side of the writer. Cheap to clone.
#[derive(Clone)]
pub struct ArchiveWriter {
    tx: mpsc::Sender<Item>,
    /// Set after a drop until the next successful write (one log line
    /// per outage, not per item).
    dropping: Arc<AtomicBool>,
}

impl ArchiveWriter {
    /// Starts the writer task on `archive`.
    pub fn start(archive: Arc<dyn MarketArchive>) -> ArchiveWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropping = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(archive, rx, dropping.clone()));
        ArchiveWriter { tx, dropping }
    }

    /// Queues a batch of trades as `trades.PAIR` carried them.
    pub fn trades(&self, pair: &Arc<str>, epoch: &str, seq: u64, trades: &[PublicTrade]) {
        let items = trades
            .iter()
            .map(|t| ArchivedTrade {
                epoch: epoch.to_owned(),
                seq,
                trade: *t,
            })
            .collect();
        self.send(Item::Trades(pair.clone(), items));
    }

    /// Queues a closed candle.
    pub fn candle(&self, pair: &Arc<str>, interval: Interval, candle: Candle) {
        self.send(Item::Candle(pair.clone(), interval, candle));
    }

    /// Writes everything queued so far, then stops the writer (what is
    /// handed over later is dropped and counted). Waits at most `within`.
    pub async fn close(&self, within: Duration) {
        let (tx, rx) = oneshot::channel();
        let closed = async {
            self.tx.send(Item::Close(tx)).await.ok()?;
            rx.await.ok()
        };
        if tokio::time::timeout(within, closed).await.is_err() {
            tracing::warn!("market archive writer did not finish in time");
        }
    }

    /// Queues `item`; when it cannot be, drops it, counts it and says why
    /// once (until the next successful write): the queue is full, or the
    /// writer was closed (the hub is stopping; [`crate::market::Markets::stop`]
    /// stops the pair tasks' hand-offs first: only those that did not
    /// stop within the drain time hand over after it).
    fn send(&self, item: Item) {
        let (item, closed) = match self.tx.try_send(item) {
            Ok(()) => return,
            Err(TrySendError::Full(item)) => (item, false),
            Err(TrySendError::Closed(item)) => (item, true),
        };
        let n = match item {
            Item::Trades(_, t) => t.len() as u64,
            Item::Candle(..) => 1,
            Item::Close(_) => 0,
        };
        metrics::counter!(m::ARCHIVE_DROPPED_TOTAL).increment(n);
        if self.dropping.swap(true, Ordering::Relaxed) {
            return;
        }
        if closed {
            tracing::error!(
                "market archive writer closed: dropping trades and candles handed over after it"
            );
        } else {
            tracing::error!(
                "market archive queue full: dropping trades and candles until the archive catches up"
            );
        }
    }
}

async fn run(
    archive: Arc<dyn MarketArchive>,
    mut rx: mpsc::Receiver<Item>,
    dropping: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH && !batch.iter().any(|i| matches!(i, Item::Close(_))) {
            let room = BATCH - batch.len();
            let more = rx.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let mut trades: BTreeMap<Arc<str>, Vec<ArchivedTrade>> = BTreeMap::new();
        let mut candles: BTreeMap<(Arc<str>, Interval), Vec<Candle>> = BTreeMap::new();
        let mut close = None;
        for item in batch.drain(..) {
            match item {
                Item::Trades(pair, t) => trades.entry(pair).or_default().extend(t),
                Item::Candle(pair, i, c) => candles.entry((pair, i)).or_default().push(c),
                Item::Close(done) => close = Some(done),
            }
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            match write(&*archive, &trades, &candles).await {
                Ok(()) => break,
                Err(e @ StoreError::Unavailable(_)) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "market archive write failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    // Retrying would fail the same way: drop the batch.
                    let n = trades.values().map(Vec::len).sum::<usize>()
                        + candles.values().map(Vec::len).sum::<usize>();
                    metrics::counter!(m::ARCHIVE_DROPPED_TOTAL).increment(n as u64);
                    tracing::error!(error = %e, items = n, "market archive write refused: batch dropped");
                    break;
                }
            }
        }
        if dropping.swap(false, Ordering::Relaxed) {
            tracing::info!("market archive writes caught up");
        }
        if let Some(done) = close {
            // Let go of the archive before answering: the caller may open
            // the same file next.
            drop(archive);
            let _ = done.send(());
            return;
        }
    }
}

/// Writes one batch (idempotent: a retry rewrites the same items).
async fn write(
    archive: &dyn MarketArchive,
    trades: &BTreeMap<Arc<str>, Vec<ArchivedTrade>>,
    candles: &BTreeMap<(Arc<str>, Interval), Vec<Candle>>,
) -> api::store::StoreResult<()> {
    for (pair, t) in trades {
        archive.put_trades(pair, t).await?;
    }
    for ((pair, interval), c) in candles {
        archive.put_candles(pair, *interval, c).await?;
    }
    Ok(())
}
