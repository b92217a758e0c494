//! Orders, balances and events: each reaches the venue that owns it, and
//! the merged streams carry every venue's share.

use super::*;

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
