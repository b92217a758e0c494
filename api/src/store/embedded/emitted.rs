//! The events of this process's commits, decoded, by outbox position: the
//! relay's [`Store::outbox_pending`](crate::store::Store::outbox_pending)
//! takes an entry's event from here instead of parsing the JSON it
//! stored (docs/BENCHMARKS.md, "A group commit that lingers under load,
//! and outbox events not parsed again").
//!
//! Filled by the committer after a group's sync with the events of its
//! batches that succeeded (a refused batch's position is used again by
//! the next batch, so nothing of it may stay here), emptied by
//! [`Store::outbox_ack`](crate::store::Store::outbox_ack). The stored JSON
//! stays the truth: an entry not here (events of an earlier process, or
//! past [`MAX_EVENTS`]) is decoded from the file as before.

use crate::events::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Events held at most; past it, new ones are decoded when read.
pub(super) const MAX_EVENTS: usize = 10_000;

#[derive(Default)]
pub(super) struct Emitted(Mutex<HashMap<u64, Arc<Event>>>);

impl Emitted {
    /// Keeps the events of a synced group, by position, up to
    /// [`MAX_EVENTS`] in all.
    pub(super) fn synced(&self, events: Vec<(u64, Arc<Event>)>) {
        if events.is_empty() {
            return;
        }
        let mut held = self.lock();
        for (position, event) in events {
            if held.len() >= MAX_EVENTS {
                break;
            }
            held.insert(position, event);
        }
    }

    /// The event stored at `position`, when this process committed it.
    pub(super) fn get(&self, position: u64) -> Option<Arc<Event>> {
        self.lock().get(&position).cloned()
    }

    /// Forgets acknowledged positions.
    pub(super) fn acknowledged(&self, positions: &[u64]) {
        let mut held = self.lock();
        for position in positions {
            held.remove(position);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Event>>> {
        // A panic while holding it leaves a map that is still whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
