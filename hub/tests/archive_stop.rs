//! The market archive at shutdown (docs/ARCHITECTURE.md, "Market
//! archive"): a stopping hub stops reading its market feed, applies what
//! it read, and only then closes the archive writer, so every trade it
//! read is archived and none is dropped.
//!
//! - `every_trade_read_before_the_stop_is_archived`: a feed streams one
//!   trade per event as fast as the hub reads them, through a channel of
//!   one slot (a send returns once the trade before it was read), and the
//!   hub stops in the middle. The feed must be dropped by the stop; the
//!   archive, opened again, must hold trades 1 to m with no gap, m the
//!   last sent or the one before; and the log must not say a trade or
//!   candle was dropped.

use crate::candles::{driven_trade, DrivenFeed, PAIR};
use crate::common;

use api::market_archive::TradeKey;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_read_before_the_stop_is_archived() {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let config = common::test_config(|_| {});
    let hub = hub::app::start_with_feed(&config, Arc::new(DrivenFeed::new("ep0009", rx)), None)
        .await
        .expect("hub starts on the driven feed");
    let sent = Arc::new(AtomicU64::new(0));
    // Trades a minute old, a microsecond apart: all in the candles.
    let base = feeds::event::now_micros() - 60_000_000;
    let sender = tokio::spawn({
        let sent = sent.clone();
        async move {
            for id in 1.. {
                if tx.send(driven_trade(id, id, base + id)).await.is_err() {
                    return;
                }
                sent.store(id, Ordering::Release);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Acquire) < 2_000 {
        assert!(Instant::now() < deadline, "the hub reads no trades");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.stop().await;
    tokio::time::timeout(Duration::from_secs(10), sender)
        .await
        .expect("the stopped hub still reads its feed 10 s later")
        .expect("the sender does not panic");
    let sent = sent.load(Ordering::Acquire);

    let archive = api::market_archive::open(&config.api, &config.data_dir)
        .await
        .expect("the archive opens again after the stop");
    let mut ids = Vec::new();
    let mut after = TradeKey {
        venue_ts: 0,
        trade_id: 0,
    };
    loop {
        let page = archive
            .trades_after(PAIR, after, 1_000)
            .await
            .expect("archived trades read");
        ids.extend(page.iter().map(|t| t.trade.trade_id));
        match page.last() {
            Some(t) => after = t.key(),
            None => break,
        }
    }
    let m = ids.len() as u64;
    assert_eq!(
        ids,
        (1..=m).collect::<Vec<_>>(),
        "archived trades are not 1..={m}"
    );
    assert!(
        m + 1 == sent || m == sent,
        "{m} trades archived; the hub had read {} or {sent}",
        sent - 1
    );
    let log = common::logs::captured();
    assert!(
        !log.contains("dropping trades and candles"),
        "the stop dropped trades or candles: {log}"
    );
}
