//! TTL: an item is returned until its TTL has passed on the archive's
//! clock, never after.

use super::fixtures::{candles, trades, unique_pair, TestClock};
use api::market_archive::{MarketArchive, TradeKey, CANDLE_TTL_INTERVALS, TRADE_TTL};
use orderbook::candle::Interval;

/// Trades are returned for [`TRADE_TTL`] after they were written; a trade
/// written again later lives on.
pub async fn trades_expire_after_their_ttl(archive: &dyn MarketArchive, clock: &TestClock) {
    let pair = unique_pair();
    let written = trades(10);
    archive.put_trades(&pair, &written).await.expect("put");
    clock.advance(TRADE_TTL.as_secs() / 2);
    archive
        .put_trades(&pair, &written[..2])
        .await
        .expect("put 1 and 2 again");
    clock.advance(TRADE_TTL.as_secs() / 2 - 1);
    assert_eq!(
        archive
            .trades_before(&pair, None, 100)
            .await
            .expect("read")
            .len(),
        10,
        "one second before the TTL"
    );

    clock.advance(1);
    let left = archive.trades_before(&pair, None, 100).await.expect("read");
    let again_newest_first = vec![written[1].clone(), written[0].clone()];
    assert_eq!(left, again_newest_first, "only the ones written again");
    let from = TradeKey {
        venue_ts: 0,
        trade_id: 0,
    };
    let left = archive.trades_after(&pair, from, 100).await.expect("read");
    assert_eq!(left, written[..2].to_vec());

    clock.advance(TRADE_TTL.as_secs());
    assert!(archive
        .trades_before(&pair, None, 100)
        .await
        .expect("read")
        .is_empty());
    assert!(archive
        .trades_after(&pair, from, 100)
        .await
        .expect("read")
        .is_empty());
}

/// A candle is returned for [`CANDLE_TTL_INTERVALS`] of its interval: the
/// 1m candles go after 1,000 minutes, the 1h ones written with them stay.
pub async fn candles_expire_after_their_intervals(archive: &dyn MarketArchive, clock: &TestClock) {
    let pair = unique_pair();
    let (m1, h1) = (candles(Interval::M1, 5), candles(Interval::H1, 5));
    archive
        .put_candles(&pair, Interval::M1, &m1)
        .await
        .expect("put 1m");
    archive
        .put_candles(&pair, Interval::H1, &h1)
        .await
        .expect("put 1h");
    let read = |i: Interval| {
        let pair = pair.clone();
        async move {
            archive
                .candles(&pair, i, 0, u64::MAX, 100)
                .await
                .expect("read")
        }
    };
    clock.advance(CANDLE_TTL_INTERVALS * 60 - 1);
    assert_eq!(read(Interval::M1).await, m1, "one second before the TTL");
    clock.advance(1);
    assert!(read(Interval::M1).await.is_empty(), "1m candles expired");
    assert_eq!(read(Interval::H1).await, h1, "1h candles live 1,000 hours");
}
