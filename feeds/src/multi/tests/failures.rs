//! One venue down, an id two venues know, and where an asset is funded.

use super::*;

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
