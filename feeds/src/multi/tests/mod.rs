//! A [`MultiVenue`] over two in-process sandboxes: the default USD market
//! ("us") and the AUD market ("au"). Both list BTC, ETH and SOL. `setup`:
//! which sets of venues fit together; `routing`: orders, balances and
//! events reaching the right venue; `failures`: a venue down, ids two
//! venues know, where an asset is funded.

use super::*;
use crate::sandbox::{SandboxConfig, SandboxVenue};
use crate::sandbox_pairs::{aud_assets, aud_pairs};
use orderbook::engine::{OrderType, TimeInForce};
use orderbook::{Price, Qty, Side};
use std::time::Duration;

mod failures;
mod routing;
mod setup;

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
