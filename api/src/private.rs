//! [`PrivateBus`]: each user's order and balance updates, from the API's
//! order sync to the hub's private `orders` and `balances` channels.
//!
//! Every update gets the next `seq` of its (user, channel) at publish, so
//! every connection of the user sees the same numbering. One broadcast
//! channel per user who has a live subscriber; updates for users nobody
//! watches are not kept (they are in the store, and private channels offer
//! no resume). A subscriber that falls [`CAPACITY`] updates behind gets
//! `Lagged` and must be closed (docs/PROTOCOL.md: a private message is never
//! dropped silently).
//!
//! With a [`Backplane`] (Redis), [`PrivateBus::publish`] goes through it and
//! every node's listener [`deliver`](PrivateBus::deliver)s the update to
//! its own subscribers; `seq` is still given here, at delivery. When the
//! listener finds that updates were lost before it read them (it fell
//! behind the stream's trimming), [`PrivateBus::lost`] tells every
//! subscriber of this node, after the updates delivered before the loss
//! ([`PrivateEvent::Lost`]): they must resync (the hub closes their
//! connections with 4008).

use crate::cluster::backplane::{Backplane, WireUpdate};
use dashmap::DashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Updates buffered per user before a slow subscriber lags.
pub const CAPACITY: usize = 1024;

/// Which private channel an update belongs to: the one type the API (the
/// bus, the backplane's stream entries, where it is written `"orders"` /
/// `"balances"`) and the hub (channel names, per-connection state) share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivateChannel {
    Orders,
    Balances,
}

impl PrivateChannel {
    /// Every private channel; [`PrivateChannel::index`] is the position here.
    pub const ALL: [PrivateChannel; 2] = [PrivateChannel::Orders, PrivateChannel::Balances];

    /// The channel's name in docs/PROTOCOL.md.
    pub fn name(self) -> &'static str {
        match self {
            PrivateChannel::Orders => "orders",
            PrivateChannel::Balances => "balances",
        }
    }

    /// The channel named `name` (no cadence suffix), if it is a private one.
    pub fn parse(name: &str) -> Option<PrivateChannel> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The channel's slot in a per-channel array (`[T; PrivateChannel::ALL.len()]`).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a private update is, so its message type is chosen by kind, not
/// by looking into the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// An order's or balance's new state: `payload` is the JSON object
    /// the message carries under `order` or `balance`.
    State,
    /// A dead-man's switch fired on `orders` (docs/PROTOCOL.md "Order
    /// entry"): `payload` is `{"trigger", "order_ids"}`.
    AutoCancelled,
}

/// One update (see [`UpdateKind`] for its payload).
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateUpdate {
    pub channel: PrivateChannel,
    pub kind: UpdateKind,
    /// 1, 2, 3, ... per (user, channel) in this process.
    pub seq: u64,
    /// Microseconds since the epoch when published.
    pub ts: u64,
    pub payload: Arc<serde_json::Value>,
}

/// What a subscriber receives, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateEvent {
    Update(PrivateUpdate),
    /// Updates for this node's subscribers may have been lost between the
    /// previous event and the next: what the subscriber holds may be
    /// stale.
    Lost,
}

/// Which state an update carries, so that a node never delivers an older
/// state after a newer one: the backplane and a node's local fallback can
/// both bring a change, and either can bring it late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Freshness {
    /// An order's stored version: every change increases it.
    Order { order_id: String, version: u64 },
    /// A balance's venue time (µs): later is newer; equal times both go
    /// out (two changes can share a microsecond).
    Balance { asset: String, venue_ts: u64 },
    /// A dead-man's switch fired ([`UpdateKind::AutoCancelled`]): a
    /// one-off notice named by `id`, delivered once.
    #[serde(alias = "notice")]
    AutoCancelled { id: String },
}

impl Freshness {
    fn key(&self) -> String {
        match self {
            Freshness::Order { order_id, .. } => format!("o:{order_id}"),
            Freshness::Balance { asset, .. } => format!("b:{asset}"),
            Freshness::AutoCancelled { id } => format!("n:{id}"),
        }
    }

    /// Whether this state is older than `last`, the newest delivered.
    fn is_stale(&self, last: u64) -> bool {
        match self {
            Freshness::Order { version, .. } => *version <= last,
            Freshness::Balance { venue_ts, .. } => *venue_ts < last,
            Freshness::AutoCancelled { .. } => last >= 1,
        }
    }

    fn value(&self) -> u64 {
        match self {
            Freshness::Order { version, .. } => *version,
            Freshness::Balance { venue_ts, .. } => *venue_ts,
            Freshness::AutoCancelled { .. } => 1,
        }
    }
}

/// Orders and assets whose newest delivered state a feed remembers; past
/// this the memory starts over (a stale update could then slip through).
const MAX_REMEMBERED: usize = 10_000;

struct UserFeed {
    sender: broadcast::Sender<PrivateEvent>,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// Last seq per channel, by [`PrivateChannel::index`].
    seqs: [u64; PrivateChannel::ALL.len()],
    /// Newest state delivered per order / asset ([`Freshness`]).
    newest: HashMap<String, u64>,
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

    /// Whether an update of `user` published now could reach anyone: a
    /// subscriber of theirs on this node, or, with a backplane, on any
    /// node. Publishers skip building an update nobody would receive
    /// (most users have no socket open while their orders fill).
    pub fn listened(&self, user: &str) -> bool {
        self.backplane.is_some()
            || self
                .users
                .get(user)
                .is_some_and(|feed| feed.sender.receiver_count() > 0)
    }

    /// Publishes an update of `user` to every node's subscribers (this
    /// node's only, without a backplane or while Redis fails). Nodes
    /// publishing the same change (each syncs the venue's events) put it on
    /// the backplane once: the change is named by its freshness and a
    /// digest of its payload (two balance changes may share a venue time).
    pub async fn publish(
        &self,
        user: &str,
        channel: PrivateChannel,
        freshness: Freshness,
        payload: serde_json::Value,
    ) {
        if let Some(backplane) = &self.backplane {
            use sha2::{Digest as _, Sha256};
            let digest = Sha256::digest(payload.to_string().as_bytes());
            let dedupe = format!(
                "{user}:{}:{}:{}",
                freshness.key(),
                freshness.value(),
                hex::encode(&digest[..8])
            );
            let update = WireUpdate {
                user: user.to_owned(),
                channel,
                freshness: Some(freshness),
                payload,
            };
            match backplane.publish(&dedupe, &update).await {
                Ok(_) => return,
                Err(e) => {
                    backplane.note_fallback(&e);
                    self.deliver(user, channel, update.freshness.as_ref(), update.payload);
                    return;
                }
            }
        }
        self.deliver(user, channel, Some(&freshness), payload);
    }

    /// Receives every update of `user` published from now on, and a
    /// [`PrivateEvent::Lost`] where updates were lost.
    pub fn subscribe(&self, user: &str) -> broadcast::Receiver<PrivateEvent> {
        self.users
            .entry(user.to_owned())
            .or_insert_with(|| {
                Arc::new(UserFeed {
                    sender: broadcast::channel(CAPACITY).0,
                    state: Mutex::new(FeedState {
                        seqs: [0; PrivateChannel::ALL.len()],
                        newest: HashMap::new(),
                    }),
                })
            })
            .sender
            .subscribe()
    }

    /// Hands an update to `user`'s subscribers on this node, if any, unless
    /// its `freshness` says a newer state of the same order or asset was
    /// delivered already. The feed of a user without subscribers is
    /// dropped (its seq numbering restarts, which no subscriber can
    /// observe).
    pub fn deliver(
        &self,
        user: &str,
        channel: PrivateChannel,
        freshness: Option<&Freshness>,
        payload: serde_json::Value,
    ) {
        let Some(feed) = self.users.get(user).map(|f| f.clone()) else {
            return;
        };
        if feed.sender.receiver_count() == 0 {
            self.users
                .remove_if(user, |_, f| f.sender.receiver_count() == 0);
            return;
        }
        // The lock orders seq assignment with the send, so seqs arrive in order.
        let mut state = feed.state.lock();
        if let Some(freshness) = freshness {
            let key = freshness.key();
            if state
                .newest
                .get(&key)
                .is_some_and(|&last| freshness.is_stale(last))
            {
                return;
            }
            if state.newest.len() >= MAX_REMEMBERED {
                state.newest.clear();
            }
            state.newest.insert(key, freshness.value());
        }
        let kind = match freshness {
            Some(Freshness::AutoCancelled { .. }) => UpdateKind::AutoCancelled,
            _ => UpdateKind::State,
        };
        let seq = &mut state.seqs[channel.index()];
        *seq += 1;
        let update = PrivateUpdate {
            channel,
            kind,
            seq: *seq,
            ts: feeds::event::now_micros(),
            payload: Arc::new(payload),
        };
        let _ = feed.sender.send(PrivateEvent::Update(update));
    }

    /// Tells every subscriber on this node that updates were lost (see the
    /// module doc), after every update delivered so far.
    pub fn lost(&self) {
        let feeds: Vec<Arc<UserFeed>> = self.users.iter().map(|f| f.value().clone()).collect();
        for feed in feeds {
            // The lock orders the marker with deliveries.
            let _state = feed.state.lock();
            let _ = feed.sender.send(PrivateEvent::Lost);
        }
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
        bus.deliver("a", PrivateChannel::Orders, None, json!({"n": 1}));
        bus.deliver("a", PrivateChannel::Balances, None, json!({"n": 2}));
        bus.deliver("a", PrivateChannel::Orders, None, json!({"n": 3}));
        for rx in [&mut a, &mut a2] {
            let got: Vec<_> = (0..3)
                .map(|_| update(rx.try_recv().unwrap()))
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
    fn a_user_is_listened_to_while_a_subscriber_of_theirs_is_on_this_node() {
        let bus = PrivateBus::default();
        assert!(!bus.listened("a"));
        let rx = bus.subscribe("a");
        assert!(bus.listened("a"));
        assert!(!bus.listened("b"));
        drop(rx);
        assert!(!bus.listened("a"), "the last subscriber left");
    }

    #[test]
    fn an_older_state_of_an_order_or_balance_is_not_delivered_after_a_newer_one() {
        let bus = PrivateBus::default();
        let mut rx = bus.subscribe("a");
        let order = |v| Freshness::Order {
            order_id: "o1".into(),
            version: v,
        };
        let balance = |ts| Freshness::Balance {
            asset: "USD".into(),
            venue_ts: ts,
        };
        for (channel, freshness) in [
            (PrivateChannel::Orders, order(1)),
            (PrivateChannel::Orders, order(3)),
            (PrivateChannel::Orders, order(2)),
            (PrivateChannel::Orders, order(3)),
            (PrivateChannel::Balances, balance(10)),
            (PrivateChannel::Balances, balance(10)),
            (PrivateChannel::Balances, balance(9)),
            (PrivateChannel::Orders, order(4)),
        ] {
            let n = freshness.value();
            bus.deliver("a", channel, Some(&freshness), json!({ "n": n }));
        }
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| update(e).payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(got, [1, 3, 10, 10, 4]);
    }

    fn update(event: PrivateEvent) -> PrivateUpdate {
        match event {
            PrivateEvent::Update(u) => u,
            PrivateEvent::Lost => panic!("an update, not a loss"),
        }
    }

    #[test]
    fn a_loss_reaches_every_subscriber_after_what_was_delivered_before_it() {
        let bus = PrivateBus::default();
        let (mut a, mut b) = (bus.subscribe("a"), bus.subscribe("b"));
        bus.deliver("a", PrivateChannel::Orders, None, json!({"n": 1}));
        bus.lost();
        bus.deliver("a", PrivateChannel::Orders, None, json!({"n": 2}));
        assert_eq!(update(a.try_recv().unwrap()).seq, 1);
        assert_eq!(a.try_recv().unwrap(), PrivateEvent::Lost);
        assert_eq!(update(a.try_recv().unwrap()).seq, 2);
        assert_eq!(b.try_recv().unwrap(), PrivateEvent::Lost);
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn users_without_subscribers_are_forgotten() {
        let bus = PrivateBus::default();
        drop(bus.subscribe("a"));
        bus.deliver("a", PrivateChannel::Orders, None, json!({}));
        assert!(bus.users.is_empty());
    }
}
