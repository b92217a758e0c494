//! The merged user events of a [`super::MultiVenue`]: every venue's
//! events in one stream, each venue's in its own order, order ids tagged
//! with the venue's name, and a balance of an asset several venues hold
//! turned into the user's sum over them.
//!
//! The sum is kept per (user, asset) from the venues' own balance events;
//! a venue not heard from yet for that pair is asked once
//! (`Venue::balances`) and its events keep the figure current after that.
//! A figure read from a venue may be newer than an event of that venue
//! still on its way; that event then sets an older figure, and the venue's
//! next event (there is one for every later change) corrects it, so the
//! last sum sent is right. Sums carry a venue time that never goes back
//! per (user, asset), so a venue whose clock is behind another's does not
//! have its balance dropped as stale by the receiver.

use super::{tag_report, tagged, Inner};
use crate::event::Micros;
use crate::venue::{Balance, UserEvent, VenueError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most (user, asset) sums remembered; beyond, the memory is cleared and
/// rebuilt as events come (each venue asked again once).
const MAX_REMEMBERED: usize = 100_000;

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
            let event = relabel(&inner, &mut sums, i, event).await;
            if out.send(event).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// What is known of one user's asset across the venues that hold it.
struct Held {
    /// Per holding venue (the order of `Inner::holders`), its last figure.
    at: Vec<Option<Balance>>,
    /// The venue time of the last sum sent.
    last_ts: Micros,
}

#[derive(Default)]
struct Sums {
    held: HashMap<(String, String), Held>,
}

/// `event` of venue `i` as the merged stream says it.
async fn relabel(inner: &Inner, sums: &mut Sums, i: usize, event: UserEvent) -> UserEvent {
    let name = &inner.parts[i].name;
    match event {
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
                return UserEvent::Balance {
                    user,
                    asset,
                    balance,
                    venue_ts,
                };
            }
            let (balance, venue_ts) = sums
                .add(inner, holders, i, &user, &asset, balance, venue_ts)
                .await;
            UserEvent::Balance {
                user,
                asset,
                balance,
                venue_ts,
            }
        }
    }
}

impl Sums {
    /// Records venue `i`'s `balance` and answers the sum with its time.
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
    ) -> (Balance, Micros) {
        if self.held.len() >= MAX_REMEMBERED {
            self.held.clear();
        }
        let held = self
            .held
            .entry((user.to_owned(), asset.to_owned()))
            .or_insert_with(|| Held {
                at: vec![None; holders.len()],
                last_ts: 0,
            });
        let slot = holders.iter().position(|&h| h == i).unwrap_or(0);
        held.at[slot] = Some(balance);
        for (k, &h) in holders.iter().enumerate() {
            if held.at[k].is_none() {
                held.at[k] = read_balance(inner, h, user, asset).await;
            }
        }
        let sum = held
            .at
            .iter()
            .flatten()
            .fold(Balance::default(), |a, b| super::add(a, *b));
        held.last_ts = held.last_ts.max(venue_ts);
        (sum, held.last_ts)
    }
}

/// `user`'s balance of `asset` at venue `h`; `None` (with a warning) when
/// the venue cannot answer: the sum counts it as zero and it is asked
/// again with the next event.
async fn read_balance(inner: &Inner, h: usize, user: &str, asset: &str) -> Option<Balance> {
    let part = &inner.parts[h];
    match part.venue.balances(user).await {
        Ok(list) => Some(
            list.into_iter()
                .find(|(a, _)| a == asset)
                .map(|(_, b)| b)
                .unwrap_or_default(),
        ),
        Err(e) => {
            tracing::warn!(venue = %part.name, error = %e,
                "balance of a shared asset not readable; counted as zero until it answers");
            None
        }
    }
}
