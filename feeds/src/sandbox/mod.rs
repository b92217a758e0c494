//! The sandbox venue: our matching engine per pair, a simulated market of
//! makers and takers that never stops, and per-user balances, behind the
//! same [`Venue`](crate::venue::Venue) / [`MarketFeed`] boundaries as the production adapter.
//!
//! Locks: each pair has its own mutex; the ledger has one. A call takes a
//! pair's lock and then, only if users are involved, the ledger's; nothing
//! ever takes them the other way round, and no lock is held across an
//! `.await`.

mod ledger;
mod pair;
mod simulator;
mod user_ops;

pub use ledger::{FIRST_USER_ACCOUNT, KEEP_FINISHED};

use crate::event::{now_micros, MarketStream, TradingStatus};
use crate::sandbox_pairs::{default_assets, default_pairs, PairConfig};
use crate::venue::{AssetSpec, MarketFeed, UserEvent, VenueError};
use async_trait::async_trait;
use ledger::{AssetConversion, Ledger};
use orderbook::engine::OrderId;
use orderbook::{L2Book, MarketSpec};
use pair::PairState;
use parking_lot::Mutex;
use simulator::Simulator;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The most time past its period that one tick of
/// [`SandboxVenue::simulate`] makes up for.
const CATCH_UP: Duration = Duration::from_millis(100);

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub pairs: Vec<PairConfig>,
    pub assets: Vec<AssetSpec>,
    /// Simulated participant actions per second across all pairs (each
    /// usually one book change); 0 turns the simulation off.
    pub events_per_sec: u32,
    /// Seed of the simulation (each pair derives its own).
    pub seed: u64,
    /// Market events a subscriber may have queued before it is resynced.
    pub stream_capacity: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            pairs: default_pairs(),
            assets: default_assets(),
            events_per_sec: 400,
            seed: 0x5eed,
            stream_capacity: 65_536,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxConfigError {
    #[error("no pairs configured")]
    NoPairs,
    #[error("pair {0} configured twice")]
    DuplicatePair(String),
    #[error("pair {pair} trades unknown asset {asset}")]
    UnknownAsset { pair: String, asset: String },
    #[error("{0}")]
    ScaleMismatch(String),
}

struct Inner {
    epoch: String,
    specs: Vec<MarketSpec>,
    assets: Vec<AssetSpec>,
    pairs: Vec<Mutex<PairState>>,
    index: HashMap<String, usize>,
    ledger: Mutex<Ledger>,
    user_subscribers: Mutex<Vec<mpsc::UnboundedSender<UserEvent>>>,
    next_order_id: AtomicU64,
    stream_capacity: usize,
    /// Fault injection: every trading call waits this long first (ms).
    latency_ms: AtomicU64,
}

/// The in-process sandbox venue. Cheap to clone; the simulation runs on
/// tokio tasks until [`SandboxVenue::stop`].
#[derive(Clone)]
pub struct SandboxVenue {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl SandboxVenue {
    /// Builds the venue, seeds every book and starts the simulation (when
    /// `events_per_sec > 0`). Must be called inside a tokio runtime.
    pub fn start(config: SandboxConfig) -> Result<Self, SandboxConfigError> {
        let scales: HashMap<&str, u8> = config
            .assets
            .iter()
            .map(|a| (a.symbol.as_str(), a.scale))
            .collect();
        if config.pairs.is_empty() {
            return Err(SandboxConfigError::NoPairs);
        }
        let mut index = HashMap::new();
        let mut pairs = Vec::new();
        for (i, p) in config.pairs.iter().enumerate() {
            let spec = &p.spec;
            if index.insert(spec.symbol.clone(), i).is_some() {
                return Err(SandboxConfigError::DuplicatePair(spec.symbol.clone()));
            }
            let scale_of = |asset: &String| {
                scales.get(asset.as_str()).copied().ok_or_else(|| {
                    SandboxConfigError::UnknownAsset {
                        pair: spec.symbol.clone(),
                        asset: asset.clone(),
                    }
                })
            };
            let conversion =
                AssetConversion::new(spec, scale_of(&spec.base)?, scale_of(&spec.quote)?)
                    .map_err(SandboxConfigError::ScaleMismatch)?;
            pairs.push(Mutex::new(PairState::new(spec.clone(), conversion)));
        }
        let inner = Arc::new(Inner {
            epoch: format!("{:08x}", rand::random::<u32>()),
            specs: config.pairs.iter().map(|p| p.spec.clone()).collect(),
            assets: config.assets.clone(),
            pairs,
            index,
            ledger: Mutex::new(Ledger::new(&config.assets)),
            user_subscribers: Mutex::new(Vec::new()),
            // Ids start at the start time in microseconds, so a restarted
            // sandbox never hands out an id an earlier run used (a client
            // that kept an order id must not cancel someone else's order).
            next_order_id: AtomicU64::new(now_micros()),
            stream_capacity: config.stream_capacity.max(16),
            latency_ms: AtomicU64::new(0),
        });
        let (stop, _) = watch::channel(false);
        let venue = SandboxVenue {
            inner,
            stop,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let mut sims = Vec::new();
        for (i, p) in config.pairs.iter().enumerate() {
            let mut sim = Simulator::new(p, config.seed.wrapping_add(i as u64));
            let mut pair = venue.inner.pairs[i].lock();
            sim.seed_book(&mut pair, &mut || venue.next_order_id(), now_micros());
            sims.push(sim);
        }
        if config.events_per_sec > 0 {
            let per_pair = f64::from(config.events_per_sec) / config.pairs.len() as f64;
            let mut tasks = venue.tasks.lock();
            for (i, sim) in sims.into_iter().enumerate() {
                let run = venue.clone().simulate(i, sim, per_pair);
                tasks.push(tokio::spawn(run));
            }
        }
        Ok(venue)
    }

    /// Stops the simulation, waits for it, and ends every market stream.
    /// Fault injection for clients' resilience tests: from now on every
    /// trading call (orders, balances, credit/debit) waits `latency` before
    /// it runs, like a slow venue. `Duration::ZERO` restores normal speed.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.inner
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    async fn injected_latency(&self) {
        let ms = self.inner.latency_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        for p in &self.inner.pairs {
            p.lock().close_subscribers();
        }
    }

    /// Halts trading in `pair` (an operator's action): new orders for it
    /// are refused with `VenueError::MarketHalted` carrying `reason`,
    /// cancels still work, the simulated market stops, and every market
    /// stream gets a `Status` event. Halting again replaces the reason.
    pub fn halt(&self, pair: &str, reason: &str) -> Result<(), VenueError> {
        let i = self.pair_index(pair)?;
        let status = TradingStatus::Halted {
            reason: reason.to_string(),
        };
        self.inner.pairs[i].lock().set_status(status, now_micros());
        Ok(())
    }

    /// Resumes trading in `pair` (a no-op if it is not halted); market
    /// streams get a `Status` event.
    pub fn resume(&self, pair: &str) -> Result<(), VenueError> {
        let i = self.pair_index(pair)?;
        self.inner.pairs[i]
            .lock()
            .set_status(TradingStatus::Open, now_micros());
        Ok(())
    }

    /// Whether `pair` trades now (`None` for an unknown pair).
    pub fn trading_status(&self, pair: &str) -> Option<TradingStatus> {
        let i = *self.inner.index.get(pair)?;
        let status = self.inner.pairs[i].lock().status.clone();
        Some(status)
    }

    /// The venue's own book of `pair` and the seq of its last change.
    pub fn book(&self, pair: &str) -> Option<(u64, L2Book)> {
        let i = *self.inner.index.get(pair)?;
        let p = self.inner.pairs[i].lock();
        Some((p.seq, p.engine.book().clone()))
    }

    fn next_order_id(&self) -> OrderId {
        OrderId(self.inner.next_order_id.fetch_add(1, Ordering::Relaxed))
    }

    fn pair_index(&self, pair: &str) -> Result<usize, VenueError> {
        self.inner
            .index
            .get(pair)
            .copied()
            .ok_or_else(|| VenueError::UnknownPair(pair.to_string()))
    }

    /// Drives one pair's simulator at `rate` actions per second until stop.
    /// Each tick makes the actions owed for the time since the last one, so
    /// a tick that comes late (a runtime busy with fan-out) still keeps the
    /// rate, where counting ticks lost up to 40 % of it under load
    /// (docs/BENCHMARKS.md, "Capacity at saturation"); a tick later than
    /// [`CATCH_UP`] makes up only that much, not a burst of all it missed.
    async fn simulate(self, pair_index: usize, mut sim: Simulator, rate: f64) {
        let period = Duration::from_secs_f64((1.0 / rate).max(0.001));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.subscribe();
        let mut owed = 0.0;
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            let now = tokio::time::Instant::now();
            owed += rate
                * now
                    .duration_since(last)
                    .min(period + CATCH_UP)
                    .as_secs_f64();
            last = now;
            let mut pair = self.inner.pairs[pair_index].lock();
            if pair.status != TradingStatus::Open {
                // A halted market does not trade.
                owed = 0.0;
                continue;
            }
            while owed >= 1.0 {
                owed -= 1.0;
                sim.step(&mut pair, &mut || self.next_order_id(), now_micros());
                if Ledger::involves_users(&pair.events) {
                    self.settle(&pair);
                }
            }
        }
    }

    /// Settles user fills of the pair's last engine call and publishes the
    /// resulting user events. Called with the pair's lock held.
    fn settle(&self, pair: &PairState) {
        let mut ledger = self.inner.ledger.lock();
        ledger.settle(&pair.spec, &pair.conversion, &pair.events, now_micros());
        self.flush_user_events(&mut ledger);
    }

    fn flush_user_events(&self, ledger: &mut Ledger) {
        if ledger.pending_events.is_empty() {
            return;
        }
        let mut subs = self.inner.user_subscribers.lock();
        for event in ledger.pending_events.drain(..) {
            subs.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }
}

#[async_trait]
impl MarketFeed for SandboxVenue {
    fn markets(&self) -> Vec<MarketSpec> {
        self.inner.specs.clone()
    }

    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        let (tx, rx) = mpsc::channel(self.inner.stream_capacity);
        for p in &self.inner.pairs {
            p.lock().subscribe(tx.clone(), now_micros());
        }
        Ok(MarketStream {
            epoch: self.inner.epoch.clone(),
            events: rx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Market events the sandbox (400 actions a second over its pairs)
    /// makes in `total` of paused time, the clock moving in jumps of
    /// `step`: each jump is a tick that came late by that much.
    async fn events_in(step: Duration, total: Duration) -> usize {
        let venue = SandboxVenue::start(SandboxConfig {
            events_per_sec: 400,
            ..SandboxConfig::default()
        })
        .expect("sandbox");
        let mut stream = venue.subscribe().await.expect("stream");
        let (mut elapsed, mut events) = (Duration::ZERO, 0);
        while elapsed < total {
            tokio::time::advance(step).await;
            elapsed += step;
            // Always runnable, so the paused clock moves only by `step`.
            tokio::task::yield_now().await;
            while stream.events.try_recv().is_ok() {
                events += 1;
            }
        }
        venue.stop().await;
        events
    }

    /// Ticks 50 ms apart (a runtime busy with fan-out) make what ticks on
    /// time make: counted by ticks, they made a fifth of it.
    #[tokio::test(start_paused = true)]
    async fn late_ticks_keep_the_configured_rate() {
        let total = Duration::from_secs(2);
        let on_time = events_in(Duration::from_millis(2), total).await;
        let late = events_in(Duration::from_millis(50), total).await;
        assert!(
            late * 10 >= on_time * 8 && late * 10 <= on_time * 12,
            "late ticks made {late} events, ticks on time {on_time}"
        );
    }
}
