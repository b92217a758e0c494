//! The Shift adapter against the standalone venue over real sockets:
//! connecting (and refusing a bad token or a dead endpoint clearly), the
//! streamed books matching the venue's own `orderBook`, orders, balances
//! and user events through the adapter, and the circuit breaker around a
//! slow venue.

use crate::shift_common;

use feeds::sandbox_pairs::{default_assets, default_pairs};
use feeds::shift::{ConnectError, ShiftConfig, ShiftToken, ShiftVenue};
use feeds::venue::{Balance, PlaceOrder, UserEvent};
use feeds::{MarketEvent, MarketFeed, SnapshotReason, Venue, VenueError};
use orderbook::engine::{OrderReason, OrderStatus, OrderType, TimeInForce};
use orderbook::{L2Book, Price, Qty, Side};
use shift_common::*;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const USD: u64 = 100_000_000; // 1 USD at 8 decimals

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn connect_fetches_the_venues_markets_and_assets() {
    let server = start_venue(any_port(), 0).await;
    let shift = ShiftVenue::connect(config(server.addr())).await.unwrap();
    let expected: Vec<_> = default_pairs().into_iter().map(|p| p.spec).collect();
    assert_eq!(shift.markets(), expected);
    assert_eq!(shift.assets(), default_assets());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_and_a_dead_endpoint_are_clear_errors() {
    let server = start_venue(any_port(), 0).await;
    let mut wrong = config(server.addr());
    wrong.token = ShiftToken::new("not-the-token");
    let err = ShiftVenue::connect(wrong).await.unwrap_err();
    assert_eq!(err, ConnectError::TokenRefused);
    assert!(err.to_string().contains("token"), "{err}");
    let addr = server.addr();
    server.stop().await.unwrap();

    let err = ShiftVenue::connect(config(addr)).await.unwrap_err();
    match &err {
        ConnectError::Unreachable { endpoint, cause } => {
            assert_eq!(endpoint, &format!("http://{addr}/graphql"));
            assert!(cause.to_lowercase().contains("refused"), "{cause}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let bad = ShiftConfig::new("127.0.0.1:1", ShiftToken::new("t"));
    assert!(matches!(
        ShiftVenue::connect(bad).await,
        Err(ConnectError::Config(_))
    ));
}

#[tokio::test]
async fn streamed_books_equal_the_venues_order_book_at_the_same_seq() {
    let server = start_venue(any_port(), 400).await;
    let shift = ShiftVenue::connect(config(server.addr())).await.unwrap();
    let mut stream = shift.subscribe().await.unwrap();
    let spec = shift.markets()[0].clone();
    let pair = spec.symbol.clone();
    let mut mirror = Mirror::default();
    // Every book state of the pair the stream went through, by seq.
    let mut history: HashMap<u64, L2Book> = HashMap::new();
    let record = |mirror: &mut Mirror, history: &mut HashMap<u64, L2Book>, event: &MarketEvent| {
        mirror.apply(event);
        if let Some((seq, book)) = mirror.books.get(&pair) {
            history.insert(*seq, book.clone());
        }
    };
    while mirror.books.len() < shift.markets().len() {
        let event = next_event(&mut stream).await;
        record(&mut mirror, &mut history, &event);
    }
    for pair in mirror.books.keys() {
        assert_eq!(mirror.reasons(pair), [SnapshotReason::Subscribe]);
    }
    for _ in 0..3 {
        let (seq, venue_book) = order_book(server.addr(), &spec).await;
        while mirror.books[&pair].0 < seq {
            let event = next_event(&mut stream).await;
            record(&mut mirror, &mut history, &event);
        }
        let streamed = history
            .get(&seq)
            .unwrap_or_else(|| panic!("the stream skipped seq {seq}"));
        assert_eq!(streamed.levels(), venue_book.levels(), "book at seq {seq}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shift.stats().gaps_detected, 0, "{:?}", shift.stats());
    drop(stream);
    server.stop().await.unwrap();
}

fn limit(user: &str, client_id: &str, side: Side, price: u64, qty: u64) -> PlaceOrder {
    PlaceOrder {
        user: user.into(),
        client_id: Some(client_id.into()),
        pair: "BTC-USD".into(),
        side,
        order_type: OrderType::Limit,
        price: Some(Price(price)),
        qty: Qty(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

/// Waits for the first user event `matches` accepts, skipping others.
async fn user_event(
    events: &mut UnboundedReceiver<UserEvent>,
    matches: impl Fn(&UserEvent) -> bool,
) -> UserEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.expect("user events still open");
            if matches(&e) {
                return e;
            }
        }
    })
    .await
    .expect("the user event within the wait")
}

#[tokio::test]
async fn orders_balances_and_user_events_go_through_the_adapter() {
    let server = start_venue(any_port(), 0).await;
    let shift = ShiftVenue::connect(config(server.addr())).await.unwrap();
    let mut events = shift.user_events().await.unwrap();
    // The subscription starts on the venue's next poll of the connection.
    credit_until_event(&shift, &mut events, "user-shift-warm-up").await;
    let user = "user-shift-1";

    let credited = shift.credit(user, "USD", 1_000 * USD).await.unwrap();
    assert_eq!(
        credited,
        Balance {
            available: 1_000 * USD,
            locked: 0
        }
    );
    let e = user_event(&mut events, |e| matches!(e, UserEvent::Balance { .. })).await;
    assert_eq!(
        e,
        UserEvent::Balance {
            user: user.into(),
            asset: "USD".into(),
            balance: credited,
            venue_ts: match &e {
                UserEvent::Balance { venue_ts, .. } => *venue_ts,
                _ => unreachable!(),
            },
        }
    );
    let balances = shift.balances(user).await.unwrap();
    let symbols: Vec<_> = balances.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(symbols, ["USD", "BTC", "ETH", "SOL"]);
    assert_eq!(balances[0].1.available, 1_000 * USD);
    assert_eq!(balances[1].1, Balance::default());

    // A bid far below the market rests: 0.01 BTC at 100.00 locks 1 USD.
    let resting = shift
        .place_order(limit(user, "api-1", Side::Buy, 10_000, 10_000))
        .await
        .unwrap();
    assert_eq!(resting.status, OrderStatus::Open);
    assert_eq!(resting.client_id.as_deref(), Some("api-1"));
    assert_eq!(
        (resting.price, resting.qty),
        (Some(Price(10_000)), Qty(10_000))
    );
    assert_eq!(
        (resting.filled_qty, resting.filled_notional_raw),
        (Qty(0), 0)
    );
    let e = user_event(&mut events, |e| matches!(e, UserEvent::Order(_))).await;
    let UserEvent::Order(reported) = e else {
        unreachable!()
    };
    assert_eq!(reported.order_id, resting.order_id);
    assert_eq!(reported.client_id.as_deref(), Some("api-1"));
    assert_eq!(shift.order(user, &resting.order_id).await.unwrap(), resting);
    assert_eq!(shift.orders(user).await.unwrap(), vec![resting.clone()]);
    assert_eq!(shift.balances(user).await.unwrap()[0].1.locked, USD);

    let cancelled = shift.cancel_order(user, &resting.order_id).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.reason, Some(OrderReason::UserCancel));
    assert_eq!(
        shift.cancel_order(user, &resting.order_id).await,
        Err(VenueError::OrderNotOpen)
    );
    assert_eq!(
        shift.cancel_order("someone-else", &resting.order_id).await,
        Err(VenueError::OrderNotFound)
    );
    assert_eq!(
        shift.order(user, "123456").await,
        Err(VenueError::OrderNotFound)
    );

    // A market buy of 0.001 BTC takes the seeded asks: filled, with fills.
    let taker = PlaceOrder {
        order_type: OrderType::Market,
        price: None,
        qty: Qty(1_000),
        ..limit(user, "api-2", Side::Buy, 0, 0)
    };
    let filled = shift.place_order(taker).await.unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.filled_qty, Qty(1_000));
    let fill = user_event(&mut events, |e| matches!(e, UserEvent::Fill(_))).await;
    let UserEvent::Fill(fill) = fill else {
        unreachable!()
    };
    assert_eq!(fill.order_id, filled.order_id);
    assert_eq!(fill.client_id.as_deref(), Some("api-2"));
    assert!(!fill.maker);
    // The notional is exact at price_scale + qty_scale (2 + 6) decimals.
    assert!(filled.filled_notional_raw >= u128::from(fill.price.0) * u128::from(fill.qty.0));

    assert_eq!(
        shift
            .place_order(limit(user, "api-3", Side::Buy, 6_400_000, 1_000_000_000))
            .await,
        Err(VenueError::InsufficientFunds)
    );
    let unknown_pair = PlaceOrder {
        pair: "XRP-USD".into(),
        ..limit(user, "api-4", Side::Buy, 1, 1)
    };
    assert_eq!(
        shift.place_order(unknown_pair).await,
        Err(VenueError::UnknownPair("XRP-USD".into()))
    );
    assert_eq!(
        shift.debit(user, "USD", 1_000_000 * USD).await,
        Err(VenueError::InsufficientFunds)
    );
    assert_eq!(
        shift.credit(user, "DOGE", 1).await,
        Err(VenueError::UnknownAsset("DOGE".into()))
    );
    assert!(matches!(
        shift.credit(user, "USD", 0).await,
        Err(VenueError::InvalidAmount(_))
    ));
    assert!(!shift.breaker_open(), "business errors are answers");
    server.stop().await.unwrap();
}

/// Per-attempt timeout of the breaker test: a healthy call on two busy
/// cores fits in it, so the venue's latency is the only way to reach it.
const ATTEMPT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_slow_venue_opens_the_breaker_which_fails_fast_then_recovers() {
    let server = start_venue(any_port(), 0).await;
    let mut c = config(server.addr());
    c.request_timeout = ATTEMPT;
    c.breaker.attempts = 1;
    // Open long enough for the refused call below to come in while open,
    // however slow the machine.
    c.breaker.open_for = Duration::from_secs(3);
    let open_for = c.breaker.open_for;
    let shift = ShiftVenue::connect(c).await.unwrap();
    // Far beyond the timeout: every call that reaches the venue times out.
    set_latency(server.addr(), 5_000).await;
    for _ in 0..3 {
        let err = shift.balances("u").await.unwrap_err();
        assert!(
            matches!(&err, VenueError::Unavailable(m) if m.contains("within 1000 ms")),
            "{err:?}"
        );
    }
    assert!(shift.breaker_open());
    let started = std::time::Instant::now();
    let err = shift.credit("u", "USD", USD).await.unwrap_err();
    assert!(
        matches!(&err, VenueError::Unavailable(m) if m.contains("breaker open")),
        "{err:?}"
    );
    // A call that reached the venue would have waited for the timeout.
    assert!(
        started.elapsed() < ATTEMPT,
        "fails fast, without calling the venue: {:?}",
        started.elapsed()
    );
    set_latency(server.addr(), 0).await;
    // Refused at once until the open period is over; then one probe
    // closes the breaker.
    tokio::time::sleep(open_for).await;
    let deadline = std::time::Instant::now() + WAIT;
    let balances = loop {
        match shift.balances("u").await {
            Err(VenueError::Unavailable(m)) if m.contains("breaker open") => {
                assert!(std::time::Instant::now() < deadline, "still open: {m}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(balances.len(), 4);
    assert!(!shift.breaker_open());
    server.stop().await.unwrap();
}
