//! Users' orders against a fast simulation (4,000 actions a second), 40
//! users at once: resting buys far below the market, cancelled in turn,
//! and market buys and sells. Nothing in the venue panics (the ledger's
//! invariants are `expect`s: a fill settled twice once broke one when a
//! simulator step that made no engine call settled the user call's
//! events again), and once every order is cancelled no user has funds
//! still locked. `NAX_SANDBOX_STRESS_SECS` sets the length (default 10).
//!
//! A soak, not that bug's regression test: the unfixed venue panicked
//! after 20-40 s of it in a release build, so 10 s in a debug build
//! rarely meets it; `sandbox::simulator::tests::a_step_leaves_only_its_own_events`
//! is the deterministic test. Its panic hook is process-wide: run it with
//! nextest (one process per test), as `scripts/test.sh` does.

use feeds::venue::PlaceOrder;
use feeds::{SandboxConfig, SandboxVenue, Venue};
use orderbook::engine::TimeInForce;
use orderbook::Side;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const USD: u64 = 100_000_000;
const BTC: u64 = 100_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_against_a_fast_simulation_leave_no_panic_and_nothing_locked() {
    let panics = Arc::new(AtomicUsize::new(0));
    let p = panics.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        p.fetch_add(1, Ordering::SeqCst);
        prev(info);
    }));
    let secs: u64 = std::env::var("NAX_SANDBOX_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let v = SandboxVenue::start(SandboxConfig {
        events_per_sec: 4000,
        seed: std::env::var("STRESS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let (_, book) = v.book("BTC-USD").unwrap();
    let half = book.best_bid().unwrap().price.0 / 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for u in 0..40 {
        let v = v.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("u{u}");
            v.credit(&user, "USD", 10_000_000 * USD).await.unwrap();
            v.credit(&user, "BTC", 1_000 * BTC).await.unwrap();
            let mut n = 0u64;
            let mut resting = std::collections::VecDeque::new();
            while std::time::Instant::now() < deadline {
                n += 1;
                // Resting orders GTC, the others IOC.
                let order = |side, price: Option<u64>| PlaceOrder {
                    time_in_force: if price.is_some() {
                        TimeInForce::Gtc
                    } else {
                        TimeInForce::Ioc
                    },
                    ..crate::sandbox_orders::order(&user, side, price, 10)
                };
                if n.is_multiple_of(2) {
                    if let Ok(r) = v.place_order(order(Side::Buy, Some(half))).await {
                        resting.push_back(r.order_id);
                    }
                } else {
                    let side = if n % 4 == 1 { Side::Buy } else { Side::Sell };
                    let _ = v.place_order(order(side, None)).await;
                }
                if resting.len() > 20 {
                    let id = resting.pop_front().unwrap();
                    let _ = v.cancel_order(&user, &id).await;
                }
                if n.is_multiple_of(50) {
                    tokio::task::yield_now().await;
                }
            }
            for id in resting {
                let _ = v.cancel_order(&user, &id).await;
            }
            user
        }));
    }
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.expect("a user's task ends"));
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a panic in the venue");
    for user in users {
        for (asset, balance) in v.balances(&user).await.unwrap() {
            assert_eq!(
                balance.locked, 0,
                "{user}'s {asset} still locked: {balance:?}"
            );
        }
    }
    v.stop().await;
}
