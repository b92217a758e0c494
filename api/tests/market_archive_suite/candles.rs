//! Candles: `from <= start < to`, the newest `limit` of more, writes
//! idempotent, intervals and pairs apart.

use super::fixtures::{candle, candles, unique_pair, TestClock, T0_US};
use api::market_archive::MarketArchive;
use orderbook::candle::{Candle, Interval};

fn starts(candles: &[Candle]) -> Vec<u64> {
    candles.iter().map(|c| c.start).collect()
}

/// `from` inclusive, `to` exclusive, oldest first; when more match than
/// `limit`, the newest `limit` of them.
pub async fn candles_in_a_range_newest_limit_oldest_first(
    archive: &dyn MarketArchive,
    _: &TestClock,
) {
    let pair = unique_pair();
    let m1 = Interval::M1;
    let written = candles(m1, 40);
    archive.put_candles(&pair, m1, &written).await.expect("put");
    let at = |i: u64| T0_US + i * m1.micros();

    let all = archive
        .candles(&pair, m1, 0, u64::MAX, 1000)
        .await
        .expect("all");
    assert_eq!(all, written, "every candle, oldest first, as written");
    let some = archive
        .candles(&pair, m1, at(5), at(15), 1000)
        .await
        .expect("5..15");
    assert_eq!(some, written[5..15].to_vec());
    let newest = archive
        .candles(&pair, m1, at(5), at(15), 4)
        .await
        .expect("limit 4");
    assert_eq!(
        newest,
        written[11..15].to_vec(),
        "the newest 4, oldest first"
    );
    // Bounds between candle starts.
    let inside = archive
        .candles(&pair, m1, at(5) + 1, at(8) + 1, 1000)
        .await
        .expect("off-grid");
    assert_eq!(starts(&inside), vec![at(6), at(7), at(8)]);
    for (from, to) in [(at(5), at(5)), (at(9), at(3))] {
        assert!(archive
            .candles(&pair, m1, from, to, 10)
            .await
            .expect("empty range")
            .is_empty());
    }
    assert!(archive
        .candles(&pair, m1, 0, u64::MAX, 0)
        .await
        .expect("limit 0")
        .is_empty());
}

/// Writing a candle again replaces it (the later figures win), once.
pub async fn writing_candles_again_replaces_them(archive: &dyn MarketArchive, _: &TestClock) {
    let pair = unique_pair();
    let h1 = Interval::H1;
    let written = candles(h1, 30);
    archive.put_candles(&pair, h1, &written).await.expect("put");
    archive
        .put_candles(&pair, h1, &written)
        .await
        .expect("put again");
    let mut changed = written[7];
    changed.add(orderbook::Price(1), orderbook::Qty(1));
    archive
        .put_candles(&pair, h1, &[written[7], changed])
        .await
        .expect("put twice in one batch");
    let all = archive
        .candles(&pair, h1, 0, u64::MAX, 1000)
        .await
        .expect("all");
    let mut expected = written.clone();
    expected[7] = changed;
    assert_eq!(all, expected);
}

/// One pair's 1m and 5m candles with the same starts, and another pair's
/// 1m candles, are three separate series.
pub async fn intervals_and_pairs_do_not_mix(archive: &dyn MarketArchive, _: &TestClock) {
    let (pair, other) = (unique_pair(), unique_pair());
    let m1: Vec<Candle> = candles(Interval::M1, 5);
    let m5: Vec<Candle> = m1.iter().map(|c| Candle { trades: 50, ..*c }).collect();
    let theirs = vec![candle(Interval::M1, 2)];
    archive
        .put_candles(&pair, Interval::M1, &m1)
        .await
        .expect("put 1m");
    archive
        .put_candles(&pair, Interval::M5, &m5)
        .await
        .expect("put 5m");
    archive
        .put_candles(&other, Interval::M1, &theirs)
        .await
        .expect("put other");
    let get = |p: String, i: Interval| async move {
        archive
            .candles(&p, i, 0, u64::MAX, 100)
            .await
            .expect("read")
    };
    assert_eq!(get(pair.clone(), Interval::M1).await, m1);
    assert_eq!(get(pair.clone(), Interval::M5).await, m5);
    assert_eq!(get(other.clone(), Interval::M1).await, theirs);
    assert!(get(pair.clone(), Interval::M15).await.is_empty());
    assert!(get(other, Interval::M5).await.is_empty());
}
