//! A [`MultiVenue`] over two in-process sandboxes: the default USD market
//! ("us") and the AUD market ("au"). Both list BTC, ETH and SOL.

use super::*;
use crate::sandbox::{SandboxConfig, SandboxVenue};
use crate::sandbox_pairs::{aud_assets, aud_pairs};
use orderbook::engine::{OrderType, TimeInForce};
use orderbook::{Price, Qty, Side};
use std::time::Duration;

const ONE: u64 = 100_000_000;

fn sandbox(aud: bool) -> SandboxVenue {
    let mut config = SandboxConfig {
        events_per_sec: 0,
        ..SandboxConfig::default()
    };
    if aud {
        config.pairs = aud_pairs();
        config.assets = aud_assets();
    }
    SandboxVenue::start(config).unwrap()
}

fn part(name: &str, venue: &SandboxVenue, pairs: &[&str], funds: &[&str]) -> VenuePart {
    VenuePart {
        name: name.into(),
        venue: Arc::new(venue.clone()),
        pairs: pairs.iter().map(|p| p.to_string()).collect(),
        funds: funds.iter().map(|a| a.to_string()).collect(),
    }
}

/// "us" owning its four pairs, "au" owning its four.
fn both() -> (MultiVenue, SandboxVenue, SandboxVenue) {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])])
        .expect("venues fit together");
    (multi, us, au)
}

fn error_of(parts: Vec<VenuePart>) -> String {
    match MultiVenue::new(parts) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

fn buy(user: &str, pair: &str, price: u64, qty: u64) -> PlaceOrder {
    PlaceOrder {
        user: user.into(),
        client_id: Some(format!("c-{pair}")),
        pair: pair.into(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(Price(price)),
        qty: Qty(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

fn balance_of(list: &[(String, Balance)], asset: &str) -> Balance {
    list.iter()
        .find(|(a, _)| a == asset)
        .unwrap_or_else(|| panic!("{asset} not listed"))
        .1
}

#[tokio::test]
async fn pairs_are_the_union_in_configuration_order_and_each_has_one_owner() {
    let (multi, _, _) = both();
    let pairs: Vec<String> = multi.markets().into_iter().map(|s| s.symbol).collect();
    assert_eq!(
        pairs,
        ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC", "BTC-AUD", "ETH-AUD", "SOL-AUD", "USDC-AUD"]
    );
    assert_eq!(multi.owner_of("ETH-BTC"), Some("us"));
    assert_eq!(multi.owner_of("USDC-AUD"), Some("au"));
    assert_eq!(multi.owner_of("DOGE-AUD"), None);
    let assets: Vec<String> = multi.assets().into_iter().map(|a| a.symbol).collect();
    assert_eq!(assets, ["USD", "BTC", "ETH", "SOL", "AUD", "USDC"]);
}

#[tokio::test]
async fn a_venue_may_own_only_some_of_its_pairs() {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![
        part("us", &us, &["BTC-USD"], &[]),
        part("au", &au, &["BTC-AUD", "ETH-AUD"], &[]),
    ])
    .unwrap();
    let pairs: Vec<String> = multi.markets().into_iter().map(|s| s.symbol).collect();
    assert_eq!(pairs, ["BTC-USD", "BTC-AUD", "ETH-AUD"]);
    let refused = multi.place_order(buy("u", "SOL-AUD", 1, 100)).await;
    assert_eq!(refused, Err(VenueError::UnknownPair("SOL-AUD".into())));
}

#[tokio::test]
async fn venues_that_do_not_fit_together_are_refused_with_the_reason() {
    let (us, au) = (sandbox(false), sandbox(true));
    let other_us = sandbox(false);
    let e = error_of(vec![
        part("a", &us, &[], &[]),
        part("b", &other_us, &[], &[]),
    ]);
    assert!(e.contains("BTC-USD is owned by both a and b"), "{e}");
    let e = error_of(vec![part("us", &us, &["BTC-AUD"], &[])]);
    assert!(e.contains("venue us does not list BTC-AUD"), "{e}");
    let e = error_of(vec![part("us", &us, &[], &[]), part("us", &au, &[], &[])]);
    assert!(e.contains("two venues are named us"), "{e}");
    let e = error_of(vec![part("u:s", &us, &[], &[])]);
    assert!(e.contains("without ':'"), "{e}");
    let e = error_of(vec![part("us", &us, &[], &["AUD"])]);
    assert!(e.contains("venue us funds AUD but does not list it"), "{e}");
    let e = error_of(vec![
        part("us", &us, &[], &["BTC"]),
        part("au", &au, &[], &["BTC"]),
    ]);
    assert!(e.contains("BTC is funded at both us and au"), "{e}");
    assert!(error_of(Vec::new()).contains("no venue"));
}

#[tokio::test]
async fn an_asset_at_two_scales_is_refused() {
    let us = sandbox(false);
    let mut config = SandboxConfig {
        events_per_sec: 0,
        pairs: aud_pairs(),
        assets: aud_assets(),
        ..SandboxConfig::default()
    };
    for a in &mut config.assets {
        if a.symbol == "BTC" {
            a.scale = 9;
        }
    }
    // BTC-AUD's qty (6 decimals) still fits 9 decimals of BTC.
    let au = SandboxVenue::start(config).unwrap();
    let e = error_of(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])]);
    assert!(
        e.contains("BTC has 8 decimals at one venue and 9 at au"),
        "{e}"
    );
}

#[tokio::test]
async fn an_order_reaches_the_venue_that_owns_its_pair_and_its_id_names_it() {
    let (multi, us, au) = both();
    multi.credit("ann", "AUD", 1_000 * ONE).await.unwrap();
    multi.credit("ann", "USD", 1_000 * ONE).await.unwrap();
    // Far below the market: the orders rest.
    let aud = multi
        .place_order(buy("ann", "SOL-AUD", 100, 100))
        .await
        .unwrap();
    let usd = multi
        .place_order(buy("ann", "SOL-USD", 100, 100))
        .await
        .unwrap();
    let (au_id, us_id) = (
        aud.order_id.strip_prefix("au:").expect("au order"),
        usd.order_id.strip_prefix("us:").expect("us order"),
    );
    assert_eq!(au.order("ann", au_id).await.unwrap().pair, "SOL-AUD");
    assert_eq!(us.order("ann", us_id).await.unwrap().pair, "SOL-USD");
    assert_eq!(
        au.order("ann", us_id).await.map(|r| r.order_id),
        Err(VenueError::OrderNotFound)
    );

    let listed: Vec<String> = multi
        .orders("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert_eq!(listed, [usd.order_id.clone(), aud.order_id.clone()]);
    assert_eq!(
        multi.order("ann", &aud.order_id).await.unwrap().order_id,
        aud.order_id
    );
    let cancelled = multi.cancel_order("ann", &aud.order_id).await.unwrap();
    assert_eq!(cancelled.order_id, aud.order_id);
    assert_eq!(
        au.order("ann", au_id).await.unwrap().status,
        orderbook::engine::OrderStatus::Cancelled
    );
    assert_eq!(
        us.order("ann", us_id).await.unwrap().status,
        orderbook::engine::OrderStatus::Open
    );
    // An id stored before the hub ran several venues has no prefix: the
    // venue that knows it serves it.
    assert_eq!(
        multi.order("ann", us_id).await.unwrap().order_id,
        usd.order_id,
        "found at us"
    );
    for unknown in ["O-1", "us:O-1"] {
        assert_eq!(
            multi.cancel_order("ann", unknown).await.map(|r| r.order_id),
            Err(VenueError::OrderNotFound),
            "{unknown}"
        );
    }
    // A venue no longer configured may still hold the order: never "not
    // found" (the API would record it as cancelled).
    assert_eq!(
        multi
            .cancel_order("ann", "mars:O-1")
            .await
            .map(|r| r.order_id),
        Err(VenueError::PartUnavailable {
            venue: "mars".into(),
            reason: "not configured".into()
        })
    );
}

#[tokio::test]
async fn a_shared_asset_is_the_sum_and_is_funded_at_one_venue() {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![
        part("us", &us, &[], &[]),
        part("au", &au, &[], &["BTC"]),
    ])
    .unwrap();
    assert_eq!(multi.funding_venue("BTC"), Some("au"));
    assert_eq!(multi.funding_venue("USD"), Some("us"));
    assert_eq!(multi.funding_venue("ETH"), Some("us"), "first listing it");
    us.credit("bob", "BTC", 2 * ONE).await.unwrap();
    multi.credit("bob", "BTC", 3 * ONE).await.unwrap();
    assert_eq!(
        balance_of(&au.balances("bob").await.unwrap(), "BTC").available,
        3 * ONE
    );
    let all = multi.balances("bob").await.unwrap();
    assert_eq!(balance_of(&all, "BTC").available, 5 * ONE);
    assert_eq!(balance_of(&all, "AUD"), Balance::default());

    // A debit takes from the funding venue only, never part from each.
    assert_eq!(
        multi.debit("bob", "BTC", 4 * ONE).await,
        Err(VenueError::InsufficientFunds)
    );
    multi.debit("bob", "BTC", 3 * ONE).await.unwrap();
    let all = multi.balances("bob").await.unwrap();
    assert_eq!(balance_of(&all, "BTC").available, 2 * ONE);
    assert_eq!(
        multi.credit("bob", "DOGE", 1).await,
        Err(VenueError::UnknownAsset("DOGE".into()))
    );
}

/// The next balance event of `asset` on `events`.
async fn next_balance(
    events: &mut mpsc::UnboundedReceiver<UserEvent>,
    asset: &str,
) -> (Balance, u64) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("stream open");
        if let UserEvent::Balance {
            asset: a,
            balance,
            venue_ts,
            ..
        } = event
        {
            if a == asset {
                return (balance, venue_ts);
            }
        }
    }
}

#[tokio::test]
async fn merged_events_carry_tagged_ids_and_the_sum_of_a_shared_asset() {
    let (multi, us, au) = both();
    let mut events = multi.user_events().await.unwrap();
    us.credit("cat", "BTC", 2 * ONE).await.unwrap();
    let (first, ts1) = next_balance(&mut events, "BTC").await;
    assert_eq!(first.available, 2 * ONE);
    au.credit("cat", "BTC", 5 * ONE).await.unwrap();
    let (second, ts2) = next_balance(&mut events, "BTC").await;
    assert_eq!(second.available, 7 * ONE, "us 2 + au 5");
    assert!(ts2 >= ts1);
    // An asset one venue holds passes through as it is.
    au.credit("cat", "AUD", 10 * ONE).await.unwrap();
    assert_eq!(next_balance(&mut events, "AUD").await.0.available, 10 * ONE);

    let placed = multi
        .place_order(buy("cat", "BTC-AUD", 100, 10))
        .await
        .unwrap();
    let report = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            UserEvent::Order(r) => break r,
            _ => continue,
        }
    };
    assert_eq!(report.order_id, placed.order_id);
    assert!(report.order_id.starts_with("au:"), "{}", report.order_id);
}

#[tokio::test]
async fn a_balance_first_seen_at_one_venue_counts_what_the_other_already_holds() {
    let (us, au) = (sandbox(false), sandbox(true));
    us.credit("dan", "ETH", 4 * ONE).await.unwrap();
    let multi =
        MultiVenue::new(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])]).unwrap();
    let mut events = multi.user_events().await.unwrap();
    au.credit("dan", "ETH", ONE).await.unwrap();
    assert_eq!(next_balance(&mut events, "ETH").await.0.available, 5 * ONE);
}

#[tokio::test]
async fn the_merged_market_stream_carries_each_venues_owned_pairs() {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![
        part("us", &us, &["BTC-USD"], &[]),
        part("au", &au, &["BTC-AUD"], &[]),
    ])
    .unwrap();
    let mut stream = multi.subscribe().await.unwrap();
    assert_eq!(stream.epoch.split('.').count(), 2, "{}", stream.epoch);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.events.recv())
            .await
            .unwrap()
            .unwrap();
        let pair = event.pair().to_string();
        assert!(pair == "BTC-USD" || pair == "BTC-AUD", "{pair} not owned");
        seen.insert(pair);
    }
}

/// A venue whose trading calls all fail as unavailable; its market data
/// and user events are those of `inner`.
struct Down {
    inner: SandboxVenue,
}

#[async_trait]
impl MarketFeed for Down {
    fn markets(&self) -> Vec<MarketSpec> {
        self.inner.markets()
    }
    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        self.inner.subscribe().await
    }
}

fn down<T>() -> Result<T, VenueError> {
    Err(VenueError::Unavailable("connection refused".into()))
}

#[async_trait]
impl Venue for Down {
    fn assets(&self) -> Vec<AssetSpec> {
        self.inner.assets()
    }
    async fn place_order(&self, _: PlaceOrder) -> Result<OrderReport, VenueError> {
        down()
    }
    async fn cancel_order(&self, _: &str, _: &str) -> Result<OrderReport, VenueError> {
        down()
    }
    async fn order(&self, _: &str, _: &str) -> Result<OrderReport, VenueError> {
        down()
    }
    async fn orders(&self, _: &str) -> Result<Vec<OrderReport>, VenueError> {
        down()
    }
    async fn balances(&self, _: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        down()
    }
    async fn credit(&self, _: &str, _: &str, _: u64) -> Result<Balance, VenueError> {
        down()
    }
    async fn debit(&self, _: &str, _: &str, _: u64) -> Result<Balance, VenueError> {
        down()
    }
    async fn user_events(&self) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        self.inner.user_events().await
    }
}

#[tokio::test]
async fn one_venue_down_is_named_and_the_other_still_trades() {
    let (us, au) = (sandbox(false), sandbox(true));
    let multi = MultiVenue::new(vec![
        part("us", &us, &[], &[]),
        VenuePart {
            name: "au".into(),
            venue: Arc::new(Down { inner: au.clone() }),
            pairs: Vec::new(),
            funds: Vec::new(),
        },
    ])
    .unwrap();
    let named = |e: Result<_, VenueError>| match e {
        Err(VenueError::PartUnavailable { venue, .. }) => venue,
        other => panic!("{:?}", other.map(|_: ()| ())),
    };
    assert_eq!(named(multi.balances("eve").await.map(|_| ())), "au");
    assert_eq!(named(multi.orders("eve").await.map(|_| ())), "au");
    assert_eq!(
        named(
            multi
                .place_order(buy("eve", "SOL-AUD", 100, 100))
                .await
                .map(|_| ())
        ),
        "au"
    );
    assert_eq!(
        named(multi.credit("eve", "AUD", ONE).await.map(|_| ())),
        "au"
    );
    // An unprefixed id cannot be placed while a venue cannot be asked.
    assert_eq!(named(multi.order("eve", "O-1").await.map(|_| ())), "au");
    // The healthy venue trades on.
    multi.credit("eve", "USD", 10 * ONE).await.unwrap();
    let placed = multi
        .place_order(buy("eve", "SOL-USD", 100, 100))
        .await
        .unwrap();
    assert!(placed.order_id.starts_with("us:"));
    // A shared asset's sum needs both venues: not sent while one cannot
    // say its figure; an asset only the healthy venue holds goes out.
    let mut events = multi.user_events().await.unwrap();
    us.credit("eve", "BTC", ONE).await.unwrap();
    us.credit("eve", "USD", ONE).await.unwrap();
    let (usd, _) = next_balance(&mut events, "USD").await;
    assert_eq!(
        usd.available,
        11 * ONE - ONE / 100,
        "less the order's 0.01 USD locked"
    );
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), events.recv()).await
    {
        if let UserEvent::Balance { asset, .. } = &event {
            assert_ne!(asset, "BTC", "a partial sum was sent: {event:?}");
        }
    }
}

#[tokio::test]
async fn an_id_two_venues_know_is_refused_not_guessed() {
    let (us, au) = (sandbox(false), sandbox(true));
    us.credit("fay", "USD", 10_000_000 * ONE).await.unwrap();
    au.credit("fay", "AUD", 10_000_000 * ONE).await.unwrap();
    let multi =
        MultiVenue::new(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])]).unwrap();
    // The same venue-side id at both: place at the one behind until the
    // ids meet (the sandboxes number from their start time, one id per
    // resting order).
    let a = us
        .place_order(buy("fay", "SOL-USD", 100, 100))
        .await
        .unwrap();
    let mut b = au
        .place_order(buy("fay", "SOL-AUD", 100, 100))
        .await
        .unwrap();
    let (an, mut bn) = (
        a.order_id[2..].parse::<u64>().unwrap(),
        b.order_id[2..].parse::<u64>().unwrap(),
    );
    if bn > an {
        // au is ahead: place at us until it reaches au's id.
        let mut last = an;
        while last < bn {
            let r = us
                .place_order(buy("fay", "SOL-USD", 100, 100))
                .await
                .unwrap();
            last = r.order_id[2..].parse().unwrap();
        }
        assert_eq!(last, bn, "one id per resting order");
    } else {
        while bn < an {
            b = au
                .place_order(buy("fay", "SOL-AUD", 100, 100))
                .await
                .unwrap();
            bn = b.order_id[2..].parse().unwrap();
        }
        assert_eq!(bn, an, "one id per resting order");
    }
    let shared = b.order_id.clone();
    match multi.cancel_order("fay", &shared).await {
        Err(VenueError::InvalidOrder(why)) => assert!(why.contains("us and au"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_asset_is_funded_where_a_pair_of_it_trades() {
    let mut config = SandboxConfig {
        events_per_sec: 0,
        ..SandboxConfig::default()
    };
    config.assets.push(crate::venue::AssetSpec {
        symbol: "AUD".into(),
        scale: 8,
    });
    let us = SandboxVenue::start(config).unwrap();
    let au = sandbox(true);
    let multi =
        MultiVenue::new(vec![part("us", &us, &[], &[]), part("au", &au, &[], &[])]).unwrap();
    assert_eq!(
        multi.funding_venue("AUD"),
        Some("au"),
        "us lists AUD, trades none"
    );
    assert_eq!(
        multi.funding_venue("BTC"),
        Some("us"),
        "both trade BTC: the first"
    );
}
