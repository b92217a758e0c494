//! Acceptance test of several venues at once (issue 16): two standalone
//! venues (`sandbox_venue::serve`) on 127.0.0.1, "us" serving the USD
//! market and "au" the AUD market, four pairs each, and one hub on both
//! (`[[venues]]`, docs/ARCHITECTURE.md "Several venues").
//!
//! - a client subscribed to all eight books gets both venues' updates,
//!   each channel in its own venue's epoch;
//! - an order for each venue's pair reaches that venue, and a cancel finds
//!   it there; a balance of an asset both venues hold is their sum;
//! - stopping one venue marks only its pairs stale, while the other's
//!   keep updating.

use crate::common;
use crate::harness;

use common::any_port;
use harness::{get, names, ready_until, TestVenue, Trader, TOKEN};
use hub::app::RunningHub;
use hub::config::VenueEntry;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

const US: [&str; 4] = ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"];
const AU: [&str; 4] = ["BTC-AUD", "ETH-AUD", "SOL-AUD", "USDC-AUD"];

fn entry(name: &str, venue: &TestVenue) -> VenueEntry {
    VenueEntry {
        name: name.into(),
        endpoint: venue.endpoint(),
        token: Some(api::secret::Secret::new(TOKEN)),
        stale_after_ms: 1_000,
        request_timeout_ms: 2_000,
        backoff_min_ms: 50,
        backoff_max_ms: 500,
        ..VenueEntry::default()
    }
}

async fn start_hub(us: &TestVenue, au: &TestVenue) -> RunningHub {
    let config = common::test_config(|c| {
        c.venues = vec![entry("us", us), entry("au", au)];
    });
    let hub = hub::app::start(&config)
        .await
        .expect("hub starts on both venues");
    harness::wait_warm(&hub).await;
    hub
}

/// What a client saw per `book.PAIR` channel: its epoch and message types.
#[derive(Default, Debug)]
struct Seen {
    epochs: BTreeSet<String>,
    snapshots: usize,
    updates: usize,
}

/// Reads `ws` until every pair of `pairs` has had an update (or `secs`
/// pass, which fails), recording what each channel carried.
async fn until_updates(
    ws: &mut common::Ws,
    pairs: &[&str],
    seen: &mut BTreeMap<String, Seen>,
    secs: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let done = |seen: &BTreeMap<String, Seen>| {
        pairs
            .iter()
            .all(|p| seen.get(*p).is_some_and(|s| s.updates > 0))
    };
    while !done(seen) {
        assert!(
            Instant::now() < deadline,
            "no update within {secs} s: {seen:?}"
        );
        let m = common::recv_within(ws, secs).await;
        let Some(pair) = m["channel"].as_str().and_then(|c| c.strip_prefix("book.")) else {
            continue;
        };
        let s = seen.entry(pair.to_owned()).or_default();
        s.epochs
            .insert(m["epoch"].as_str().expect("epoch").to_owned());
        match m["type"].as_str() {
            Some("snapshot") => s.snapshots += 1,
            Some("update") => s.updates += 1,
            _ => {}
        }
    }
}

fn balance(list: &Value, asset: &str) -> String {
    list.as_array()
        .expect("balances")
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap_or_else(|| panic!("{asset} not in {list}"))["available"]
        .as_str()
        .expect("available")
        .to_owned()
}

/// A resting limit buy far below the market, over REST.
async fn rest_buy(trader: &Trader, id: &str, pair: &str, price: &str, qty: &str) -> String {
    let order = json!({
        "client_order_id": id, "pair": pair, "side": "buy", "type": "limit",
        "qty": qty, "price": price, "time_in_force": "GTC",
    });
    let placed = trader.call("POST", "/orders", Some(order)).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(placed.body["status"], "open", "{}", placed.body);
    placed.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned()
}

/// The order of `user` at `venue` whose clientId is `order_id`.
async fn at_venue(venue: &TestVenue, user: &str, order_id: &str) -> Option<Value> {
    venue
        .orders(user)
        .await
        .into_iter()
        .find(|o| o["clientId"] == order_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_venues_serve_their_books_take_their_orders_and_go_stale_alone() {
    common::within(Duration::from_secs(60), async {
        let us = TestVenue::start(any_port(), 200).await;
        let au = TestVenue::start_with(any_port(), 200, |s| {
            s.pairs = feeds::sandbox_pairs::aud_pairs();
            s.assets = feeds::sandbox_pairs::aud_assets();
        })
        .await;
        let hub = start_hub(&us, &au).await;
        let listed: Vec<String> = hub
            .context
            .markets
            .specs()
            .iter()
            .map(|s| s.symbol.clone())
            .collect();
        assert_eq!(listed, [US, AU].concat());

        // One client, all eight books: both venues' updates arrive, each
        // channel in its venue's epoch.
        let mut ws = common::connect(&hub).await;
        let channels: Vec<String> = US.iter().chain(&AU).map(|p| format!("book.{p}")).collect();
        common::send(
            &mut ws,
            json!({"op": "subscribe", "id": 1, "channels": channels}),
        )
        .await;
        let mut seen = BTreeMap::new();
        until_updates(&mut ws, &[US, AU].concat(), &mut seen, 15).await;
        let us_epoch = us.order_book("BTC-USD").await.epoch;
        let au_epoch = au.order_book("BTC-AUD").await.epoch;
        assert_ne!(us_epoch, au_epoch);
        for (pairs, epoch) in [(US, &us_epoch), (AU, &au_epoch)] {
            for pair in pairs {
                let s = &seen[pair];
                assert_eq!(s.snapshots, 1, "{pair}: {s:?}");
                assert_eq!(s.epochs, BTreeSet::from([epoch.clone()]), "{pair}");
            }
        }

        // An order for each venue's pair reaches that venue only.
        let trader = Trader::verified(&hub, "two-venues@example.com").await;
        us.credit(&trader.user_id, "USD", "1000").await;
        au.credit(&trader.user_id, "AUD", "1000").await;
        us.credit(&trader.user_id, "BTC", "0.25").await;
        au.credit(&trader.user_id, "BTC", "0.5").await;
        let usd_order = rest_buy(&trader, "us-1", "SOL-USD", "1.00", "1").await;
        let aud_order = rest_buy(&trader, "au-1", "SOL-AUD", "2.00", "1").await;
        let at_us = at_venue(&us, &trader.user_id, &usd_order).await;
        assert_eq!(at_us.expect("the USD order at us")["pair"], "SOL-USD");
        assert!(at_venue(&au, &trader.user_id, &usd_order).await.is_none());
        let at_au = at_venue(&au, &trader.user_id, &aud_order).await;
        assert_eq!(at_au.expect("the AUD order at au")["pair"], "SOL-AUD");
        assert!(at_venue(&us, &trader.user_id, &aud_order).await.is_none());

        // A cancel finds the order at its venue.
        let cancelled = trader
            .call("DELETE", &format!("/orders/{aud_order}"), None)
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
        let at_au = at_venue(&au, &trader.user_id, &aud_order).await.unwrap();
        assert_eq!(at_au["status"], "CANCELLED", "{at_au}");
        let at_us = at_venue(&us, &trader.user_id, &usd_order).await.unwrap();
        assert_eq!(at_us["status"], "OPEN", "{at_us}");

        // BTC, held at both, is one balance: the sum.
        let balances = trader.call("GET", "/wallets/balances", None).await;
        assert_eq!(balances.status, 200, "{}", balances.body);
        assert_eq!(balance(&balances.body, "BTC"), "0.75000000");
        assert_eq!(balance(&balances.body, "AUD"), "1000.00000000");

        // Stopping "au" makes its four pairs stale, and only those; "us"
        // keeps updating the same client.
        au.stop().await;
        let (_, ready) = ready_until(hub.addr, 10, "503 naming au's pairs stale", |s, b| {
            s == 503 && AU.iter().all(|p| names(b, &format!("stale:{p}")))
        })
        .await;
        assert!(
            US.iter().all(|p| !names(&ready, &format!("stale:{p}"))),
            "{ready}"
        );
        assert_eq!(hub.context.markets.stale_pairs(), {
            let mut au = AU.map(String::from).to_vec();
            au.sort();
            au
        });
        // `/markets`: au's pairs are not online (`resyncing` outranks
        // `stale` while the lost connection is retried), us's are.
        let (_, markets) = get(hub.addr, "/markets").await;
        for m in markets.as_array().expect("markets") {
            let pair = m["pair"].as_str().unwrap();
            if AU.contains(&pair) {
                assert!(m["status"] == "stale" || m["status"] == "resyncing", "{m}");
            } else {
                assert_eq!(m["status"], "online", "{m}");
            }
        }
        // The healthy venue trades on: balances (they need every venue)
        // answer 503 naming au, again and again, without opening the
        // breaker in front of both venues; an order for a us pair goes
        // through.
        for _ in 0..6 {
            let b = trader.call("GET", "/wallets/balances", None).await;
            assert_eq!(b.status, 503, "{}", b.body);
            assert!(b.body.to_string().contains("venue au"), "{}", b.body);
        }
        rest_buy(&trader, "us-2", "SOL-USD", "1.00", "1").await;

        // Messages queued before now (au's last updates among them) come
        // before the answer to this ping; only what follows is counted.
        common::send(&mut ws, json!({"op": "ping", "id": 2})).await;
        common::recv_type(&mut ws, "pong").await;
        let mut after = BTreeMap::new();
        until_updates(&mut ws, &US, &mut after, 10).await;
        assert!(
            AU.iter()
                .all(|p| after.get(*p).is_none_or(|s| s.updates == 0)),
            "{after:?}"
        );
        drop(ws);
        hub.stop().await;
        us.stop().await;
    })
    .await;
}
