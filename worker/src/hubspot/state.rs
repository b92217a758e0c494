//! A user's checkpoint in `SyncCheckpoints` (service `hubspot`, type
//! `contact#{user_id}`, value a [`ContactState`] as JSON): reading it to
//! decide what a batch adds, and advancing it with conditional writes
//! (`CreateCheckpoint`, then `ReplaceCheckpoint` from the value read), so
//! racing workers merge their states and never move it back.
//!
//! The value also carries a revision that every write bumps, so the
//! condition "still the value read" fails after any write in between,
//! even one that stored the same state: a worker that re-sent the
//! recorded contact (overwriting a newer one in HubSpot) and stored it
//! unchanged must not be invisible to a writer holding the same read.

use super::mapping::{self, ContactInput, ContactState};
use super::SERVICE_NAME;
use api::events::{self, Event};
use api::store::{Conflict, Store, StoreError, SyncCheckpoint, User, Write};
use serde::{Deserialize, Serialize};

/// The largest checkpoint value decoded (it is a few hundred bytes).
const MAX_STATE_BYTES: usize = 16 * 1024;

/// One user's contact, ready to send.
pub(super) struct Prepared {
    pub(super) user: User,
    pub(super) input: ContactInput,
    /// The state to store once HubSpot took the contact.
    pub(super) state: ContactState,
    /// The checkpoint as read (the condition of the write).
    pub(super) checkpoint: Option<SyncCheckpoint>,
}

fn sync_type(user_id: &str) -> String {
    format!("contact#{user_id}")
}

/// A checkpoint's value: the state and its revision (absent, 0, in
/// values written before the revision existed).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    state: ContactState,
    #[serde(default)]
    rev: u64,
}

fn decode_stored(checkpoint: &SyncCheckpoint) -> Option<Stored> {
    if checkpoint.value.len() > MAX_STATE_BYTES {
        return None;
    }
    serde_json::from_str(&checkpoint.value).ok()
}

fn decode(checkpoint: &SyncCheckpoint) -> Option<ContactState> {
    decode_stored(checkpoint).map(|s| s.state)
}

/// What `events` of `user_id` add to the contact: `None` when nothing
/// (every event stale, or the user gone, both logged and counted). With
/// `redelivered` (a delivery received before), the recorded contact is
/// sent again even when nothing is new.
pub(super) async fn prepare(
    store: &dyn Store,
    user_id: &str,
    events: &[&Event],
    redelivered: bool,
) -> Result<Option<Prepared>, String> {
    let checkpoint = store
        .checkpoint(SERVICE_NAME, &sync_type(user_id))
        .await
        .map_err(|e| format!("reading the checkpoint: {e}"))?;
    let prior = checkpoint.as_ref().and_then(|c| {
        let state = decode(c);
        if state.is_none() {
            tracing::warn!(user_id, "hubspot: unreadable checkpoint; starting over");
        }
        state
    });
    let fresh: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| prior.as_ref().is_none_or(|p| p.adds(e)))
        .collect();
    let stale = events.len() - fresh.len();
    if stale > 0 {
        metrics::counter!("nax_hubspot_stale_events_total").increment(stale as u64);
        tracing::debug!(user_id, stale, "hubspot: events older than the checkpoint");
    }
    // A message that came back after a failure may have failed after
    // another worker's upsert was overwritten (see `settle`): it sends
    // the recorded contact again even when its events add nothing.
    let resend = fresh.is_empty() && redelivered && prior.is_some();
    if fresh.is_empty() && !resend {
        return Ok(None);
    }
    let Some(user) = store
        .user(user_id)
        .await
        .map_err(|e| format!("reading the user: {e}"))?
    else {
        tracing::info!(
            user_id,
            events = fresh.len(),
            "hubspot: the user no longer exists; events dropped"
        );
        return Ok(None);
    };
    let built = match (&prior, resend) {
        (Some(prior), true) => Some((mapping::input(&user, prior), prior.clone())),
        _ => mapping::contact(&user, prior.as_ref(), &fresh),
    };
    Ok(built.map(|(input, state)| Prepared {
        user: user.clone(),
        input,
        state,
        checkpoint,
    }))
}

/// What became of a checkpoint write.
pub(super) enum Settled {
    /// The checkpoint holds the state sent.
    Stored,
    /// Another writer advanced the checkpoint since it was read, so its
    /// contact and this one may have overwritten each other in HubSpot:
    /// send `merged` (both states) again, then settle it from `stored`.
    Resend {
        merged: ContactState,
        stored: SyncCheckpoint,
    },
}

/// Stores `state` (sent to HubSpot) as `user_id`'s checkpoint, on the
/// condition that the checkpoint is still `read`. When another writer
/// got there first, the caller sends the merged contact again
/// ([`Settled::Resend`]) before storing it, so the last contact HubSpot
/// got holds everything the checkpoint says was sent.
pub(super) async fn settle(
    store: &dyn Store,
    user_id: &str,
    read: Option<&SyncCheckpoint>,
    state: &ContactState,
) -> Result<Settled, String> {
    let sync_type = sync_type(user_id);
    // Written even when `read` already covers `state` (a contact sent
    // again): the condition is what tells whether another writer came
    // in between, and the new revision is what tells the next one.
    let rev = read.and_then(decode_stored).map_or(0, |s| s.rev) + 1;
    let next = Stored {
        state: state.clone(),
        rev,
    };
    let value = serde_json::to_string(&next).map_err(|e| format!("encode: {e}"))?;
    let checkpoint = SyncCheckpoint {
        service_name: SERVICE_NAME.to_owned(),
        sync_type: sync_type.clone(),
        value,
        updated_at: events::now(),
    };
    let write = match read {
        None => Write::CreateCheckpoint(checkpoint),
        Some(old) => Write::ReplaceCheckpoint {
            checkpoint,
            expected_value: old.value.clone(),
        },
    };
    match store.commit(vec![write]).await {
        Ok(()) => return Ok(Settled::Stored),
        Err(StoreError::Conflict(Conflict::AlreadyExists(_) | Conflict::VersionMismatch(_))) => {}
        Err(e) => return Err(format!("advancing the checkpoint: {e}")),
    }
    let stored = store
        .checkpoint(SERVICE_NAME, &sync_type)
        .await
        .map_err(|e| format!("reading the checkpoint: {e}"))?
        .ok_or_else(|| "the checkpoint vanished".to_owned())?;
    let merged = match decode(&stored) {
        Some(theirs) => theirs.merge(state),
        None => state.clone(),
    };
    Ok(Settled::Resend { merged, stored })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hubspot::Stage;
    use api::store::embedded::EmbeddedStore;

    fn state(ms: i64) -> ContactState {
        ContactState {
            event_time: chrono::DateTime::from_timestamp_millis(1_790_000_000_000 + ms).unwrap(),
            event_id: format!("event-{ms}"),
            stage: Stage::Lead,
            first_deposit_at: None,
            first_trade_at: None,
        }
    }

    async fn read(store: &dyn Store) -> SyncCheckpoint {
        store
            .checkpoint(SERVICE_NAME, &sync_type("u1"))
            .await
            .unwrap()
            .unwrap()
    }

    /// The interleaving of a CI failure: writer B lost a race and holds
    /// the checkpoint it read (state 1) to store its merge (state 2)
    /// after re-sending it; meanwhile writer C, a redelivered message,
    /// re-sent state 1 (landing in HubSpot after B's contact) and stored
    /// state 1 again. B's write must see C's and re-send, or the
    /// checkpoint says 2 while HubSpot holds 1.
    #[tokio::test]
    async fn a_write_of_the_same_state_in_between_is_still_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(matches!(
            settle(&store, "u1", None, &state(1)).await,
            Ok(Settled::Stored)
        ));
        let b_read = read(&store).await;
        let c_read = read(&store).await;
        assert!(matches!(
            settle(&store, "u1", Some(&c_read), &state(1)).await,
            Ok(Settled::Stored)
        ));
        match settle(&store, "u1", Some(&b_read), &state(2)).await {
            Ok(Settled::Resend { merged, stored }) => {
                assert_eq!(merged, state(2));
                assert_eq!(decode(&stored), Some(state(1)));
                assert!(matches!(
                    settle(&store, "u1", Some(&stored), &merged).await,
                    Ok(Settled::Stored)
                ));
            }
            Ok(Settled::Stored) => panic!("the write in between went unseen"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(decode(&read(&store).await), Some(state(2)));
    }

    #[test]
    fn values_without_a_revision_still_decode() {
        let old = serde_json::to_string(&state(5)).unwrap();
        let checkpoint = SyncCheckpoint {
            service_name: SERVICE_NAME.to_owned(),
            sync_type: sync_type("u1"),
            value: old,
            updated_at: events::now(),
        };
        let stored = decode_stored(&checkpoint).unwrap();
        assert_eq!((stored.state, stored.rev), (state(5), 0));
    }
}
