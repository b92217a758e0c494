//! The merged user events of a [`super::MultiVenue`]: every venue's
//! events in one stream, each venue's in its own order, order ids tagged
//! with the venue's name, and a balance of an asset several venues hold
//! turned into the user's sum over them.
//!
//! The sum is kept per (user, asset) from the venues' own balance events;
//! a venue not heard from yet for that pair, or not for
//! [`FIGURE_MAX_AGE`], is asked (`Venue::balances`, at most
//! [`READ_TIMEOUT`]) and its events keep the figure current after that.
//! A figure read from a venue may be newer than an event of that venue
//! still on its way; that event then sets an older figure, and the venue's
//! next event (there is one for every later change) corrects it, so the
//! last sum sent is right; events a venue loses (a reconnect) are made
//! good by the re-read after [`FIGURE_MAX_AGE`]. A sum that needs a venue
//! which cannot answer is not sent (a partial sum would look like lost
//! funds); the next event, or `GET /wallets/balances`, brings it. Sums
//! carry a venue time that never goes back per (user, asset), so a venue
//! whose clock is behind another's does not have its balance dropped as
//! stale by the receiver. Every hub node sums for itself: two nodes may
//! send different sums for one event while one of them has an older
//! figure, and agree again at the next event.

use super::{tag_report, tagged, Inner};
use crate::event::Micros;
use crate::venue::{Balance, UserEvent, VenueError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most (user, asset) sums remembered; beyond, the memory is cleared and
/// rebuilt as events come (each venue asked again once).
const MAX_REMEMBERED: usize = 100_000;
/// Another venue's figure older than this is read again at the next event.
pub const FIGURE_MAX_AGE: Duration = Duration::from_secs(30);
/// Longest wait for another venue's balances (the merge waits meanwhile).
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Subscribes to every venue's user events and starts the merge.
pub(super) async fn merge(
    inner: Arc<Inner>,
) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
    let (merged_tx, mut merged_rx) = mpsc::unbounded_channel();
    for (i, part) in inner.parts.iter().enumerate() {
        let mut events = part.venue.user_events().await?;
        let tx = merged_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send((i, event)).is_err() {
                    return;
                }
            }
        });
    }
    drop(merged_tx);
    let (out, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut sums = Sums::default();
        while let Some((i, event)) = merged_rx.recv().await {
            let Some(event) = relabel(&inner, &mut sums, i, event).await else {
                continue;
            };
            if out.send(event).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// What is known of one user's asset across the venues that hold it.
struct Held {
    /// Per holding venue (the order of `Inner::holders`), its last figure
    /// and when it was had.
    at: Vec<Option<(Balance, Instant)>>,
    /// The venue time of the last sum sent.
    last_ts: Micros,
}

#[derive(Default)]
struct Sums {
    held: HashMap<(String, String), Held>,
    /// The latest venue time of any sum sent before the memory was last
    /// cleared: sums after a clear never go below it.
    floor_ts: Micros,
}

/// `event` of venue `i` as the merged stream says it; `None` for a
/// balance whose sum cannot be made now.
async fn relabel(inner: &Inner, sums: &mut Sums, i: usize, event: UserEvent) -> Option<UserEvent> {
    let name = &inner.parts[i].name;
    Some(match event {
        UserEvent::Order(report) => UserEvent::Order(tag_report(name, report)),
        UserEvent::Fill(mut fill) => {
            fill.order_id = tagged(name, &fill.order_id);
            UserEvent::Fill(fill)
        }
        UserEvent::Balance {
            user,
            asset,
            balance,
            venue_ts,
        } => {
            let holders = inner.holders.get(&asset).map_or(&[][..], Vec::as_slice);
            if holders.len() < 2 {
                return Some(UserEvent::Balance {
                    user,
                    asset,
                    balance,
                    venue_ts,
                });
            }
            let (balance, venue_ts) = sums
                .add(inner, holders, i, &user, &asset, balance, venue_ts)
                .await?;
            UserEvent::Balance {
                user,
                asset,
                balance,
                venue_ts,
            }
        }
    })
}

impl Sums {
    /// Records venue `i`'s `balance` and answers the sum with its time;
    /// `None` while a venue holding the asset cannot say its figure.
    #[allow(clippy::too_many_arguments)]
    async fn add(
        &mut self,
        inner: &Inner,
        holders: &[usize],
        i: usize,
        user: &str,
        asset: &str,
        balance: Balance,
        venue_ts: Micros,
    ) -> Option<(Balance, Micros)> {
        if self.held.len() >= MAX_REMEMBERED {
            self.floor_ts = self
                .held
                .values()
                .map(|h| h.last_ts)
                .fold(self.floor_ts, u64::max);
            self.held.clear();
        }
        let floor_ts = self.floor_ts;
        let held = self
            .held
            .entry((user.to_owned(), asset.to_owned()))
            .or_insert_with(|| Held {
                at: vec![None; holders.len()],
                last_ts: floor_ts,
            });
        let now = Instant::now();
        let slot = holders.iter().position(|&h| h == i).unwrap_or(0);
        held.at[slot] = Some((balance, now));
        let mut sum = Balance::default();
        for (k, &h) in holders.iter().enumerate() {
            let fresh = held.at[k].filter(|(_, at)| now.duration_since(*at) < FIGURE_MAX_AGE);
            let figure = match fresh {
                Some((figure, _)) => figure,
                None => {
                    let read = read_balance(inner, h, user, asset).await;
                    held.at[k] = read.map(|b| (b, Instant::now()));
                    read?
                }
            };
            sum = super::add(sum, figure);
        }
        held.last_ts = held.last_ts.max(venue_ts);
        Some((sum, held.last_ts))
    }
}

/// `user`'s balance of `asset` at venue `h`; `None` (with a warning) when
/// the venue cannot answer within [`READ_TIMEOUT`]: it is asked again
/// with the next event.
async fn read_balance(inner: &Inner, h: usize, user: &str, asset: &str) -> Option<Balance> {
    let part = &inner.parts[h];
    let read = tokio::time::timeout(READ_TIMEOUT, part.venue.balances(user)).await;
    match read.unwrap_or_else(|_| Err(VenueError::Unavailable("no answer in time".into()))) {
        Ok(list) => Some(
            list.into_iter()
                .find(|(a, _)| a == asset)
                .map(|(_, b)| b)
                .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!(venue = %part.name, error = %e,
                "balance of a shared asset not readable: its sum is not sent");
            None
        }
    }
}
