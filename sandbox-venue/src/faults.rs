//! Fault injection for the hub's and the Shift adapter's resilience tests
//! (TEST-ONLY controls, reached through the token-protected `/admin/*`
//! routes): pause every market-data subscription, and drop the next book
//! DELTA of a pair for the subscribers of that moment. Latency injection
//! lives in the sandbox itself (`SandboxVenue::set_latency`).
//!
//! Nothing here touches the venue's books or sequence numbers: a dropped
//! delta is still applied by the venue, so the subscriber sees a real seq
//! gap and must resync, exactly as after a lost upstream message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The switches shared by every subscription of one server.
#[derive(Debug)]
pub struct FaultControls {
    /// Market data is held back until this instant (`None`: flowing).
    paused_until: watch::Sender<Option<Instant>>,
    /// Per pair, how many "drop the next delta" requests were made so far.
    drop_requests: HashMap<String, AtomicU64>,
}

/// A subscription's view of the switches: which drop requests it has
/// already honoured and the pause it is waiting on.
#[derive(Debug)]
pub struct FaultCursor {
    drops_honoured: u64,
    pause: watch::Receiver<Option<Instant>>,
}

impl FaultControls {
    /// Controls for the venue's `pairs` (other pairs cannot be targeted).
    pub fn new<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Self {
        FaultControls {
            paused_until: watch::channel(None).0,
            drop_requests: pairs
                .into_iter()
                .map(|p| (p.to_string(), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Holds back every market-data message (book and trade
    /// subscriptions, current and new) for `pause` from now; a later call
    /// replaces the deadline (`Duration::ZERO` resumes at once). Held
    /// messages are delivered afterwards, or replaced by a resync snapshot
    /// if the subscriber's venue stream overflowed meanwhile.
    pub fn pause_market_data(&self, pause: Duration) {
        self.paused_until.send_replace(Some(Instant::now() + pause));
    }

    /// Makes every subscriber of `pair` that exists now skip the next book
    /// DELTA it would send (each call skips one more). False for a pair the
    /// venue does not trade.
    pub fn drop_next_delta(&self, pair: &str) -> bool {
        match self.drop_requests.get(pair) {
            Some(count) => {
                count.fetch_add(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// A cursor for a subscription to `pair` starting now: requests made
    /// before this call do not affect it.
    pub fn cursor(&self, pair: &str) -> FaultCursor {
        FaultCursor {
            drops_honoured: self.drop_requests_of(pair),
            pause: self.paused_until.subscribe(),
        }
    }

    fn drop_requests_of(&self, pair: &str) -> u64 {
        self.drop_requests
            .get(pair)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// True when the subscription must skip this delta of `pair` (and
    /// counts it as honoured).
    pub fn take_drop(&self, pair: &str, cursor: &mut FaultCursor) -> bool {
        if self.drop_requests_of(pair) > cursor.drops_honoured {
            cursor.drops_honoured += 1;
            true
        } else {
            false
        }
    }
}

impl FaultCursor {
    /// Returns once market data is not paused (at once if it is not).
    /// Wakes early if the pause is shortened.
    pub async fn wait_while_paused(&mut self) {
        loop {
            let until = *self.pause.borrow_and_update();
            match until {
                Some(deadline) if deadline > Instant::now() => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        changed = self.pause.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                    }
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_request_affects_existing_cursors_once_and_new_cursors_never() {
        let faults = FaultControls::new(["BTC-USD", "ETH-USD"]);
        let mut old = faults.cursor("BTC-USD");
        assert!(faults.drop_next_delta("BTC-USD"));
        assert!(!faults.drop_next_delta("XRP-USD"));
        let mut new = faults.cursor("BTC-USD");
        let mut other = faults.cursor("ETH-USD");
        assert!(faults.take_drop("BTC-USD", &mut old));
        assert!(!faults.take_drop("BTC-USD", &mut old));
        assert!(!faults.take_drop("BTC-USD", &mut new));
        assert!(!faults.take_drop("ETH-USD", &mut other));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_until_its_deadline_and_can_be_shortened() {
        let faults = FaultControls::new(["BTC-USD"]);
        let mut cursor = faults.cursor("BTC-USD");
        let start = Instant::now();
        cursor.wait_while_paused().await;
        assert_eq!(Instant::now(), start);

        faults.pause_market_data(Duration::from_millis(300));
        cursor.wait_while_paused().await;
        assert!(Instant::now() - start >= Duration::from_millis(300));

        faults.pause_market_data(Duration::from_secs(60));
        let resumed = Instant::now();
        let waiter = tokio::spawn(async move { cursor.wait_while_paused().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        faults.pause_market_data(Duration::ZERO);
        waiter.await.unwrap();
        assert!(Instant::now() - resumed < Duration::from_secs(1));
    }
}
