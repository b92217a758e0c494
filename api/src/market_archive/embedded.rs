//! [`EmbeddedArchive`]: the default [`MarketArchive`], its own [redb] file
//! (`market.redb`) in the data directory, apart from the API's
//! `store.redb`, so a hub serving a feed without the REST API keeps its
//! market history too.
//!
//! - Keys: a pair's trades are one key range, `pair\0{venue_ts:020}\0{trade_id:020}`
//!   (zero-padded, so string order is [`TradeKey`] order); a pair's
//!   candles of one interval likewise, `pair\0interval\0{start:020}`.
//!   Values are JSON: the item and its expiry (epoch seconds).
//! - Expiry: an `expiry` table indexes every item by
//!   `{expires_at:020}\0{table}\0{item key}`. Reads skip expired items;
//!   every write, in the same transaction, deletes up to
//!   [`SWEEP_PER_WRITE`] (at least twice what it writes) of the items that
//!   expired longest ago, so the file stays bounded while the hub
//!   streams; opening the file sweeps all of them.
//! - Durability: redb's default, every commit `fsync`ed before it returns.
//!   Calls run on the blocking pool.

use super::{
    candle_expiry, system_clock, trade_expiry, ArchivedTrade, Clock, MarketArchive, TradeKey,
};
use crate::store::{StoreError, StoreResult};
use async_trait::async_trait;
use orderbook::candle::{Candle, Interval};
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

const TRADES: TableDefinition<&str, &[u8]> = TableDefinition::new("trades");
const CANDLES: TableDefinition<&str, &[u8]> = TableDefinition::new("candles");
/// `{expires_at:020}\0{table tag}\0{item key}`: every item by expiry.
const EXPIRY: TableDefinition<&str, ()> = TableDefinition::new("expiry");

/// Expired items one write deletes at least (more when it writes more).
pub const SWEEP_PER_WRITE: usize = 256;
/// Expired items one transaction of the sweep at open deletes.
const SWEEP_AT_OPEN: usize = 10_000;

/// Which table an expiry entry points into.
#[derive(Clone, Copy)]
enum Kind {
    Trade,
    Candle,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Trade => "t",
            Kind::Candle => "c",
        }
    }

    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Kind::Trade => TRADES,
            Kind::Candle => CANDLES,
        }
    }
}

/// A stored value: the item and when it expires (epoch seconds).
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    expires_at: u64,
    item: T,
}

/// The expiry of a stored value, without decoding the item.
#[derive(Deserialize)]
struct ExpiryOnly {
    expires_at: u64,
}

/// The embedded market archive (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedArchive {
    db: Arc<Database>,
    clock: Clock,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn trade_key(pair: &str, key: TradeKey) -> String {
    format!("{pair}\0{:020}\0{:020}", key.venue_ts, key.trade_id)
}

fn candle_key(pair: &str, interval: Interval, start: u64) -> String {
    format!("{pair}\0{}\0{start:020}", interval.as_str())
}

/// The first key past every key starting with `prefix\0`.
fn past(prefix: &str) -> String {
    format!("{prefix}\u{1}")
}

fn expiry_key(expires_at: u64, kind: Kind, key: &str) -> String {
    format!("{expires_at:020}\0{}\0{key}", kind.tag())
}

impl EmbeddedArchive {
    /// File name inside the data directory.
    pub const FILE: &'static str = "market.redb";

    /// Opens (creating) `dir/market.redb` on the system clock; the
    /// directory ends at mode 0700 and the file at 0600
    /// ([`crate::owner_only`]). Deletes every expired item.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_clock(dir, system_clock())
    }

    /// [`open`](Self::open) with expiry set and checked on `clock`.
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<Self, StoreError> {
        let db = crate::store::embedded::open_owner_only(dir, Self::FILE)?;
        // Create every table so reads never meet a missing one.
        let tx = db.begin_write().map_err(unavailable)?;
        {
            tx.open_table(TRADES).map_err(unavailable)?;
            tx.open_table(CANDLES).map_err(unavailable)?;
            tx.open_table(EXPIRY).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        loop {
            let tx = db.begin_write().map_err(unavailable)?;
            let swept = sweep(&tx, clock(), SWEEP_AT_OPEN)?;
            tx.commit().map_err(unavailable)?;
            if swept < SWEEP_AT_OPEN {
                break;
            }
        }
        Ok(EmbeddedArchive {
            db: Arc::new(db),
            clock,
        })
    }

    /// How many trades and candles the file holds, expired or not (tests
    /// and operators check the sweep with it).
    pub async fn stored(&self) -> StoreResult<(u64, u64)> {
        self.blocking(|db, _| {
            use redb::ReadableTableMetadata as _;
            let tx = db.begin_read().map_err(unavailable)?;
            let trades = tx.open_table(TRADES).map_err(unavailable)?;
            let candles = tx.open_table(CANDLES).map_err(unavailable)?;
            Ok((
                trades.len().map_err(unavailable)?,
                candles.len().map_err(unavailable)?,
            ))
        })
        .await
    }

    /// Runs `f` with the database and the time now on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (db, now) = (self.db.clone(), (self.clock)());
        tokio::task::spawn_blocking(move || f(&db, now))
            .await
            .map_err(unavailable)?
    }

    /// Writes `items` (key, JSON value) of `kind`, expiring at
    /// `expires_at`, and sweeps, in one transaction.
    async fn put(
        &self,
        kind: Kind,
        items: Vec<(String, Vec<u8>)>,
        expires_at: u64,
    ) -> StoreResult<()> {
        self.blocking(move |db, now| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(kind.table()).map_err(unavailable)?;
                let mut expiry = tx.open_table(EXPIRY).map_err(unavailable)?;
                for (key, value) in &items {
                    let old = table
                        .insert(key.as_str(), value.as_slice())
                        .map_err(unavailable)?
                        .map(|old| serde_json::from_slice::<ExpiryOnly>(old.value()));
                    if let Some(old) = old {
                        let old = old.map_err(corrupt)?;
                        expiry
                            .remove(expiry_key(old.expires_at, kind, key).as_str())
                            .map_err(unavailable)?;
                    }
                    expiry
                        .insert(expiry_key(expires_at, kind, key).as_str(), ())
                        .map_err(unavailable)?;
                }
            }
            sweep(&tx, now, SWEEP_PER_WRITE.max(2 * items.len()))?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    /// Unexpired items of `kind` with keys in `range`, in key order or
    /// reversed, at most `limit`.
    async fn scan<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: Kind,
        range: (Bound<String>, Bound<String>),
        newest_first: bool,
        limit: usize,
    ) -> StoreResult<Vec<T>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.blocking(move |db, now| {
            let tx = db.begin_read().map_err(unavailable)?;
            let table = tx.open_table(kind.table()).map_err(unavailable)?;
            let bounds = (
                range.0.as_ref().map(String::as_str),
                range.1.as_ref().map(String::as_str),
            );
            let entries = table.range::<&str>(bounds).map_err(unavailable)?;
            let entries: Box<dyn Iterator<Item = _>> = if newest_first {
                Box::new(entries.rev())
            } else {
                Box::new(entries)
            };
            let mut found = Vec::new();
            for entry in entries {
                let (_, value) = entry.map_err(unavailable)?;
                let stored: Stored<T> = serde_json::from_slice(value.value()).map_err(corrupt)?;
                if stored.expires_at > now {
                    found.push(stored.item);
                    if found.len() == limit {
                        break;
                    }
                }
            }
            Ok(found)
        })
        .await
    }
}

/// Deletes up to `budget` items that expired by `now`, those that expired
/// longest ago first; returns how many.
fn sweep(tx: &WriteTransaction, now: u64, budget: usize) -> StoreResult<usize> {
    let mut expiry = tx.open_table(EXPIRY).map_err(unavailable)?;
    // Every key of an item expired by `now` sorts before this one.
    let upper = format!("{:020}", now.saturating_add(1));
    let due: Vec<String> = expiry
        .range::<&str>(..upper.as_str())
        .map_err(unavailable)?
        .take(budget)
        .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    for entry in &due {
        let mut parts = entry.splitn(3, '\0');
        let (_, tag, key) = (parts.next(), parts.next(), parts.next());
        let kind = match tag {
            Some("t") => Kind::Trade,
            Some("c") => Kind::Candle,
            _ => return Err(corrupt(format!("expiry entry {entry:?}"))),
        };
        let key = key.ok_or_else(|| corrupt(format!("expiry entry {entry:?}")))?;
        tx.open_table(kind.table())
            .map_err(unavailable)?
            .remove(key)
            .map_err(unavailable)?;
        expiry.remove(entry.as_str()).map_err(unavailable)?;
    }
    Ok(due.len())
}

fn encode<T: Serialize>(expires_at: u64, item: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(&Stored { expires_at, item }).map_err(corrupt)
}

#[async_trait]
impl MarketArchive for EmbeddedArchive {
    async fn put_trades(&self, pair: &str, trades: &[ArchivedTrade]) -> StoreResult<()> {
        let expires_at = trade_expiry((self.clock)());
        let items = trades
            .iter()
            .map(|t| Ok((trade_key(pair, t.key()), encode(expires_at, t)?)))
            .collect::<StoreResult<_>>()?;
        self.put(Kind::Trade, items, expires_at).await
    }

    async fn trades_before(
        &self,
        pair: &str,
        before: Option<TradeKey>,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>> {
        let upper = match before {
            Some(key) => trade_key(pair, key),
            None => past(pair),
        };
        let range = (Bound::Included(format!("{pair}\0")), Bound::Excluded(upper));
        self.scan(Kind::Trade, range, true, limit).await
    }

    async fn trades_after(
        &self,
        pair: &str,
        after: TradeKey,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>> {
        let range = (
            Bound::Excluded(trade_key(pair, after)),
            Bound::Excluded(past(pair)),
        );
        self.scan(Kind::Trade, range, false, limit).await
    }

    async fn put_candles(
        &self,
        pair: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> StoreResult<()> {
        let expires_at = candle_expiry((self.clock)(), interval);
        let items = candles
            .iter()
            .map(|c| Ok((candle_key(pair, interval, c.start), encode(expires_at, c)?)))
            .collect::<StoreResult<_>>()?;
        self.put(Kind::Candle, items, expires_at).await
    }

    async fn candles(
        &self,
        pair: &str,
        interval: Interval,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<Vec<Candle>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let range = (
            Bound::Included(candle_key(pair, interval, from)),
            Bound::Excluded(candle_key(pair, interval, to)),
        );
        let mut newest: Vec<Candle> = self.scan(Kind::Candle, range, true, limit).await?;
        newest.reverse();
        Ok(newest)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db, _| db.begin_read().map(drop).map_err(unavailable))
            .await
    }
}
