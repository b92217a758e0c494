//! A user's checkpoint in `SyncCheckpoints` (service `hubspot`, type
//! `contact#{user_id}`, value a [`ContactState`] as JSON): reading it to
//! decide what a batch adds, and advancing it with conditional writes
//! (`CreateCheckpoint`, then `ReplaceCheckpoint` from the value read), so
//! racing workers merge their states and never move it back.

use super::mapping::{self, ContactInput, ContactState};
use super::SERVICE_NAME;
use api::events::{self, Event};
use api::store::{Conflict, Store, StoreError, SyncCheckpoint, Write};

/// Conditional writes tried before the batch is given back.
const ADVANCE_ATTEMPTS: u32 = 4;
/// The largest checkpoint value decoded (it is a few hundred bytes).
const MAX_STATE_BYTES: usize = 16 * 1024;

/// One user's contact, ready to send.
pub(super) struct Prepared {
    pub(super) input: ContactInput,
    /// The state to store once HubSpot took the contact.
    pub(super) state: ContactState,
    /// The checkpoint as read (the condition of the write).
    pub(super) checkpoint: Option<SyncCheckpoint>,
}

fn sync_type(user_id: &str) -> String {
    format!("contact#{user_id}")
}

fn decode(checkpoint: &SyncCheckpoint) -> Option<ContactState> {
    if checkpoint.value.len() > MAX_STATE_BYTES {
        return None;
    }
    serde_json::from_str(&checkpoint.value).ok()
}

/// What `events` of `user_id` add to the contact: `None` when nothing
/// (every event stale, or the user gone, both logged and counted).
pub(super) async fn prepare(
    store: &dyn Store,
    user_id: &str,
    events: &[&Event],
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
    if fresh.is_empty() {
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
    Ok(
        mapping::contact(&user, prior.as_ref(), &fresh).map(|(input, state)| Prepared {
            input,
            state,
            checkpoint,
        }),
    )
}

/// Stores `state` as `user_id`'s checkpoint unless what is stored already
/// covers it; on a lost race, merges with the winner's state and tries
/// again.
pub(super) async fn advance(
    store: &dyn Store,
    user_id: &str,
    mut read: Option<SyncCheckpoint>,
    state: ContactState,
) -> Result<(), String> {
    let sync_type = sync_type(user_id);
    for _ in 0..ADVANCE_ATTEMPTS {
        let stored = read.as_ref().and_then(decode);
        let next = match &stored {
            Some(s) if s.covers(&state) => return Ok(()),
            Some(s) => s.merge(&state),
            None => state.clone(),
        };
        let value = serde_json::to_string(&next).map_err(|e| format!("encode: {e}"))?;
        let checkpoint = SyncCheckpoint {
            service_name: SERVICE_NAME.to_owned(),
            sync_type: sync_type.clone(),
            value,
            updated_at: events::now(),
        };
        let write = match &read {
            None => Write::CreateCheckpoint(checkpoint),
            Some(old) => Write::ReplaceCheckpoint {
                checkpoint,
                expected_value: old.value.clone(),
            },
        };
        match store.commit(vec![write]).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict(
                Conflict::AlreadyExists(_) | Conflict::VersionMismatch(_),
            )) => {
                read = store
                    .checkpoint(SERVICE_NAME, &sync_type)
                    .await
                    .map_err(|e| format!("reading the checkpoint: {e}"))?;
            }
            Err(e) => return Err(format!("advancing the checkpoint: {e}")),
        }
    }
    Err("the checkpoint kept changing under concurrent writers".to_owned())
}
