//! The Shift adapter's streams when things go wrong, against the
//! standalone venue: a dropped delta is detected and the pair resynced; a
//! cut connection is reopened and every pair resynced on the same stream;
//! a restarted venue (new epoch) ends the market stream so the hub
//! subscribes again, while user events carry on after the reconnect.

use crate::shift_common;

use feeds::shift::ShiftVenue;
use feeds::venue::UserEvent;
use feeds::{MarketEvent, MarketFeed, SnapshotReason, Venue};
use serde_json::json;
use shift_common::*;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Reads `stream` into `mirror` until `done` holds.
async fn read_until(
    stream: &mut feeds::MarketStream,
    mirror: &mut Mirror,
    done: impl Fn(&Mirror, &MarketEvent) -> bool,
) {
    loop {
        let event = next_event(stream).await;
        mirror.apply(&event);
        if done(mirror, &event) {
            return;
        }
    }
}

#[tokio::test]
async fn a_dropped_delta_is_detected_and_the_pair_resyncs() {
    let server = start_venue(any_port(), 400).await;
    let shift = ShiftVenue::connect(config(server.addr())).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let mut mirror = Mirror::default();
    let deltas_of = |pair: &'static str| move |_: &Mirror, e: &MarketEvent| matches!(e, MarketEvent::Delta { pair: p, .. } if &**p == pair);
    read_until(&mut stream, &mut mirror, deltas_of("BTC-USD")).await;
    let before = shift.stats();

    drop_next_delta(server.addr(), "BTC-USD").await;
    read_until(&mut stream, &mut mirror, |m, _| {
        m.reasons("BTC-USD").last() == Some(&SnapshotReason::Resync)
    })
    .await;
    let after = shift.stats();
    assert!(after.gaps_detected > before.gaps_detected, "{after:?}");
    assert!(after.resubscriptions > before.resubscriptions, "{after:?}");
    // The resynced pair carries on with contiguous deltas (the mirror
    // asserts seq + 1 on each).
    read_until(&mut stream, &mut mirror, deltas_of("BTC-USD")).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_cut_connection_reconnects_and_resyncs_every_pair_on_the_same_stream() {
    let server = start_venue(any_port(), 200).await;
    let proxy = CuttingProxy::start(server.addr()).await;
    let shift = ShiftVenue::connect(config(proxy.addr)).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let mut events = shift.user_events().await.unwrap();
    let pairs: Vec<String> = shift.markets().into_iter().map(|m| m.symbol).collect();
    let mut mirror = Mirror::default();
    read_until(&mut stream, &mut mirror, |m, _| {
        m.books.len() == pairs.len()
    })
    .await;

    let seen: Vec<usize> = pairs.iter().map(|p| mirror.reasons(p).len()).collect();
    proxy.cut();
    read_until(&mut stream, &mut mirror, |m, _| {
        pairs
            .iter()
            .zip(&seen)
            .all(|(p, &n)| m.reasons(p)[n..].contains(&SnapshotReason::Resync))
    })
    .await;
    assert!(
        shift.stats().reconnects >= 2,
        "market and user streams: {:?}",
        shift.stats()
    );
    // Still one live stream under the same epoch: the books keep moving.
    let seq = mirror.books["BTC-USD"].0;
    read_until(&mut stream, &mut mirror, |m, _| m.books["BTC-USD"].0 > seq).await;

    // User events flow again after their reconnect.
    let e = credit_until_event(&shift, &mut events, "user-after-cut").await;
    assert!(matches!(e, UserEvent::Balance { user, .. } if user == "user-after-cut"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_restarted_venue_ends_the_market_stream_for_its_new_epoch() {
    let server = start_venue(any_port(), 100).await;
    let addr = server.addr();
    let shift = ShiftVenue::connect(config(addr)).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let mut events = shift.user_events().await.unwrap();
    let old_epoch = stream.epoch.clone();
    let mut mirror = Mirror::default();
    read_until(&mut stream, &mut mirror, |m, _| m.books.len() == 4).await;

    server.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = start_venue(addr, 100).await;

    // Events of the old epoch may still be queued; then the stream ends.
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.events.recv().await {
            mirror.apply(&event);
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends once the epoch changed");
    let stats = shift.stats();
    assert_eq!(stats.epoch_changes, 1, "{stats:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");

    let mut renewed = shift.subscribe().await.unwrap();
    assert_ne!(renewed.epoch, old_epoch);
    let first = next_event(&mut renewed).await;
    assert!(
        matches!(
            first,
            MarketEvent::Snapshot {
                reason: SnapshotReason::Subscribe,
                ..
            }
        ),
        "{first:?}"
    );
    let e = credit_until_event(&shift, &mut events, "user-after-restart").await;
    assert!(matches!(e, UserEvent::Balance { user, .. } if user == "user-after-restart"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_hub_that_stops_reading_gets_resync_snapshots_instead_of_blocking_the_adapter() {
    let server = start_venue(any_port(), 800).await;
    let mut c = config(server.addr());
    c.stream_capacity = 16;
    let shift = ShiftVenue::connect(c).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    // The hub takes nothing for a while: the queue fills, events drop.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut mirror = Mirror::default();
    read_until(&mut stream, &mut mirror, |m, _| {
        m.books
            .keys()
            .any(|p| m.reasons(p).contains(&SnapshotReason::Resync))
    })
    .await;
    assert!(
        shift.stats().slow_receiver_resyncs >= 1,
        "{:?}",
        shift.stats()
    );
    // After the resync the pair's stream is contiguous again (the mirror
    // checks each seq) and still follows the venue.
    let spec = shift.markets()[0].clone();
    let (seq, _) = order_book(server.addr(), &spec).await;
    read_until(&mut stream, &mut mirror, |m, _| {
        m.books.get(&spec.symbol).is_some_and(|(s, _)| *s >= seq)
    })
    .await;
    server.stop().await.unwrap();
}

/// A connection lost while the hub is behind (its receiver full, every
/// pair lagging) still reaches the hub as a `Resyncing` for every pair,
/// each before that pair's next snapshot; it is neither dropped for want
/// of room nor replaced by a resync snapshot of the book the lost
/// connection no longer updates.
#[tokio::test]
async fn a_connection_lost_while_the_hub_is_behind_is_still_told() {
    lost_while_behind(CuttingProxy::cut).await;
}

/// The same with the venue out of reach after the cut: the news does not
/// wait for a reconnect that does not come.
#[tokio::test]
async fn a_venue_out_of_reach_while_the_hub_is_behind_is_still_told() {
    lost_while_behind(CuttingProxy::cut_for_good).await;
}

async fn lost_while_behind(cut: fn(&CuttingProxy)) {
    let server = start_venue(any_port(), 800).await;
    let proxy = CuttingProxy::start(server.addr()).await;
    let mut c = config(proxy.addr);
    c.stream_capacity = 16;
    let shift = ShiftVenue::connect(c).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let pairs: Vec<String> = shift.markets().into_iter().map(|m| m.symbol).collect();
    // The hub takes nothing: the queue fills, every pair lags. Then the
    // connection goes while nothing has room.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    cut(&proxy);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // At most the queue's 16 events from before the cut, then each pair's
    // news of the cut before anything else of that pair.
    let mut before_news: std::collections::HashMap<String, usize> = Default::default();
    let mut told = std::collections::HashSet::new();
    let reading = async {
        while told.len() < pairs.len() {
            let event = stream.events.recv().await.expect("the stream goes on");
            let pair = match &event {
                MarketEvent::Resyncing { pair, reason, .. } => {
                    assert_eq!(reason, "upstream connection lost", "{pair}");
                    told.insert(pair.to_string());
                    continue;
                }
                MarketEvent::Snapshot { pair, .. }
                | MarketEvent::Delta { pair, .. }
                | MarketEvent::Trades { pair, .. }
                | MarketEvent::Status { pair, .. } => pair.to_string(),
            };
            if !told.contains(&pair) {
                *before_news.entry(pair).or_default() += 1;
            }
        }
    };
    let within = tokio::time::timeout(WAIT, reading).await;
    assert!(
        within.is_ok(),
        "every pair told of the lost connection; told: {told:?}"
    );
    let before: usize = before_news.values().sum();
    assert!(before <= 16, "events before the news: {before_news:?}");
    server.stop().await.unwrap();
}

/// A subscription the venue ends (`complete`) or reports unavailable is
/// subscribed again, and the hub is told the pair is resyncing before its
/// new snapshot: the book misses what the venue sent in between, and a
/// connection lost before that snapshot must still find the pair shown
/// resyncing.
#[tokio::test]
async fn a_subscription_the_venue_ends_is_told_as_resyncing_before_its_new_snapshot() {
    let server = start_venue(any_port(), 200).await;
    let proxy = InjectingProxy::start(server.addr()).await;
    let shift = ShiftVenue::connect(config(proxy.addr)).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let pairs: Vec<String> = shift.markets().into_iter().map(|m| m.symbol).collect();
    let mut mirror = Mirror::default();
    read_until(&mut stream, &mut mirror, |m, _| {
        m.books.len() == pairs.len()
    })
    .await;

    let ended = json!({"id": format!("book:{}:1", pairs[0]), "type": "complete"});
    let unavailable = json!({"id": format!("trades:{}:1", pairs[1]), "type": "error",
        "payload": [{"message": "try later", "extensions": {"code": "UNAVAILABLE"}}]});
    let seen: Vec<usize> = pairs.iter().map(|p| mirror.reasons(p).len()).collect();
    proxy.inject(vec![Message::text(ended.to_string())]);
    proxy.inject(vec![Message::text(unavailable.to_string())]);
    let expected = [
        (&pairs[0], "upstream subscription ended", seen[0]),
        (&pairs[1], "upstream subscription unavailable", seen[1]),
    ];
    let mut told: Vec<(String, String)> = Vec::new();
    let reading = async {
        loop {
            let event = next_event(&mut stream).await;
            mirror.apply(&event);
            if let MarketEvent::Resyncing { pair, reason, .. } = &event {
                told.push((pair.to_string(), reason.clone()));
            }
            if let MarketEvent::Snapshot {
                pair,
                reason: SnapshotReason::Resync,
                ..
            } = &event
            {
                let (_, why, _) = expected
                    .iter()
                    .find(|(p, ..)| **p == **pair)
                    .unwrap_or_else(|| panic!("{pair} was not resubscribed"));
                assert!(
                    told.contains(&(pair.to_string(), why.to_string())),
                    "{pair}'s new snapshot came before the hub was told why: {told:?}"
                );
            }
            if expected
                .iter()
                .all(|(p, _, n)| mirror.reasons(p).len() > *n)
            {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, reading)
        .await
        .unwrap_or_else(|_| panic!("both pairs resynced; told: {told:?}"));
    assert!(shift.stats().resubscriptions >= 2, "{:?}", shift.stats());
    assert_eq!(shift.stats().reconnects, 0, "{:?}", shift.stats());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_silent_venue_is_pinged_and_the_connection_kept() {
    let server = start_venue(any_port(), 200).await;
    let mut c = config(server.addr());
    // 1 s: a pong on a busy machine comes well within it.
    c.keepalive = Duration::from_secs(1);
    let shift = ShiftVenue::connect(c).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let mut mirror = Mirror::default();
    read_until(&mut stream, &mut mirror, |m, _| m.books.len() == 4).await;
    // No market data for 5 keepalive periods: only pings and pongs flow.
    let (status, _) = post(
        server.addr(),
        "/admin/pause-stream",
        serde_json::json!({"ms": 5_000}),
    )
    .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let seq = mirror.books["BTC-USD"].0;
    read_until(&mut stream, &mut mirror, |m, _| m.books["BTC-USD"].0 > seq).await;
    let stats = shift.stats();
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    assert!(
        mirror
            .books
            .keys()
            .all(|p| mirror.reasons(p) == [SnapshotReason::Subscribe]),
        "{:?}",
        mirror.snapshots
    );
    server.stop().await.unwrap();
}
