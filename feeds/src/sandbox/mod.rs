//! The sandbox venue: our matching engine per pair, a simulated market of
//! makers and takers that never stops, and per-user balances, behind the
//! same [`Venue`] / [`MarketFeed`] boundaries as the production adapter.
//!
//! Locks: each pair has its own mutex; the ledger has one. A call takes a
//! pair's lock and then, only if users are involved, the ledger's; nothing
//! ever takes them the other way round, and no lock is held across an
//! `.await`.

mod ledger;
mod pair;
mod simulator;

pub use ledger::FIRST_USER_ACCOUNT;

use crate::event::{now_micros, MarketStream};
use crate::sandbox_pairs::{default_assets, default_pairs, PairConfig};
use crate::venue::{
    AssetSpec, Balance, MarketFeed, OrderReport, PlaceOrder, UserEvent, Venue, VenueError,
};
use async_trait::async_trait;
use ledger::{order_key, parse_order_key, AssetConversion, Ledger, UserOrder};
use orderbook::engine::{NewOrder, OrderId, OrderStatus, OrderType};
use orderbook::{L2Book, MarketSpec, Side};
use pair::PairState;
use parking_lot::Mutex;
use simulator::Simulator;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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
    async fn simulate(self, pair_index: usize, mut sim: Simulator, rate: f64) {
        let period = Duration::from_secs_f64((1.0 / rate).max(0.001));
        let per_tick = rate * period.as_secs_f64();
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.subscribe();
        let mut owed = 0.0;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            owed += per_tick;
            let mut pair = self.inner.pairs[pair_index].lock();
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

#[async_trait]
impl Venue for SandboxVenue {
    fn assets(&self) -> Vec<AssetSpec> {
        self.inner.assets.clone()
    }

    async fn place_order(&self, req: PlaceOrder) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        let i = self.pair_index(&req.pair)?;
        let mut pair = self.inner.pairs[i].lock();
        let spec = pair.spec.clone();
        if req.qty < spec.min_qty {
            return Err(VenueError::InvalidOrder(format!(
                "qty below minimum {}",
                spec.format_qty(spec.min_qty)
            )));
        }
        let price = match (req.order_type, req.price) {
            (OrderType::Limit, Some(p)) if p.0 > 0 => Some(p),
            (OrderType::Limit, _) => {
                return Err(VenueError::InvalidOrder(
                    "limit order needs a positive price".into(),
                ))
            }
            (OrderType::Market, Some(_)) => {
                return Err(VenueError::InvalidOrder(
                    "market order takes no price".into(),
                ))
            }
            (OrderType::Market, None) => None,
        };
        if req.order_type == OrderType::Market && req.post_only {
            return Err(VenueError::InvalidOrder(
                "market order cannot be post-only".into(),
            ));
        }
        let now = now_micros();
        let id = self.next_order_id();
        let mut ledger = self.inner.ledger.lock();
        let account = ledger.account_of(&req.user);
        // Lock what the order can spend at most.
        let (locked_asset, locked) = match (req.side, price) {
            (Side::Sell, _) => (spec.base.clone(), pair.conversion.base_amount(req.qty)?),
            (Side::Buy, Some(p)) => (
                spec.quote.clone(),
                pair.conversion.quote_amount(p, req.qty)?,
            ),
            (Side::Buy, None) => {
                let est = pair
                    .engine
                    .estimate_fill(Side::Buy, req.qty, None, Some(account));
                (
                    spec.quote.clone(),
                    pair.conversion.notional_amount(est.notional_raw)?,
                )
            }
        };
        ledger.lock(&req.user, &locked_asset, locked, now)?;
        let report = OrderReport {
            order_id: order_key(id),
            client_id: req.client_id.clone(),
            user: req.user.clone(),
            pair: spec.symbol.clone(),
            side: req.side,
            order_type: req.order_type,
            price,
            qty: req.qty,
            filled_qty: orderbook::Qty::ZERO,
            filled_notional_raw: 0,
            status: OrderStatus::Open,
            reason: None,
            time_in_force: req.time_in_force,
            post_only: req.post_only,
            created_ts: now,
            updated_ts: now,
        };
        ledger.orders.insert(
            report.order_id.clone(),
            UserOrder {
                report,
                locked_asset,
                locked,
            },
        );
        ledger
            .orders_by_user
            .entry(req.user.clone())
            .or_default()
            .push(order_key(id));
        pair.submit(
            NewOrder {
                id,
                account,
                side: req.side,
                order_type: req.order_type,
                price,
                qty: req.qty,
                time_in_force: req.time_in_force,
                post_only: req.post_only,
            },
            now,
        );
        ledger.settle(&pair.spec, &pair.conversion, &pair.events, now);
        self.flush_user_events(&mut ledger);
        Ok(ledger.orders[&order_key(id)].report.clone())
    }

    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        let (pair_name, status) = {
            let ledger = self.inner.ledger.lock();
            match ledger.orders.get(order_id) {
                Some(o) if o.report.user == user => (o.report.pair.clone(), o.report.status),
                _ => return Err(VenueError::OrderNotFound),
            }
        };
        if status.is_final() {
            return Err(VenueError::OrderNotOpen);
        }
        let id = parse_order_key(order_id).ok_or(VenueError::OrderNotFound)?;
        let mut pair = self.inner.pairs[self.pair_index(&pair_name)?].lock();
        let now = now_micros();
        // The order may have filled between the check above and this lock.
        pair.cancel(id, now).map_err(|_| VenueError::OrderNotOpen)?;
        let mut ledger = self.inner.ledger.lock();
        ledger.settle(&pair.spec, &pair.conversion, &pair.events, now);
        self.flush_user_events(&mut ledger);
        Ok(ledger.orders[order_id].report.clone())
    }

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        self.injected_latency().await;
        match self.inner.ledger.lock().orders.get(order_id) {
            Some(o) if o.report.user == user => Ok(o.report.clone()),
            _ => Err(VenueError::OrderNotFound),
        }
    }

    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError> {
        self.injected_latency().await;
        let ledger = self.inner.ledger.lock();
        let ids = ledger
            .orders_by_user
            .get(user)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Ok(ids
            .iter()
            .rev()
            .map(|id| ledger.orders[id].report.clone())
            .collect())
    }

    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        self.injected_latency().await;
        let ledger = self.inner.ledger.lock();
        Ok(self
            .inner
            .assets
            .iter()
            .map(|a| (a.symbol.clone(), ledger.balance(user, &a.symbol)))
            .collect())
    }

    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.injected_latency().await;
        self.ledger_op(|l, now| l.credit(user, asset, positive(amount)?, now))
    }

    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        self.injected_latency().await;
        self.ledger_op(|l, now| l.debit(user, asset, positive(amount)?, now))
    }

    async fn user_events(&self) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.user_subscribers.lock().push(tx);
        Ok(rx)
    }
}

impl SandboxVenue {
    fn ledger_op(
        &self,
        op: impl FnOnce(&mut Ledger, u64) -> Result<Balance, VenueError>,
    ) -> Result<Balance, VenueError> {
        let mut ledger = self.inner.ledger.lock();
        let result = op(&mut ledger, now_micros());
        self.flush_user_events(&mut ledger);
        result
    }
}

fn positive(amount: u64) -> Result<u64, VenueError> {
    if amount == 0 {
        return Err(VenueError::InvalidAmount("amount must be positive".into()));
    }
    Ok(amount)
}
