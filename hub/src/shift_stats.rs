//! The Shift adapter's own counters on `/metrics` (docs/OPERATIONS.md,
//! "Metrics"): copied from [`ShiftVenue::stats`] every [`EVERY`], labelled
//! with the venue's name, for as long as the venue lives. The adapter
//! counts in atomics of its own (`feeds` records no metrics); this is
//! where the hub makes them visible to an operator, who otherwise sees
//! reconnects only in the logs.

use crate::metrics as m;
use feeds::shift::ShiftVenue;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the counters are copied.
pub const EVERY: Duration = Duration::from_secs(1);

/// Copies `venue`'s counters to the metrics every [`EVERY`] under
/// `venue = name`, until the venue is dropped.
pub fn export(name: &str, venue: &Arc<ShiftVenue>) {
    let venue: Weak<ShiftVenue> = Arc::downgrade(venue);
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let Some(venue) = venue.upgrade() else {
                return;
            };
            record(&name, &venue);
        }
    });
}

fn record(name: &str, venue: &ShiftVenue) {
    let stats = venue.stats();
    let labels = [(m::LABEL_VENUE, name.to_owned())];
    ::metrics::counter!(m::SHIFT_GAPS_TOTAL, &labels).absolute(stats.gaps_detected);
    ::metrics::counter!(m::SHIFT_RESUBSCRIPTIONS_TOTAL, &labels).absolute(stats.resubscriptions);
    ::metrics::counter!(m::SHIFT_RECONNECTS_TOTAL, &labels).absolute(stats.reconnects);
    ::metrics::counter!(m::SHIFT_SLOW_RECEIVER_RESYNCS_TOTAL, &labels)
        .absolute(stats.slow_receiver_resyncs);
    ::metrics::counter!(m::SHIFT_EPOCH_CHANGES_TOTAL, &labels).absolute(stats.epoch_changes);
    let down = if venue.market_down() { 1.0 } else { 0.0 };
    ::metrics::gauge!(m::SHIFT_MARKET_DOWN, &labels).set(down);
}
