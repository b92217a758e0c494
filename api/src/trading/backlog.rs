//! The order sync's backlog, and the limit that keeps it bounded.
//!
//! The venue's user events wait in the sync's lanes until they are
//! applied (`super::sync`). They cannot be dropped (a fill, a cancel of
//! an acknowledged order) and the venue cannot be made to wait, so what
//! bounds them is the work that makes them: past `order_sync_backlog_max`
//! events held, new orders are refused with 503 `overloaded` until the
//! sync has caught up below the limit. Cancels still go through: they
//! take risk off, and an order's events are bounded by the orders already
//! placed (docs/API.md, "Limits").

use crate::error::ApiError;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Gauge: venue events received and not yet applied (all lanes). A
/// rising value is a sync that does not keep up with the venue.
pub const BACKLOG: &str = "nax_order_sync_backlog";
/// Counter: orders refused because the backlog was at its limit.
const REFUSED: &str = "nax_order_sync_backlog_refusals_total";

/// Events held by the order sync, and the most new orders may meet.
#[derive(Debug)]
pub struct Backlog {
    held: AtomicUsize,
    max: usize,
}

impl Backlog {
    /// An empty backlog that refuses new orders from `max` events held.
    pub fn new(max: usize) -> Self {
        metrics::gauge!(BACKLOG).set(0.0);
        Backlog {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// One more event received from the venue, not yet applied.
    pub fn received(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(BACKLOG).increment(1.0);
    }

    /// One event applied (or given up on).
    pub fn applied(&self) {
        let before = self.held.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "an event applied that was never received");
        metrics::gauge!(BACKLOG).decrement(1.0);
    }

    /// Events held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether a new order may go to the venue: 503 `overloaded` (retry
    /// after 1 s) while `max` or more events are held.
    pub fn admit(&self) -> Result<(), ApiError> {
        if self.held() < self.max {
            return Ok(());
        }
        metrics::counter!(REFUSED).increment(1);
        Err(ApiError::unavailable(
            "overloaded",
            "new orders are paused while the order sync catches up with the venue; cancels are accepted",
            1,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_from_the_limit_and_admits_again_below_it() {
        let backlog = Backlog::new(2);
        assert!(backlog.admit().is_ok());
        backlog.received();
        assert!(backlog.admit().is_ok());
        backlog.received();
        let refused = backlog.admit().unwrap_err();
        assert_eq!(refused.status.as_u16(), 503);
        assert_eq!(refused.code, "overloaded");
        assert_eq!(refused.retry_after, Some(1));
        backlog.applied();
        assert_eq!(backlog.held(), 1);
        assert!(backlog.admit().is_ok());
    }
}
