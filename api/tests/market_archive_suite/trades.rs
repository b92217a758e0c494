//! Trades: newest-first pages with `before`, oldest-first pages with
//! `after`, idempotent writes, pairs apart from each other.

use super::fixtures::{keys, trade, trades, unique_pair, TestClock, T0_US};
use api::market_archive::{ArchivedTrade, MarketArchive, TradeKey};

/// Every trade of `pair`, newest first, in pages of `page` through
/// `before`; asserts every page but the last is full.
async fn all_newest_first(
    archive: &dyn MarketArchive,
    pair: &str,
    page: usize,
) -> Vec<ArchivedTrade> {
    let mut found: Vec<ArchivedTrade> = Vec::new();
    loop {
        let before = found.last().map(ArchivedTrade::key);
        let got = archive
            .trades_before(pair, before, page)
            .await
            .expect("trades_before");
        assert!(got.len() <= page, "a page holds at most {page}");
        let last = got.len() < page;
        found.extend(got);
        if last {
            return found;
        }
    }
}

/// 60 trades written out of order in two calls (more than one DynamoDB
/// batch each) page back newest first, 7 at a time, without a duplicate
/// or a gap, ordered by venue time, then trade id.
pub async fn trades_page_newest_first_through_before(archive: &dyn MarketArchive, _: &TestClock) {
    let pair = unique_pair();
    let written = trades(60);
    let (mut odd, mut even): (Vec<_>, Vec<_>) = written
        .iter()
        .cloned()
        .partition(|t| !t.trade.trade_id.is_multiple_of(2));
    odd.reverse();
    archive.put_trades(&pair, &odd).await.expect("put odd");
    even.reverse();
    archive.put_trades(&pair, &even).await.expect("put even");

    let found = all_newest_first(archive, &pair, 7).await;
    let mut expected = written.clone();
    expected.sort_by_key(ArchivedTrade::key);
    expected.reverse();
    assert_eq!(
        found, expected,
        "every trade once, newest first, as written"
    );

    // `before` is exclusive and need not be a stored key.
    let tenth = expected[9].key();
    let page = archive
        .trades_before(&pair, Some(tenth), 3)
        .await
        .expect("page");
    assert_eq!(keys(&page), keys(&expected[10..13]));
    let between = TradeKey {
        venue_ts: tenth.venue_ts,
        trade_id: tenth.trade_id + 1_000,
    };
    let page = archive
        .trades_before(&pair, Some(between), 1)
        .await
        .expect("page");
    assert_eq!(keys(&page), vec![tenth]);
    assert!(archive
        .trades_before(&pair, None, 0)
        .await
        .expect("limit 0")
        .is_empty());
    let oldest = expected.last().expect("trades").key();
    assert!(archive
        .trades_before(&pair, Some(oldest), 5)
        .await
        .expect("past the oldest")
        .is_empty());
}

/// `trades_after` pages oldest first from a venue time (what rebuilding
/// candles does), `after` exclusive.
pub async fn trades_after_pages_oldest_first(archive: &dyn MarketArchive, _: &TestClock) {
    let pair = unique_pair();
    let written = trades(30);
    archive.put_trades(&pair, &written).await.expect("put");

    // From the venue time of trade 10 (shared with trade 11): 10..=30.
    let from = TradeKey {
        venue_ts: T0_US + 5 * 1_000_000,
        trade_id: 0,
    };
    let mut found: Vec<ArchivedTrade> = Vec::new();
    let mut after = from;
    loop {
        let page = archive
            .trades_after(&pair, after, 4)
            .await
            .expect("trades_after");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = last.key();
        found.extend(page);
    }
    assert_eq!(found, written[9..].to_vec(), "trades 10..=30, oldest first");

    let page = archive
        .trades_after(&pair, written[3].key(), 2)
        .await
        .expect("page");
    assert_eq!(keys(&page), keys(&written[4..6]), "after is exclusive");
    assert!(archive
        .trades_after(&pair, written[29].key(), 10)
        .await
        .expect("past the newest")
        .is_empty());
    assert!(archive
        .trades_after(&pair, from, 0)
        .await
        .expect("limit 0")
        .is_empty());
}

/// Writing the same trades again (and a batch holding one trade twice)
/// stores each once; a trade written again with other content is
/// replaced, not doubled.
pub async fn writing_trades_again_changes_nothing(archive: &dyn MarketArchive, _: &TestClock) {
    let pair = unique_pair();
    let written = trades(40);
    archive.put_trades(&pair, &written).await.expect("put");
    archive
        .put_trades(&pair, &written)
        .await
        .expect("put again");
    let mut doubled = written[..10].to_vec();
    doubled.extend_from_slice(&written[..10]);
    archive
        .put_trades(&pair, &doubled)
        .await
        .expect("put a batch with duplicates");
    let found = all_newest_first(archive, &pair, 100).await;
    assert_eq!(found.len(), 40, "each trade once");

    let mut changed = written[5].clone();
    changed.seq += 100;
    archive
        .put_trades(&pair, std::slice::from_ref(&changed))
        .await
        .expect("put changed");
    let found = all_newest_first(archive, &pair, 100).await;
    assert_eq!(found.len(), 40);
    let stored = found
        .iter()
        .find(|t| t.key() == changed.key())
        .expect("still there");
    assert_eq!(stored, &changed, "the later write wins");
    assert!(
        archive.put_trades(&pair, &[]).await.is_ok(),
        "an empty write is fine"
    );
}

/// Pairs whose names share a prefix (`X`, `X-USD`, `X-USDT`) see only
/// their own trades.
pub async fn pairs_do_not_see_each_others_trades(archive: &dyn MarketArchive, _: &TestClock) {
    let base = unique_pair();
    let pairs = [
        base.clone(),
        format!("{base}T"),
        base.trim_end_matches("-USD").to_owned(),
    ];
    for (n, pair) in pairs.iter().enumerate() {
        let own: Vec<_> = (0..5)
            .map(|i| trade(T0_US + i * 1_000, 100 * n as u64 + i))
            .collect();
        archive.put_trades(pair, &own).await.expect("put");
    }
    for (n, pair) in pairs.iter().enumerate() {
        let newest = archive
            .trades_before(pair, None, 100)
            .await
            .expect("before");
        let ids: Vec<u64> = newest.iter().map(|t| t.trade.trade_id).collect();
        let base_id = 100 * n as u64;
        assert_eq!(
            ids,
            (base_id..base_id + 5).rev().collect::<Vec<_>>(),
            "{pair}"
        );
        let oldest = archive
            .trades_after(
                pair,
                TradeKey {
                    venue_ts: 0,
                    trade_id: 0,
                },
                100,
            )
            .await
            .expect("after");
        assert_eq!(oldest.len(), 5, "{pair}");
    }
    assert!(archive
        .trades_before(&unique_pair(), None, 10)
        .await
        .expect("unknown pair")
        .is_empty());
}
