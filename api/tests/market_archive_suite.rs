//! The market archive contract (`api::market_archive::MarketArchive`), as
//! a suite of functions over `&dyn MarketArchive` in
//! `market_archive_suite/`, run against `EmbeddedArchive` in a temporary
//! directory and against `DynamoArchive` on the shared `moto_server`
//! (`NAX_TEST_MOTO_PORT`; the DynamoDB tests fail loudly without it).
//! Each archive runs on a [`TestClock`] the TTL cases move forward, so no
//! test waits for days. Cases use pairs of their own, so they also run
//! one after another on one archive.

/// The cases, in `market_archive_suite/`.
pub mod candles;
pub mod expiry;
pub mod fixtures;
pub mod trades;

use api::market_archive::dynamo::DynamoArchive;
use api::market_archive::embedded::EmbeddedArchive;
use api::market_archive::MarketArchive;
use api::store::dynamo::DynamoConfig;
use fixtures::{candles as some_candles, trades as some_trades, TestClock};
use orderbook::candle::Interval;

/// A DynamoDB archive on a table of its own (a random prefix) on the
/// shared moto, created.
async fn moto_archive(clock: &TestClock) -> DynamoArchive {
    let config = DynamoConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        table_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..DynamoConfig::default()
    };
    let archive = DynamoArchive::new(&config).await.with_clock(clock.clock());
    archive
        .ensure_table()
        .await
        .expect("create the table on moto");
    archive
}

/// Every case of the contract, each once per implementation, and all of
/// them on one archive of each kind.
macro_rules! contract_cases {
    ($($case:path => $name:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let clock = TestClock::new();
                    let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("open");
                    $case(&archive, &clock).await;
                }
            )*

            #[tokio::test]
            async fn all_cases_share_one_archive() {
                let dir = tempfile::tempdir().expect("temp dir");
                let clock = TestClock::new();
                let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("open");
                let archive: &dyn MarketArchive = &archive;
                $($case(archive, &clock).await;)*
            }
        }

        mod dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let clock = TestClock::new();
                    let archive = moto_archive(&clock).await;
                    $case(&archive, &clock).await;
                }
            )*

            #[tokio::test]
            async fn all_cases_share_one_archive() {
                let clock = TestClock::new();
                let archive = moto_archive(&clock).await;
                let archive: &dyn MarketArchive = &archive;
                $($case(archive, &clock).await;)*
            }
        }
    };
}

contract_cases! {
    trades::trades_page_newest_first_through_before => trades_page_newest_first_through_before,
    trades::trades_after_pages_oldest_first => trades_after_pages_oldest_first,
    trades::a_trade_is_stored_once_per_key_and_the_last_write_wins => a_trade_is_stored_once_per_key_and_the_last_write_wins,
    trades::pairs_do_not_see_each_others_trades => pairs_do_not_see_each_others_trades,
    candles::candles_in_a_range_newest_limit_oldest_first => candles_in_a_range_newest_limit_oldest_first,
    candles::writing_candles_again_replaces_them => writing_candles_again_replaces_them,
    candles::intervals_and_pairs_do_not_mix => intervals_and_pairs_do_not_mix,
    expiry::trades_expire_after_their_ttl => trades_expire_after_their_ttl,
    expiry::candles_expire_after_their_intervals => candles_expire_after_their_intervals,
}

/// What was written is there after the file is closed and opened again.
#[tokio::test]
async fn embedded_archive_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = TestClock::new();
    let (written, m1) = (some_trades(12), some_candles(Interval::M1, 6));
    {
        let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("open");
        archive
            .put_trades("BTC-USD", &written)
            .await
            .expect("put trades");
        archive
            .put_candles("BTC-USD", Interval::M1, &m1)
            .await
            .expect("put candles");
    }
    let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("reopen");
    let mut newest = written.clone();
    newest.reverse();
    assert_eq!(
        archive
            .trades_before("BTC-USD", None, 100)
            .await
            .expect("trades"),
        newest
    );
    assert_eq!(
        archive
            .candles("BTC-USD", Interval::M1, 0, u64::MAX, 100)
            .await
            .expect("candles"),
        m1
    );
    assert!(
        dir.path().join(EmbeddedArchive::FILE).is_file(),
        "market.redb"
    );
}

/// Expired items are deleted from the file, not only hidden: by the next
/// write, and by opening the file.
#[tokio::test]
async fn embedded_archive_deletes_expired_items() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = TestClock::new();
    let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("open");
    archive
        .put_trades("BTC-USD", &some_trades(300))
        .await
        .expect("put trades");
    archive
        .put_candles("BTC-USD", Interval::M1, &some_candles(Interval::M1, 20))
        .await
        .expect("put 1m");
    archive
        .put_candles("BTC-USD", Interval::D1, &some_candles(Interval::D1, 3))
        .await
        .expect("put 1d");
    assert_eq!(archive.stored().await.expect("count"), (300, 23));

    clock.advance(api::market_archive::TRADE_TTL.as_secs());
    // One write sweeps at least 256 expired items, the longest expired
    // first: the 20 1m candles, then 236 trades.
    archive
        .put_trades("ETH-USD", &some_trades(1))
        .await
        .expect("put");
    assert_eq!(archive.stored().await.expect("count"), (300 - 236 + 1, 3));
    drop(archive);

    let archive = EmbeddedArchive::open_with_clock(dir.path(), clock.clock()).expect("reopen");
    assert_eq!(
        archive.stored().await.expect("count"),
        (1, 3),
        "opening sweeps the rest"
    );
}

/// The item as DynamoDB holds it: the series and position keys, a Number
/// `expires_at` (what DynamoDB's TTL reads) and the TTL on the table.
#[tokio::test]
async fn dynamodb_items_carry_a_numeric_expires_at() {
    use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
    let clock = TestClock::new();
    let archive = moto_archive(&clock).await;
    let trade = some_trades(1);
    archive.put_trades("BTC-USD", &trade).await.expect("put");
    let position = format!(
        "{:020}#{:020}",
        trade[0].trade.venue_ts, trade[0].trade.trade_id
    );
    let item = archive
        .client()
        .get_item()
        .table_name(archive.table())
        .key("series", AttributeValue::S("BTC-USD#trades".into()))
        .key("position", AttributeValue::S(position))
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the item");
    let expected = api::market_archive::trade_expiry(clock.clock()());
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(expected.to_string()))
    );
    let ttl = archive
        .client()
        .describe_time_to_live()
        .table_name(archive.table())
        .send()
        .await
        .expect("DescribeTimeToLive");
    let ttl = ttl.time_to_live_description().expect("a description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    archive.ping().await.expect("ping");
}

/// Without its table (or DynamoDB), calls fail as `Unavailable`.
#[tokio::test]
async fn dynamodb_missing_table_is_unavailable() {
    use api::store::StoreError;
    let config = DynamoConfig {
        endpoint: Some(testkit::shared_moto_endpoint()),
        table_prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..DynamoConfig::default()
    };
    let archive = DynamoArchive::new(&config).await;
    let ping = archive.ping().await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
    let put = archive.put_trades("BTC-USD", &some_trades(3)).await;
    assert!(matches!(put, Err(StoreError::Unavailable(_))), "{put:?}");
    let read = archive.trades_before("BTC-USD", None, 3).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
}

/// `open` builds the embedded archive by default and DynamoDB's when the
/// API's store is DynamoDB (creating its table when told to).
#[tokio::test]
async fn open_follows_the_store_configuration() {
    use api::config::StoreKind;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = api::ApiConfig::default();
    let archive = api::market_archive::open(&config, dir.path())
        .await
        .expect("embedded");
    archive
        .put_trades("BTC-USD", &some_trades(2))
        .await
        .expect("put");
    assert!(dir.path().join(EmbeddedArchive::FILE).is_file());
    assert!(
        !dir.path().join("store.redb").exists(),
        "not the API's store"
    );

    config.store = StoreKind::Dynamodb;
    config.dynamodb_endpoint = testkit::shared_moto_endpoint();
    config.dynamodb_table_prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    config.dynamodb_create_tables = true;
    config.aws_access_key_id = "test".into();
    config.aws_secret_access_key = Some(api::secret::Secret::new("test"));
    let other = tempfile::tempdir().expect("temp dir");
    let archive = api::market_archive::open(&config, other.path())
        .await
        .expect("dynamodb");
    archive.ping().await.expect("the table was created");
    archive
        .put_trades("BTC-USD", &some_trades(2))
        .await
        .expect("put");
    assert_eq!(
        archive
            .trades_before("BTC-USD", None, 10)
            .await
            .expect("read")
            .len(),
        2
    );
    assert!(
        !other.path().join(EmbeddedArchive::FILE).exists(),
        "no embedded file"
    );
}
