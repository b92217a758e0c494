//! The private channels (`orders`, `balances`) of an authenticated
//! connection: after `auth`, a forwarder task reads the user's updates from
//! the API's [`PrivateBus`](api::private::PrivateBus) and queues those of
//! subscribed channels as channel messages:
//!
//! `{"type":"order","channel":"orders","epoch":E,"seq":N,"prev_seq":P,"ts":T,"order":{…}}`
//! `{"type":"balance","channel":"balances","epoch":E,"seq":N,"prev_seq":P,"ts":T,"balance":{…}}`
//!
//! `seq` is the user's per-channel number (the same on every connection of
//! the user); `prev_seq` is what this connection last got on the channel
//! (0 first). Private messages are never conflated or dropped: one that
//! does not fit the outbound queue, or a forwarder that lags behind the
//! bus, closes the connection with 4008. So does a loss the bus reports
//! (this node's backplane listener fell behind the stream's trimming):
//! a connection subscribed to `orders` or `balances` is closed with 4008
//! `private updates lost` (metric `nax_private_lost_closes_total`); one
//! that is only authenticated keeps going (it holds no private state).

use crate::fanout::Pushed;
use crate::protocol::encode::Header;
use crate::protocol::{replies, ErrorCode};
use api::private::{PrivateChannel, PrivateEvent, PrivateUpdate, UpdateKind};
use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// Which private channels a connection has, and what it last got on each.
#[derive(Default)]
pub struct PrivateState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    user_id: Option<String>,
    /// The access token of the last `auth`, re-verified before every
    /// delivery so a logout or expiry stops the channels at once.
    token: Option<api::secret::Secret>,
    /// (subscribed, last seq delivered) by [`PrivateChannel::index`].
    channels: [(bool, u64); PrivateChannel::ALL.len()],
}

impl PrivateState {
    /// The authenticated user, if any.
    pub fn user(&self) -> Option<String> {
        self.inner.lock().user_id.clone()
    }

    /// Records the user and their token; false if another user is
    /// already authenticated.
    pub fn set_user(&self, user_id: &str, token: &str) -> bool {
        let mut s = self.inner.lock();
        if s.user_id.as_deref().is_some_and(|u| u != user_id) {
            return false;
        }
        s.user_id = Some(user_id.to_owned());
        s.token = Some(api::secret::Secret::new(token));
        true
    }

    /// Forgets the user and their private subscriptions (token revoked or
    /// expired).
    fn sign_out(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// The access token of the last `auth`.
    pub(super) fn token(&self) -> Option<api::secret::Secret> {
        self.inner.lock().token.clone()
    }

    /// Starts (or restarts) delivery of a channel: the next message has
    /// `prev_seq` 0.
    pub fn subscribe(&self, channel: PrivateChannel) {
        self.inner.lock().channels[channel.index()] = (true, 0);
    }

    pub fn unsubscribe(&self, channel: PrivateChannel) {
        self.inner.lock().channels[channel.index()] = (false, 0);
    }

    /// Whether `orders` or `balances` is subscribed.
    fn has_channel(&self) -> bool {
        self.inner.lock().channels.iter().any(|(on, _)| *on)
    }

    /// The message for `update` if its channel is subscribed, advancing
    /// the channel's last seq.
    fn message(&self, update: &PrivateUpdate, epoch: &str) -> Option<Utf8Bytes> {
        let mut s = self.inner.lock();
        let (subscribed, last) = &mut s.channels[update.channel.index()];
        if !*subscribed {
            return None;
        }
        let prev = std::mem::replace(last, update.seq);
        let h = Header {
            channel: update.channel.name(),
            epoch,
            seq: update.seq,
            prev_seq: prev,
            ts: update.ts,
        };
        let text = match (update.channel, update.kind) {
            // A dead-man's switch that fired (docs/PROTOCOL.md "Order entry").
            (_, UpdateKind::AutoCancelled) => replies::cancelled(&h, &update.payload),
            (PrivateChannel::Orders, UpdateKind::State) => replies::order(&h, &update.payload),
            (PrivateChannel::Balances, UpdateKind::State) => replies::balance(&h, &update.payload),
        };
        Some(Utf8Bytes::from(text))
    }
}

/// Forwards `user`'s updates to the connection until the bus or the
/// connection ends. On lag, asks the writer to close 4008 (a full queue
/// closes itself, and its writer sends the 4008); on a loss the bus
/// reports, too, if a private channel is subscribed.
/// Before each delivery the token is verified again; once it is revoked
/// (logout, refresh reuse) or expired, the client gets an `unauthorized`
/// error, loses its private channels and must `auth` again.
pub async fn forward(
    api: api::Api,
    mut updates: broadcast::Receiver<PrivateEvent>,
    state: Arc<PrivateState>,
    queue: Arc<crate::fanout::Subscriber>,
    epoch: String,
    close: mpsc::UnboundedSender<(u16, &'static str)>,
) {
    loop {
        match updates.recv().await {
            Ok(PrivateEvent::Lost) => {
                if state.has_channel() {
                    metrics::counter!(crate::metrics::PRIVATE_LOST_CLOSES_TOTAL).increment(1);
                    let _ = close.send((super::close_code::SLOW_CONSUMER, "private updates lost"));
                    return;
                }
            }
            Ok(PrivateEvent::Update(update)) => {
                let valid = match state.token() {
                    Some(token) => api.auth.verify_access(token.expose()).await.is_ok(),
                    None => false,
                };
                if !valid {
                    state.sign_out();
                    let msg = replies::error(
                        None,
                        ErrorCode::Unauthorized,
                        "the session ended (logout or token expiry): auth again",
                    );
                    let _ = queue.queue.push_control(Utf8Bytes::from(msg));
                    return;
                }
                let Some(text) = state.message(&update, &epoch) else {
                    continue;
                };
                if queue.queue.push_control(text) != Pushed::Queued {
                    // The queue is closing (it overflowed now, or was
                    // closed before): its writer closes the connection
                    // 4008 and counts it, once.
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                metrics::counter!(crate::metrics::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
                let _ = close.send((super::close_code::SLOW_CONSUMER, "slow consumer"));
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
