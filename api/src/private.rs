//! [`PrivateBus`]: each user's order and balance updates, from the API's
//! order sync to the hub's private `orders` and `balances` channels.
//!
//! Every update gets the next `seq` of its (user, channel) at publish, so
//! every connection of the user sees the same numbering. One broadcast
//! channel per user who has a live subscriber; updates for users nobody
//! watches are not kept (they are in the store, and private channels offer
//! no resume). A subscriber that falls [`CAPACITY`] updates behind gets
//! `Lagged` and must be closed (PROTOCOL.md: a private message is never
//! dropped silently).
//!
//! With a [`Backplane`] (Redis), [`PrivateBus::publish`] goes through it and
//! every node's listener [`deliver`](PrivateBus::deliver)s the update to
//! its own subscribers; `seq` is still given here, at delivery.

use crate::cluster::backplane::{Backplane, WireUpdate};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Updates buffered per user before a slow subscriber lags.
pub const CAPACITY: usize = 1024;

/// Which private channel an update belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivateChannel {
    Orders,
    Balances,
}

impl PrivateChannel {
    /// The channel's name in PROTOCOL.md.
    pub fn name(self) -> &'static str {
        match self {
            PrivateChannel::Orders => "orders",
            PrivateChannel::Balances => "balances",
        }
    }
}

/// One update: `payload` is the JSON object the message carries under
/// `order` or `balance`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateUpdate {
    pub channel: PrivateChannel,
    /// 1, 2, 3, ... per (user, channel) in this process.
    pub seq: u64,
    /// Microseconds since the epoch when published.
    pub ts: u64,
    pub payload: Arc<serde_json::Value>,
}

struct UserFeed {
    sender: broadcast::Sender<PrivateUpdate>,
    /// Last seq per channel: orders, balances.
    seqs: Mutex<[u64; 2]>,
}

/// The per-user fan-in/fan-out point (see the module doc).
#[derive(Default)]
pub struct PrivateBus {
    users: DashMap<String, Arc<UserFeed>>,
    backplane: Option<Arc<Backplane>>,
}

impl PrivateBus {
    /// A bus whose updates go through `backplane` to every node.
    pub fn with_backplane(backplane: Arc<Backplane>) -> Self {
        PrivateBus {
            users: DashMap::new(),
            backplane: Some(backplane),
        }
    }

    /// The backplane, when the bus has one.
    pub fn backplane(&self) -> Option<&Arc<Backplane>> {
        self.backplane.as_ref()
    }

    /// Publishes an update of `user` to every node's subscribers (this
    /// node's only, without a backplane or while Redis fails). `dedupe`
    /// names the change: nodes publishing the same change (each syncs the
    /// venue's events) put it on the backplane once.
    pub async fn publish(
        &self,
        user: &str,
        channel: PrivateChannel,
        dedupe: &str,
        payload: serde_json::Value,
    ) {
        if let Some(backplane) = &self.backplane {
            let update = WireUpdate {
                user: user.to_owned(),
                channel: channel.into(),
                payload,
            };
            match backplane
                .publish(&format!("{user}:{dedupe}"), &update)
                .await
            {
                Ok(_) => return,
                Err(e) => {
                    backplane.note_fallback(&e);
                    self.deliver(user, channel, update.payload);
                    return;
                }
            }
        }
        self.deliver(user, channel, payload);
    }

    /// Receives every update of `user` published from now on.
    pub fn subscribe(&self, user: &str) -> broadcast::Receiver<PrivateUpdate> {
        self.users
            .entry(user.to_owned())
            .or_insert_with(|| {
                Arc::new(UserFeed {
                    sender: broadcast::channel(CAPACITY).0,
                    seqs: Mutex::new([0, 0]),
                })
            })
            .sender
            .subscribe()
    }

    /// Hands an update to `user`'s subscribers on this node, if any. The
    /// feed of a user without subscribers is dropped (its seq numbering
    /// restarts, which no subscriber can observe).
    pub fn deliver(&self, user: &str, channel: PrivateChannel, payload: serde_json::Value) {
        let Some(feed) = self.users.get(user).map(|f| f.clone()) else {
            return;
        };
        if feed.sender.receiver_count() == 0 {
            self.users
                .remove_if(user, |_, f| f.sender.receiver_count() == 0);
            return;
        }
        // The lock orders seq assignment with the send, so seqs arrive in order.
        let mut seqs = feed.seqs.lock();
        let slot = match channel {
            PrivateChannel::Orders => 0,
            PrivateChannel::Balances => 1,
        };
        seqs[slot] += 1;
        let update = PrivateUpdate {
            channel,
            seq: seqs[slot],
            ts: feeds::event::now_micros(),
            payload: Arc::new(payload),
        };
        let _ = feed.sender.send(update);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscribers_see_their_own_updates_numbered_per_channel() {
        let bus = PrivateBus::default();
        let mut a = bus.subscribe("a");
        let mut a2 = bus.subscribe("a");
        let mut b = bus.subscribe("b");
        bus.deliver("a", PrivateChannel::Orders, json!({"n": 1}));
        bus.deliver("a", PrivateChannel::Balances, json!({"n": 2}));
        bus.deliver("a", PrivateChannel::Orders, json!({"n": 3}));
        for rx in [&mut a, &mut a2] {
            let got: Vec<_> = (0..3)
                .map(|_| rx.try_recv().unwrap())
                .map(|u| (u.channel, u.seq))
                .collect();
            assert_eq!(
                got,
                [
                    (PrivateChannel::Orders, 1),
                    (PrivateChannel::Balances, 1),
                    (PrivateChannel::Orders, 2)
                ]
            );
        }
        assert!(b.try_recv().is_err(), "user b sees nothing of user a");
    }

    #[test]
    fn users_without_subscribers_are_forgotten() {
        let bus = PrivateBus::default();
        drop(bus.subscribe("a"));
        bus.deliver("a", PrivateChannel::Orders, json!({}));
        assert!(bus.users.is_empty());
    }
}
