//! [`DynamoArchive`]: the production [`MarketArchive`], one DynamoDB table
//! `<prefix>MarketArchive` ([`TABLE`]; `infra/terraform/dynamodb.tf`).
//!
//! - Items: partition key `series` (`BTC-USD#trades`,
//!   `BTC-USD#candles#1m`), sort key `position` (trades
//!   `{venue_ts:020}#{trade_id:020}`, candles `{start:020}`: zero-padded,
//!   so string order is time order), `expires_at` (Number, epoch seconds:
//!   the table's TTL attribute) and the item's JSON in `doc`.
//! - Writes: `BatchWriteItem` in chunks of 25 (duplicates in one call
//!   collapse to the last), `UnprocessedItems` retried up to
//!   [`WRITE_ATTEMPTS`] times with doubling back-off, then
//!   [`StoreError::Unavailable`].
//! - Reads: `Query` on one series, strongly consistent, newest first
//!   (`ScanIndexForward=false`) or oldest first, paginated until `limit`
//!   items are found. DynamoDB's TTL deletes expired items lazily (within
//!   days), so every read filters `expires_at > now` as well.
//! - Errors as the store's ([`crate::store::dynamo`]): unreachable,
//!   throttled or missing table is `Unavailable`, a request DynamoDB
//!   refuses is `Corrupt`.

use super::{
    candle_expiry, system_clock, trade_expiry, ArchivedTrade, Clock, MarketArchive, TradeKey,
};
use crate::store::dynamo::{ensure_table, sdk_error, DynamoConfig, TableSpec};
use crate::store::{StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use orderbook::candle::{Candle, Interval};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The table, as Terraform declares it (a test compares the two).
pub const TABLE: TableSpec = TableSpec {
    name: "MarketArchive",
    hash_key: SERIES,
    range_key: Some(POSITION),
    indexes: &[],
    ttl: Some(EXPIRES_AT),
};

const SERIES: &str = "series";
const POSITION: &str = "position";
const EXPIRES_AT: &str = "expires_at";
const DOC: &str = "doc";

/// Items of one `BatchWriteItem` call (DynamoDB's limit).
pub const BATCH_ITEMS: usize = 25;
/// Calls of one batch before its unprocessed items are given up on.
pub const WRITE_ATTEMPTS: u32 = 6;
/// Back-off before the first retry of unprocessed items; doubles after.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Items one `Query` page reads at most.
const PAGE_ITEMS: usize = 1000;

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB market archive (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct DynamoArchive {
    client: Client,
    prefix: String,
    table: String,
    clock: Clock,
}

/// Which part of a series a query reads.
enum Positions {
    All,
    Below(String),
    Above(String),
    /// Inclusive on both ends.
    Between(String, String),
}

fn trades_series(pair: &str) -> String {
    format!("{pair}#trades")
}

fn candles_series(pair: &str, interval: Interval) -> String {
    format!("{pair}#candles#{}", interval.as_str())
}

fn trade_position(key: TradeKey) -> String {
    format!("{:020}#{:020}", key.venue_ts, key.trade_id)
}

fn candle_position(start: u64) -> String {
    format!("{start:020}")
}

impl DynamoArchive {
    /// The archive on `config`'s endpoint and table prefix, on the system
    /// clock; makes no call.
    pub async fn new(config: &DynamoConfig) -> DynamoArchive {
        DynamoArchive {
            client: config.client().await,
            prefix: config.table_prefix.clone(),
            table: format!("{}{}", config.table_prefix, TABLE.name),
            clock: system_clock(),
        }
    }

    /// The same archive with expiry set and checked on `clock` (tests).
    pub fn with_clock(mut self, clock: Clock) -> DynamoArchive {
        self.clock = clock;
        self
    }

    /// Creates the table when missing, with its TTL, and waits until it is
    /// active. Idempotent. For tests and local development; the
    /// production table comes from Terraform.
    pub async fn ensure_table(&self) -> StoreResult<()> {
        ensure_table(&self.client, &self.prefix, &TABLE).await
    }

    /// The table's full name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client (tests inspect the table with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The item of `doc` at `position` in `series`.
    fn item<T: Serialize>(
        series: &str,
        position: String,
        expires_at: u64,
        doc: &T,
    ) -> StoreResult<Item> {
        let json = serde_json::to_string(doc)
            .map_err(|e| StoreError::Corrupt(format!("encode archive item: {e}")))?;
        Ok(HashMap::from([
            (SERIES.to_owned(), AttributeValue::S(series.to_owned())),
            (POSITION.to_owned(), AttributeValue::S(position)),
            (
                EXPIRES_AT.to_owned(),
                AttributeValue::N(expires_at.to_string()),
            ),
            (DOC.to_owned(), AttributeValue::S(json)),
        ]))
    }

    /// Writes `items` (by position; a later one replaces an earlier one
    /// with the same key) in batches of [`BATCH_ITEMS`].
    async fn write(&self, items: BTreeMap<String, Item>) -> StoreResult<()> {
        let items: Vec<Item> = items.into_values().collect();
        for chunk in items.chunks(BATCH_ITEMS) {
            let requests = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(|e| StoreError::Corrupt(format!("put request: {e}")))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<StoreResult<Vec<_>>>()?;
            self.write_batch(requests).await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem`, its unprocessed items retried with back-off.
    async fn write_batch(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        let mut pending = HashMap::from([(self.table.clone(), requests)]);
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=WRITE_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| sdk_error("BatchWriteItem", &self.table, e))?;
            pending = out.unprocessed_items.unwrap_or_default();
            pending.retain(|_, requests| !requests.is_empty());
            if pending.is_empty() {
                return Ok(());
            }
            if attempt < WRITE_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        let left: usize = pending.values().map(Vec::len).sum();
        Err(StoreError::Unavailable(format!(
            "dynamodb BatchWriteItem on {}: {left} items unprocessed after {WRITE_ATTEMPTS} attempts",
            self.table
        )))
    }

    /// Unexpired items of `series` at `positions`, newest or oldest first,
    /// at most `limit`, decoded from `doc`.
    async fn query<T: DeserializeOwned>(
        &self,
        series: String,
        positions: Positions,
        newest_first: bool,
        limit: usize,
    ) -> StoreResult<Vec<T>> {
        let now = (self.clock)();
        let (condition, bounds) = match positions {
            Positions::All => ("#s = :s", vec![]),
            Positions::Below(p) => ("#s = :s AND #p < :a", vec![p]),
            Positions::Above(p) => ("#s = :s AND #p > :a", vec![p]),
            Positions::Between(a, b) => ("#s = :s AND #p BETWEEN :a AND :b", vec![a, b]),
        };
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .filter_expression("#e > :now")
                .expression_attribute_names("#s", SERIES)
                .expression_attribute_names("#e", EXPIRES_AT)
                .expression_attribute_values(":s", AttributeValue::S(series.clone()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .scan_index_forward(!newest_first)
                .consistent_read(true)
                .limit(i32::try_from((limit - found.len()).min(PAGE_ITEMS)).unwrap_or(1))
                .set_exclusive_start_key(start.take());
            if !bounds.is_empty() {
                request = request.expression_attribute_names("#p", POSITION);
            }
            for (name, value) in [":a", ":b"].into_iter().zip(&bounds) {
                request =
                    request.expression_attribute_values(name, AttributeValue::S(value.clone()));
            }
            let out = request
                .send()
                .await
                .map_err(|e| sdk_error("Query", &self.table, e))?;
            for item in out.items() {
                found.push(decode(item)?);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

fn decode<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let Some(AttributeValue::S(json)) = item.get(DOC) else {
        return Err(StoreError::Corrupt("archive item without doc".to_owned()));
    };
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("archive item: {e}")))
}

#[async_trait]
impl MarketArchive for DynamoArchive {
    async fn put_trades(&self, pair: &str, trades: &[ArchivedTrade]) -> StoreResult<()> {
        let (series, expires_at) = (trades_series(pair), trade_expiry((self.clock)()));
        let items = trades
            .iter()
            .map(|t| {
                let position = trade_position(t.key());
                let item = Self::item(&series, position.clone(), expires_at, t)?;
                Ok((position, item))
            })
            .collect::<StoreResult<_>>()?;
        self.write(items).await
    }

    async fn trades_before(
        &self,
        pair: &str,
        before: Option<TradeKey>,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>> {
        let positions = match before {
            Some(key) => Positions::Below(trade_position(key)),
            None => Positions::All,
        };
        self.query(trades_series(pair), positions, true, limit)
            .await
    }

    async fn trades_after(
        &self,
        pair: &str,
        after: TradeKey,
        limit: usize,
    ) -> StoreResult<Vec<ArchivedTrade>> {
        let positions = Positions::Above(trade_position(after));
        self.query(trades_series(pair), positions, false, limit)
            .await
    }

    async fn put_candles(
        &self,
        pair: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> StoreResult<()> {
        let series = candles_series(pair, interval);
        let expires_at = candle_expiry((self.clock)(), interval);
        let items = candles
            .iter()
            .map(|c| {
                let position = candle_position(c.start);
                let item = Self::item(&series, position.clone(), expires_at, c)?;
                Ok((position, item))
            })
            .collect::<StoreResult<_>>()?;
        self.write(items).await
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
        let positions = Positions::Between(candle_position(from), candle_position(to - 1));
        let series = candles_series(pair, interval);
        let mut newest: Vec<Candle> = self.query(series, positions, true, limit).await?;
        newest.reverse();
        Ok(newest)
    }

    /// `DescribeTable` on the archive's table.
    async fn ping(&self) -> StoreResult<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", &self.table, e))?;
        Ok(())
    }
}
