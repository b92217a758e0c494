//! [`Limiter`]: the client side of HubSpot's rolling request window
//! (docs/HUBSPOT.md, "Rate limits"), so the worker never sends over it.
//!
//! A request holds a slot from the moment it is sent until one window
//! after its answer arrived. HubSpot counts a request when it arrives,
//! which is between the two, so at most `limit` requests can ever be in
//! any window HubSpot looks at, whatever the network delays. A `429`
//! still received (another client of the same app, or a fault) closes
//! the gate for the time it names ([`Limiter::pause`]).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Shared by every request of one client.
pub struct Limiter {
    limit: usize,
    window: Duration,
    state: Mutex<State>,
    freed: Notify,
}

struct State {
    /// Requests sent and not answered yet.
    in_flight: usize,
    /// When each answered request of the last window was answered.
    answered: VecDeque<Instant>,
    /// No request before this (after a `429`).
    closed_until: Option<Instant>,
}

/// A slot of the window; dropping it marks the request answered.
pub struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut state = self.limiter.state.lock();
            state.in_flight -= 1;
            state.answered.push_back(Instant::now());
        }
        self.limiter.freed.notify_waiters();
    }
}

impl Limiter {
    /// At most `limit` (at least 1) requests per rolling `window`.
    pub fn new(limit: usize, window: Duration) -> Arc<Limiter> {
        Arc::new(Limiter {
            limit: limit.max(1),
            window,
            state: Mutex::new(State {
                in_flight: 0,
                answered: VecDeque::new(),
                closed_until: None,
            }),
            freed: Notify::new(),
        })
    }

    /// The window the limit applies to.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Registered before the check, so a slot freed between the
            // check and the wait is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let wait = {
                let mut state = self.state.lock();
                let now = Instant::now();
                while state
                    .answered
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    state.answered.pop_front();
                }
                match state.closed_until {
                    Some(until) if until > now => Some(until - now),
                    _ if state.in_flight + state.answered.len() < self.limit => {
                        state.in_flight += 1;
                        return Permit {
                            limiter: self.clone(),
                        };
                    }
                    // Full: the oldest answered slot frees first, unless
                    // every slot is in flight (then an answer frees one).
                    _ => state
                        .answered
                        .front()
                        .map(|t| self.window.saturating_sub(now.duration_since(*t))),
                }
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = freed => {}
                    }
                }
                None => freed.await,
            }
        }
    }

    /// Sends nothing for `for_` from now (a `429`'s `Retry-After`, or
    /// the rest of the window).
    pub fn pause(&self, for_: Duration) {
        let until = Instant::now() + for_;
        let mut state = self.state.lock();
        if state.closed_until.is_none_or(|t| t < until) {
            state.closed_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_full_window_waits_for_the_oldest_answer() {
        let limiter = Limiter::new(2, WINDOW);
        let start = Instant::now();
        drop(limiter.acquire().await);
        drop(limiter.acquire().await);
        assert!(start.elapsed() < WINDOW);
        drop(limiter.acquire().await);
        assert!(start.elapsed() >= WINDOW);
    }

    #[tokio::test]
    async fn requests_in_flight_hold_their_slots() {
        let limiter = Limiter::new(1, WINDOW);
        let held = limiter.acquire().await;
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let _p = limiter.acquire().await;
                Instant::now()
            })
        };
        tokio::time::sleep(WINDOW * 2).await;
        let answered = Instant::now();
        drop(held);
        let got = waiter.await.unwrap();
        assert!(got >= answered + WINDOW);
    }

    #[tokio::test]
    async fn a_pause_closes_the_gate() {
        let limiter = Limiter::new(10, WINDOW);
        let start = Instant::now();
        limiter.pause(WINDOW * 2);
        drop(limiter.acquire().await);
        assert!(start.elapsed() >= WINDOW * 2);
    }
}
