//! The market archive boundary: the public trades the hub streamed on
//! `trades.PAIR` and the closed candles it built from them, kept so that
//! candles, the 24 h statistics and the public trade history survive a
//! restart (docs/ARCHITECTURE.md, "Market archive").
//!
//! Implementations: an embedded one (its own redb file in the data
//! directory, so a hub without the REST API has it too) and DynamoDB (table
//! `MarketArchive`, items expire by TTL). Both keep trades for
//! [`TRADE_TTL`] and each interval's closed candles for
//! [`CANDLE_TTL_INTERVALS`] intervals, counted from when the item was
//! written (the archive's [`Clock`]): the hub archives as it streams, so
//! for a live feed that is two days of venue time, and a replayed
//! recording's old venue timestamps do not expire its trades at once.
//! Expired items are never returned (both implementations filter on read)
//! and are deleted (the embedded one sweeps on every write, DynamoDB by
//! its TTL). Writes are idempotent: a trade is keyed by (pair,
//! [`TradeKey`]), a candle by (pair, interval, start), and writing the
//! same key again replaces the item (and restarts its TTL).
//!
//! [`open`] builds the implementation the configuration names.

pub mod dynamo;
pub mod embedded;

use crate::config::{ApiConfig, StoreKind};
use crate::store::StoreResult;
use anyhow::Context as _;
use async_trait::async_trait;
use feeds::PublicTrade;
use orderbook::candle::{Candle, Interval};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a trade is kept: long enough to rebuild every interval's open
/// candle (a 1 d candle holds at most a day of trades) and the rolling 24 h
/// statistics after a restart, and to page through two days of history.
pub const TRADE_TTL: Duration = Duration::from_secs(2 * 24 * 3600);

/// How many intervals a closed candle is kept: the 300 of a snapshot plus
/// room for REST paging (a 1 d candle: 1,000 days).
pub const CANDLE_TTL_INTERVALS: u64 = 1000;

/// A trade's position in its pair's history: venue time, then the venue's
/// trade id. Orders trades oldest to newest; as text (`"{venue_ts}-{id}"`)
/// it is the public trade history's page cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TradeKey {
    pub venue_ts: u64,
    pub trade_id: u64,
}

/// One public trade as the hub streamed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedTrade {
    /// The `epoch` of the `trades.PAIR` message that carried it.
    pub epoch: String,
    /// The `seq` of that message (one per batch of executions).
    pub seq: u64,
    pub trade: PublicTrade,
}

impl ArchivedTrade {
    /// Its position in its pair's history.
    pub fn key(&self) -> TradeKey {
        TradeKey {
            venue_ts: self.trade.venue_ts,
            trade_id: self.trade.trade_id,
        }
    }
}

/// The market archive (see the module doc).
#[async_trait]
pub trait MarketArchive: Send + Sync + 'static {
    /// Stores trades of `pair` (any order; idempotent per [`TradeKey`]).
    async fn put_trades(&self, pair: &str, trades: &[ArchivedTrade]) -> StoreResult<()>;

    /// Trades of `pair` newest first, strictly older than `before` when
    /// given, at most `limit`.
    async fn trades_before(
        &self,
        pair: &str,
        before: Option<TradeKey>,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>>;

    /// Trades of `pair` oldest first, strictly newer than `after`, at most
    /// `limit` (rebuilding candles: start from `TradeKey { venue_ts: from,
    /// trade_id: 0 }`).
    async fn trades_after(
        &self,
        pair: &str,
        after: TradeKey,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>>;

    /// Stores closed candles of `pair` (idempotent per interval and start).
    async fn put_candles(
        &self,
        pair: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> StoreResult<()>;

    /// Closed candles of `pair` with `from <= start < to`, oldest first;
    /// when more than `limit` match, the newest `limit` of them.
    async fn candles(
        &self,
        pair: &str,
        interval: Interval,
        from: u64,
        to: u64,
        limit: usize,
    ) -> StoreResult<Vec<Candle>>;

    /// Answers when the archive is reachable (readiness).
    async fn ping(&self) -> StoreResult<()>;
}

/// The archive's clock: seconds since the Unix epoch. Expiry is set and
/// checked with it; tests pass one they move forward.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// When a trade written at `now` (epoch seconds) expires: [`TRADE_TTL`]
/// later.
pub fn trade_expiry(now: u64) -> u64 {
    now.saturating_add(TRADE_TTL.as_secs())
}

/// When a candle of `interval` written at `now` (epoch seconds) expires:
/// [`CANDLE_TTL_INTERVALS`] intervals later.
pub fn candle_expiry(now: u64, interval: Interval) -> u64 {
    let interval_secs = interval.micros() / 1_000_000;
    now.saturating_add(CANDLE_TTL_INTERVALS.saturating_mul(interval_secs))
}

/// The archive `config` implies: DynamoDB (table `MarketArchive` under
/// `dynamodb_table_prefix`, created when `dynamodb_create_tables`) when
/// the API's store is DynamoDB, else the embedded one in `data_dir`
/// (`market.redb`, made whether or not the REST API runs).
pub async fn open(config: &ApiConfig, data_dir: &Path) -> anyhow::Result<Arc<dyn MarketArchive>> {
    Ok(match config.store {
        StoreKind::Embedded => Arc::new(
            embedded::EmbeddedArchive::open(data_dir)
                .with_context(|| format!("opening the market archive in {}", data_dir.display()))?,
        ),
        // Boxed: the hub's start-up future is close to the compiler's
        // recursion limit (hub/tests/races), and the SDK's futures nest deep.
        StoreKind::Dynamodb => Box::pin(open_dynamo(config)).await?,
    })
}

async fn open_dynamo(config: &ApiConfig) -> anyhow::Result<Arc<dyn MarketArchive>> {
    let dynamo_config = crate::store::dynamo::DynamoConfig::from_api(config);
    let archive = dynamo::DynamoArchive::new(&dynamo_config).await;
    if config.dynamodb_create_tables {
        archive
            .ensure_table()
            .await
            .context("creating the MarketArchive table")?;
    }
    Ok(Arc::new(archive))
}
