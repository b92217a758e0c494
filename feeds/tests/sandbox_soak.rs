//! The sandbox run for a while at its default rate: its stream never breaks
//! its seq chain, never shows a crossed book, and a recording of it replays
//! into a byte-identical final book.
//!
//! Length: as many book changes as 60 s at 150 changes/s (the acceptance
//! run), counted, not timed, so a slow machine runs longer rather than
//! failing; `NAX_SOAK_SECS` shortens it for a quick local loop.

use feeds::replay::{record, ReplayFeed, ReplaySpeed};
use feeds::{MarketEvent, MarketFeed, SandboxConfig, SandboxVenue};
use orderbook::{L2Book, MarketSpec};
use std::collections::HashMap;
use std::time::Duration;

/// Follows a stream per pair: checks the seq chains and rebuilds the books.
#[derive(Default)]
struct Follower {
    books: HashMap<String, (u64, L2Book)>,
    trade_seqs: HashMap<String, u64>,
    deltas: u64,
    trades: u64,
}

impl Follower {
    fn apply(&mut self, event: MarketEvent) {
        let pair = event.pair().to_string();
        match event {
            MarketEvent::Snapshot {
                seq,
                trade_seq,
                bids,
                asks,
                ..
            } => {
                let mut book = L2Book::new();
                book.apply_snapshot(&bids, &asks)
                    .expect("snapshot is a valid, uncrossed book");
                self.books.insert(pair.clone(), (seq, book));
                self.trade_seqs.insert(pair, trade_seq);
            }
            MarketEvent::Delta { seq, deltas, .. } => {
                let (last, book) = self.books.get_mut(&pair).expect("a snapshot comes first");
                assert_eq!(seq, *last + 1, "{pair}: book seq chain broken");
                *last = seq;
                book.apply_deltas(&deltas)
                    .unwrap_or_else(|e| panic!("{pair} at seq {seq}: {e}"));
                self.deltas += 1;
            }
            MarketEvent::Trades { seq, trades, .. } => {
                let last = self
                    .trade_seqs
                    .get_mut(&pair)
                    .expect("a snapshot comes first");
                assert_eq!(seq, *last + 1, "{pair}: trade seq chain broken");
                *last = seq;
                assert!(!trades.is_empty());
                self.trades += 1;
            }
            // The sandbox restates the trading status after each snapshot.
            MarketEvent::Status { .. } => {}
            MarketEvent::Resyncing { .. } => panic!("the sandbox never loses a sequence"),
        }
    }
}

/// Book changes per second of soak asked for: the run lasts until the live
/// follower has checked `CHANGES_PER_SEC × NAX_SOAK_SECS` of them (the
/// default rate makes a few hundred a second across pairs).
const CHANGES_PER_SEC: u64 = 150;

/// A canonical byte form of a book: every level as the wire strings.
fn book_bytes(spec: &MarketSpec, book: &L2Book) -> Vec<u8> {
    let (bids, asks) = book.levels();
    let mut out = Vec::new();
    for (tag, levels) in [(b'b', bids), (b'a', asks)] {
        for (p, q) in levels {
            out.push(tag);
            spec.write_price(&mut out, p);
            out.push(b':');
            spec.write_qty(&mut out, q);
            out.push(b'\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_runs_clean_and_replays_identically() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("NAX_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sandbox.ndjson");

    let venue = SandboxVenue::start(SandboxConfig::default())?;
    let markets = venue.markets();
    // Two subscribers: one follows and checks live, one records.
    let mut live = venue.subscribe().await?;
    let recording = venue.subscribe().await?;
    let recorder = {
        let (markets, path) = (markets.clone(), path.clone());
        tokio::spawn(async move { record(recording, &markets, &path).await })
    };
    // The follower reports its counts as it goes; the run ends once it has
    // checked as many book changes as `secs` of the default rate makes
    // (and some trades), however long that takes on this machine.
    let (progress_tx, mut progress) = tokio::sync::watch::channel((0u64, 0u64));
    let follower = tokio::spawn(async move {
        let mut f = Follower::default();
        while let Some(event) = live.events.recv().await {
            f.apply(event);
            progress_tx.send_replace((f.deltas, f.trades));
        }
        f
    });

    let want_deltas = CHANGES_PER_SEC * secs;
    let started = std::time::Instant::now();
    let reached = tokio::time::timeout(
        Duration::from_secs(secs * 10 + 60),
        progress.wait_for(|&(deltas, trades)| deltas >= want_deltas && trades > 0),
    )
    .await
    .map(|seen| seen.is_ok());
    let elapsed = started.elapsed();
    venue.stop().await;
    let live = follower.await?;
    let recorded = recorder.await??;
    assert!(
        reached.is_ok_and(|seen| seen),
        "{} book changes and {} trades in {elapsed:?}; waited for {want_deltas} and a trade",
        live.deltas,
        live.trades
    );
    // The rate is the sandbox's pacing on this machine, not a property of
    // the stream: printed, not asserted (the deadline above only catches a
    // stream that stalls).
    println!(
        "{} book changes, {} trades in {:.1} s ({:.0} changes/s)",
        live.deltas,
        live.trades,
        elapsed.as_secs_f64(),
        live.deltas as f64 / elapsed.as_secs_f64()
    );

    let replay = ReplayFeed::open(&path, ReplaySpeed::Max)?;
    let mut stream = replay.subscribe().await?;
    let mut replayed = Follower::default();
    let mut replayed_events = 0;
    while let Some(event) = stream.events.recv().await {
        replayed.apply(event);
        replayed_events += 1;
    }
    assert_eq!(replayed_events, recorded);

    for spec in &markets {
        let (venue_seq, venue_book) = venue.book(&spec.symbol).expect("configured pair");
        let (live_seq, live_book) = &live.books[&spec.symbol];
        let (replay_seq, replay_book) = &replayed.books[&spec.symbol];
        assert_eq!(
            (*live_seq, *replay_seq),
            (venue_seq, venue_seq),
            "{}",
            spec.symbol
        );
        let want = book_bytes(spec, &venue_book);
        assert!(!venue_book.bids().is_empty() && !venue_book.asks().is_empty());
        assert_eq!(
            book_bytes(spec, live_book),
            want,
            "{}: live book differs",
            spec.symbol
        );
        assert_eq!(
            book_bytes(spec, replay_book),
            want,
            "{}: replayed book differs",
            spec.symbol
        );
        assert_eq!(replay_book.checksum(), venue_book.checksum());
    }
    Ok(())
}
