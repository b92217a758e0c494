//! User orders through the sandbox venue: funds checked and locked at once,
//! fills settled exactly, books and streams updated, other users' orders
//! invisible. The simulation is off so every number is known.

use feeds::venue::{Balance, PlaceOrder, UserEvent};
use feeds::{MarketEvent, MarketFeed, SandboxConfig, SandboxVenue, Venue, VenueError};
use orderbook::engine::{OrderStatus, OrderType, TimeInForce};
use orderbook::{Price, Qty, Side};

const USD: u64 = 100_000_000; // 1 USD at 8 decimals
const BTC: u64 = 100_000_000;

fn quiet_venue() -> SandboxVenue {
    SandboxVenue::start(SandboxConfig {
        events_per_sec: 0,
        ..SandboxConfig::default()
    })
    .expect("default config")
}

pub(crate) fn order(user: &str, side: Side, price: Option<u64>, qty: u64) -> PlaceOrder {
    PlaceOrder {
        client_id: None,
        user: user.into(),
        pair: "BTC-USD".into(),
        side,
        order_type: if price.is_some() {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        price: price.map(Price),
        qty: Qty(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    }
}

async fn balance(v: &SandboxVenue, user: &str, asset: &str) -> Balance {
    v.balances(user)
        .await
        .unwrap()
        .into_iter()
        .find(|(a, _)| a == asset)
        .unwrap()
        .1
}

#[tokio::test]
async fn marketable_buy_fills_at_maker_prices_and_settles_exactly() {
    let v = quiet_venue();
    let (_, book) = v.book("BTC-USD").unwrap();
    let best_ask = book.best_ask().unwrap();
    v.credit("alice", "USD", 1_000_000 * USD).await.unwrap();
    // Buy exactly the best ask level, with a limit well above it.
    let limit = best_ask.price.0 + 100_000;
    let report = v
        .place_order(order("alice", Side::Buy, Some(limit), best_ask.qty.0))
        .await
        .unwrap();
    assert_eq!(report.status, OrderStatus::Filled);
    assert_eq!(report.filled_qty, best_ask.qty);
    let notional = u128::from(best_ask.price.0) * u128::from(best_ask.qty.0);
    assert_eq!(report.filled_notional_raw, notional);
    // price scale 2 + qty scale 6 = 8 = USD scale: the notional is the USD amount.
    let usd = balance(&v, "alice", "USD").await;
    assert_eq!(
        usd,
        Balance {
            available: 1_000_000 * USD - notional as u64,
            locked: 0
        }
    );
    let btc = balance(&v, "alice", "BTC").await;
    assert_eq!(
        btc,
        Balance {
            available: best_ask.qty.0 * 100,
            locked: 0
        }
    );
    let (_, after) = v.book("BTC-USD").unwrap();
    assert!(after.best_ask().unwrap().price > best_ask.price);
}

#[tokio::test]
async fn insufficient_funds_changes_nothing() {
    let v = quiet_venue();
    v.credit("bob", "USD", 10 * USD).await.unwrap();
    let (seq, before) = v.book("BTC-USD").unwrap();
    let err = v
        .place_order(order("bob", Side::Buy, Some(6_000_000), 1_000_000))
        .await
        .unwrap_err();
    assert_eq!(err, VenueError::InsufficientFunds);
    assert_eq!(
        balance(&v, "bob", "USD").await,
        Balance {
            available: 10 * USD,
            locked: 0
        }
    );
    assert!(v.orders("bob").await.unwrap().is_empty());
    assert_eq!(v.book("BTC-USD").unwrap(), (seq, before));
    let err = v
        .place_order(order("bob", Side::Sell, Some(7_000_000), 10))
        .await
        .unwrap_err();
    assert_eq!(err, VenueError::InsufficientFunds);
}

#[tokio::test]
async fn resting_order_locks_funds_and_cancel_releases_them() {
    let v = quiet_venue();
    v.credit("carol", "BTC", 2 * BTC).await.unwrap();
    // Sell 1 BTC far above the market: rests.
    let r = v
        .place_order(order("carol", Side::Sell, Some(9_000_000), 1_000_000))
        .await
        .unwrap();
    assert_eq!(r.status, OrderStatus::Open);
    assert_eq!(
        balance(&v, "carol", "BTC").await,
        Balance {
            available: BTC,
            locked: BTC
        }
    );
    let (_, book) = v.book("BTC-USD").unwrap();
    assert_eq!(book.qty_at(Side::Sell, Price(9_000_000)), Qty(1_000_000));

    assert_eq!(
        v.cancel_order("mallory", &r.order_id).await.unwrap_err(),
        VenueError::OrderNotFound
    );
    assert_eq!(
        v.order("mallory", &r.order_id).await.unwrap_err(),
        VenueError::OrderNotFound
    );
    let c = v.cancel_order("carol", &r.order_id).await.unwrap();
    assert_eq!(c.status, OrderStatus::Cancelled);
    assert_eq!(
        balance(&v, "carol", "BTC").await,
        Balance {
            available: 2 * BTC,
            locked: 0
        }
    );
    assert_eq!(
        v.cancel_order("carol", &r.order_id).await.unwrap_err(),
        VenueError::OrderNotOpen
    );
    assert_eq!(
        v.cancel_order("carol", "O-999999").await.unwrap_err(),
        VenueError::OrderNotFound
    );
    let (_, book) = v.book("BTC-USD").unwrap();
    assert_eq!(book.qty_at(Side::Sell, Price(9_000_000)), Qty(0));
}

#[tokio::test]
async fn market_buy_locks_exactly_what_it_takes() {
    let v = quiet_venue();
    let (_, book) = v.book("BTC-USD").unwrap();
    let top2: Vec<_> = book.top_n(Side::Sell, 2).collect();
    let qty = top2[0].qty.0 + top2[1].qty.0;
    let cost: u128 = top2
        .iter()
        .map(|l| u128::from(l.price.0) * u128::from(l.qty.0))
        .sum();
    // Exactly enough money: a market order for two levels fills.
    v.credit("dan", "USD", cost as u64).await.unwrap();
    let r = v
        .place_order(order("dan", Side::Buy, None, qty))
        .await
        .unwrap();
    assert_eq!(r.status, OrderStatus::Filled);
    assert_eq!(
        balance(&v, "dan", "USD").await,
        Balance {
            available: 0,
            locked: 0
        }
    );
    assert_eq!(balance(&v, "dan", "BTC").await.available, qty * 100);
}

#[tokio::test]
async fn invalid_orders_are_refused() {
    let v = quiet_venue();
    v.credit("erin", "USD", 1_000 * USD).await.unwrap();
    let below_min = order("erin", Side::Buy, Some(100), 1);
    assert!(matches!(
        v.place_order(below_min).await,
        Err(VenueError::InvalidOrder(_))
    ));
    let mut no_price = order("erin", Side::Buy, Some(100), 100);
    no_price.price = None;
    no_price.order_type = OrderType::Limit;
    assert!(matches!(
        v.place_order(no_price).await,
        Err(VenueError::InvalidOrder(_))
    ));
    let mut unknown = order("erin", Side::Buy, Some(100), 100);
    unknown.pair = "FOO-BAR".into();
    assert_eq!(
        v.place_order(unknown).await.unwrap_err(),
        VenueError::UnknownPair("FOO-BAR".into())
    );
    assert!(matches!(
        v.credit("erin", "USD", 0).await,
        Err(VenueError::InvalidAmount(_))
    ));
    assert_eq!(
        v.debit("erin", "USD", 2_000 * USD).await.unwrap_err(),
        VenueError::InsufficientFunds
    );
    assert_eq!(
        v.credit("erin", "DOGE", 1).await.unwrap_err(),
        VenueError::UnknownAsset("DOGE".into())
    );
    assert_eq!(
        balance(&v, "erin", "USD").await,
        Balance {
            available: 1_000 * USD,
            locked: 0
        }
    );
}

#[tokio::test]
async fn user_and_market_streams_carry_the_order() {
    let v = quiet_venue();
    let mut market = v.subscribe().await.unwrap();
    let mut user = v.user_events().await.unwrap();
    v.credit("fay", "USD", 1_000_000 * USD).await.unwrap();
    let (_, book) = v.book("BTC-USD").unwrap();
    let ask = book.best_ask().unwrap();
    let r = v
        .place_order(order("fay", Side::Buy, Some(ask.price.0), ask.qty.0))
        .await
        .unwrap();

    let mut saw = (false, false, false);
    while let Ok(e) = user.try_recv() {
        match e {
            UserEvent::Order(o) if o.order_id == r.order_id && o.status == OrderStatus::Filled => {
                saw.0 = true
            }
            UserEvent::Fill(f) if f.order_id == r.order_id => {
                assert_eq!((f.price, f.qty, f.maker), (ask.price, ask.qty, false));
                saw.1 = true
            }
            UserEvent::Balance { user, asset, .. } if user == "fay" && asset == "BTC" => {
                saw.2 = true
            }
            _ => {}
        }
    }
    assert_eq!(saw, (true, true, true));

    let (mut trade, mut delta) = (false, false);
    while let Ok(e) = market.events.try_recv() {
        match e {
            MarketEvent::Trades { pair, trades, .. } if &*pair == "BTC-USD" => {
                assert_eq!(
                    (trades[0].price, trades[0].qty, trades[0].side),
                    (ask.price, ask.qty, Side::Buy)
                );
                trade = true;
            }
            MarketEvent::Delta { pair, deltas, .. } if &*pair == "BTC-USD" => {
                assert!(deltas
                    .iter()
                    .any(|d| d.price == ask.price && d.qty.is_zero()));
                delta = true;
            }
            _ => {}
        }
    }
    assert!(trade && delta);
}

#[tokio::test]
async fn orders_are_listed_newest_first_per_user() {
    let v = quiet_venue();
    v.credit("gus", "BTC", BTC).await.unwrap();
    let a = v
        .place_order(order("gus", Side::Sell, Some(9_000_000), 10))
        .await
        .unwrap();
    let b = v
        .place_order(order("gus", Side::Sell, Some(9_000_100), 10))
        .await
        .unwrap();
    let ids: Vec<_> = v
        .orders("gus")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(ids, vec![b.order_id, a.order_id]);
    assert!(v.orders("nobody").await.unwrap().is_empty());
}

/// A halted pair refuses new orders with the operator's reason, still
/// cancels, tells every market stream (after each snapshot, and on the
/// change), and takes orders again once resumed; other pairs trade on.
#[tokio::test]
async fn a_halted_pair_refuses_orders_but_cancels_and_streams_say_so() {
    use feeds::TradingStatus;
    let v = quiet_venue();
    v.credit("alice", "USD", 1_000_000 * USD).await.unwrap();
    let resting = v
        .place_order(order("alice", Side::Buy, Some(100_000), 1_000_000))
        .await
        .unwrap();
    let mut stream = v.subscribe().await.unwrap();
    let next_for_btc = |stream: &mut feeds::MarketStream| {
        let mut out = None;
        while out.is_none() {
            let event = stream.events.try_recv().expect("an event is queued");
            if &**event.pair() == "BTC-USD" {
                out = Some(event);
            }
        }
        out.unwrap()
    };
    assert!(matches!(
        next_for_btc(&mut stream),
        MarketEvent::Snapshot { .. }
    ));
    assert!(matches!(
        next_for_btc(&mut stream),
        MarketEvent::Status {
            status: TradingStatus::Open,
            ..
        }
    ));

    v.halt("BTC-USD", "circuit breaker").unwrap();
    assert!(matches!(
        next_for_btc(&mut stream),
        MarketEvent::Status { status: TradingStatus::Halted { ref reason }, .. } if reason == "circuit breaker"
    ));
    assert_eq!(
        v.place_order(order("alice", Side::Buy, Some(100_000), 1_000_000))
            .await,
        Err(VenueError::MarketHalted {
            pair: "BTC-USD".into(),
            reason: "circuit breaker".into()
        })
    );
    let mut eth = order("alice", Side::Buy, Some(100_000), 1_000_000);
    eth.pair = "ETH-USD".into();
    v.place_order(eth).await.expect("another pair still trades");
    let cancelled = v.cancel_order("alice", &resting.order_id).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    // A new subscriber learns the halt right after its snapshot.
    let mut late = v.subscribe().await.unwrap();
    assert!(matches!(
        next_for_btc(&mut late),
        MarketEvent::Snapshot { .. }
    ));
    assert!(matches!(
        next_for_btc(&mut late),
        MarketEvent::Status {
            status: TradingStatus::Halted { .. },
            ..
        }
    ));

    v.resume("BTC-USD").unwrap();
    // The cancel's book change came first.
    assert!(matches!(
        next_for_btc(&mut stream),
        MarketEvent::Delta { .. }
    ));
    assert!(matches!(
        next_for_btc(&mut stream),
        MarketEvent::Status {
            status: TradingStatus::Open,
            ..
        }
    ));
    assert_eq!(v.trading_status("BTC-USD"), Some(TradingStatus::Open));
    v.place_order(order("alice", Side::Buy, Some(100_000), 1_000_000))
        .await
        .expect("trading again");
    assert!(v.halt("FOO-BAR", "x").is_err());
}

/// A user's finished orders past the newest `KEEP_FINISHED` are
/// forgotten, so a long-running sandbox's memory stays bounded; open
/// orders are kept however old, and still cancel; a cancel of a
/// forgotten order is `OrderNotOpen`.
#[tokio::test]
async fn a_user_s_finished_orders_are_bounded_and_open_ones_always_kept() {
    use feeds::sandbox::KEEP_FINISHED;
    let v = quiet_venue();
    v.credit("alice", "USD", 1_000_000 * USD).await.unwrap();
    // The oldest order: a buy at 1.00 USD, far below the book, resting.
    let resting = v
        .place_order(order("alice", Side::Buy, Some(100), 1_000))
        .await
        .unwrap();
    assert_eq!(resting.status, OrderStatus::Open);
    // Then many that end at once: IOC buys at the same price, nothing to
    // fill them, cancelled as they arrive.
    let mut ended = Vec::new();
    for _ in 0..5 * KEEP_FINISHED {
        let mut ioc = order("alice", Side::Buy, Some(100), 1_000);
        ioc.time_in_force = TimeInForce::Ioc;
        let report = v.place_order(ioc).await.unwrap();
        assert!(report.status.is_final(), "{:?}", report.status);
        ended.push(report.order_id);
    }
    let listed: Vec<String> = v
        .orders("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.order_id)
        .collect();
    assert!(
        (KEEP_FINISHED + 1..=2 * KEEP_FINISHED + 1).contains(&listed.len()),
        "{} orders remembered",
        listed.len()
    );
    assert!(listed.contains(&resting.order_id));
    // The newest finished orders are all there, newest first.
    assert_eq!(listed[..KEEP_FINISHED], {
        let mut newest = ended[ended.len() - KEEP_FINISHED..].to_vec();
        newest.reverse();
        newest
    });
    assert!(matches!(
        v.order("alice", &ended[0]).await,
        Err(VenueError::OrderNotFound)
    ));
    // A cancel of a forgotten order is told it is no longer open, as for
    // a remembered finished one: "not found" would read as a lost order.
    assert!(matches!(
        v.cancel_order("alice", &ended[0]).await,
        Err(VenueError::OrderNotOpen)
    ));
    // Another user never placed it: not found for them.
    assert!(matches!(
        v.cancel_order("bob", &ended[0]).await,
        Err(VenueError::OrderNotFound)
    ));
    let cancelled = v.cancel_order("alice", &resting.order_id).await.unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    // Funds: everything released (the IOC orders held nothing after).
    assert_eq!(balance(&v, "alice", "USD").await.locked, 0);
}
