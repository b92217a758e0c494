//! The HubSpot CRM sync (docs/HUBSPOT.md): [`HubspotSync`] consumes
//! `hubspot-sync-queue` (user, KYC, fill, deposit and withdrawal events)
//! and keeps one HubSpot contact per user, keyed by email, with its
//! lifecycle stage.
//!
//! Per batch (up to 100 deliveries, gathered for about a second): the
//! deliveries are grouped by user; each user's checkpoint
//! (`SyncCheckpoints`, service `hubspot`, type `contact#{user_id}`) says
//! what was already sent, and events that add nothing to it are answered
//! `Done` at once (a replayed old event changes nothing); the rest
//! become one contact per user, built from the user record as it is now
//! ([`mapping`]), and every contact of the batch goes in one batch upsert
//! ([`client`]). Then each checkpoint is advanced with a conditional
//! write from the value read: it never moves back, and a worker that
//! finds another one got there first (their upserts may have landed in
//! either order) sends the merged contact again before storing the
//! merge. A message that comes back after a failure re-sends the recorded
//! contact even when its events add nothing (its failure may have left
//! an older contact in HubSpot). A user whose record is gone is `Done`
//! with a log line.
//! A batch HubSpot did not take is given back (`Retry`: after five
//! receives SQS moves it to the dead-letter queue); a contact HubSpot
//! refused is given back alone.
//!
//! Delivery is at least once and in any order: the contact converges
//! (see [`mapping`]); HubSpot itself keeps the lifecycle stage from
//! going back.

pub mod client;
mod limiter;
pub mod mapping;
mod state;

pub use client::{HubspotClient, UpsertError, UpsertReport};
pub use mapping::{ContactInput, ContactState, Stage};

use api::events::Event;
use api::queue::{Batching, Consumer, Delivery, Outcome};
use api::secret::Secret;
use api::store::{Store, SyncCheckpoint, User};
use async_trait::async_trait;
use state::Settled;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The checkpoints' `service_name`.
pub const SERVICE_NAME: &str = "hubspot";

/// How the sync reaches HubSpot and batches.
#[derive(Debug, Clone)]
pub struct HubspotSettings {
    /// `https://api.hubapi.com` in production.
    pub base_url: String,
    /// The private app's access token.
    pub token: Secret,
    /// Requests this worker sends at most per [`window`](Self::window)
    /// (HubSpot's per-app burst limit, shared out among the workers).
    pub requests_per_window: usize,
    /// The rolling window of the limit (10 s at HubSpot).
    pub window: Duration,
    /// Deliveries per batch (at most 100, one batch upsert).
    pub batch_max: usize,
    /// How long a batch gathers after its first delivery.
    pub batch_wait: Duration,
    /// Tries of a request that failed with `5xx` or no answer.
    pub max_attempts: u32,
    /// The first retry's backoff (doubled each time, jittered).
    pub backoff: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

impl Default for HubspotSettings {
    fn default() -> Self {
        HubspotSettings {
            base_url: "https://api.hubapi.com".to_owned(),
            token: Secret::default(),
            requests_per_window: 100,
            window: Duration::from_secs(10),
            batch_max: 100,
            batch_wait: Duration::from_secs(1),
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// The `hubspot` consumer of `hubspot-sync-queue`.
pub struct HubspotSync {
    store: Arc<dyn Store>,
    client: HubspotClient,
    batching: Batching,
}

/// Rounds of "send again merged" before a batch is given back.
const SETTLE_ROUNDS: usize = 4;

/// A contact HubSpot took, its checkpoint not yet advanced.
struct Taken<'a> {
    user_id: &'a str,
    deliveries: Vec<usize>,
    user: User,
    read: Option<SyncCheckpoint>,
    state: ContactState,
}

/// Gives `deliveries` back with `why`.
fn retry(outcomes: &mut [Outcome], deliveries: &[usize], why: &str) {
    for &i in deliveries {
        outcomes[i] = Outcome::Retry(why.to_owned());
    }
}

/// Why HubSpot refused `input`'s contact, if it did (logged).
fn refusal(report: &UpsertReport, input: &ContactInput) -> Option<String> {
    let why = report.rejected.get(&input.email.to_lowercase())?;
    tracing::warn!(reason = %why, "hubspot refused a contact; it comes back");
    Some(format!("hubspot refused the contact: {why}"))
}

/// One user's share of a batch.
struct UserWork<'a> {
    /// Indexes of its deliveries in the batch.
    deliveries: Vec<usize>,
    events: Vec<&'a Event>,
}

impl HubspotSync {
    /// The consumer for `settings` over `store` (no call made).
    pub fn new(store: Arc<dyn Store>, settings: &HubspotSettings) -> anyhow::Result<HubspotSync> {
        Ok(HubspotSync {
            store,
            client: HubspotClient::new(settings)?,
            batching: Batching {
                max: settings.batch_max.clamp(1, client::MAX_INPUTS),
                wait: settings.batch_wait,
            },
        })
    }
}

#[async_trait]
impl Consumer for HubspotSync {
    fn name(&self) -> &'static str {
        "hubspot"
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    async fn handle(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Done; batch.len()];
        let mut users: BTreeMap<&str, UserWork> = BTreeMap::new();
        for (i, delivery) in batch.iter().enumerate() {
            match delivery.event.user_id.as_deref() {
                Some(user) => {
                    let work = users.entry(user).or_insert_with(|| UserWork {
                        deliveries: Vec::new(),
                        events: Vec::new(),
                    });
                    work.deliveries.push(i);
                    work.events.push(&delivery.event);
                }
                None => tracing::debug!(event_id = %delivery.event.id,
                    "hubspot: an event without a user; nothing to sync"),
            }
        }
        let mut prepared = Vec::new();
        for (user_id, work) in users {
            let redelivered = work.deliveries.iter().any(|&i| batch[i].receives > 1);
            match state::prepare(&*self.store, user_id, &work.events, redelivered).await {
                Ok(Some(p)) => prepared.push((user_id, work.deliveries, p)),
                Ok(None) => {}
                Err(why) => retry(&mut outcomes, &work.deliveries, &why),
            }
        }
        if prepared.is_empty() {
            return outcomes;
        }
        let inputs: Vec<ContactInput> = prepared.iter().map(|(_, _, p)| p.input.clone()).collect();
        let report = match self.client.upsert_contacts(&inputs).await {
            Ok(report) => report,
            Err(e) => {
                for (_, deliveries, _) in &prepared {
                    retry(&mut outcomes, deliveries, &e.to_string());
                }
                return outcomes;
            }
        };
        let mut upserted = 0u64;
        let mut taken = Vec::new();
        for (user_id, deliveries, p) in prepared {
            match refusal(&report, &p.input) {
                Some(why) => retry(&mut outcomes, &deliveries, &why),
                None => {
                    upserted += 1;
                    taken.push(Taken {
                        user_id,
                        deliveries,
                        user: p.user,
                        read: p.checkpoint,
                        state: p.state,
                    });
                }
            }
        }
        // Advance the checkpoints; a user another worker synced meanwhile
        // is sent again merged (see state::settle), a few rounds at most.
        for _ in 0..SETTLE_ROUNDS {
            let mut again = Vec::new();
            for t in taken.drain(..) {
                match state::settle(&*self.store, t.user_id, t.read.as_ref(), &t.state).await {
                    Ok(Settled::Stored) => {}
                    Ok(Settled::Resend { merged, stored }) => again.push(Taken {
                        read: Some(stored),
                        state: merged,
                        ..t
                    }),
                    Err(why) => retry(&mut outcomes, &t.deliveries, &why),
                }
            }
            if again.is_empty() {
                break;
            }
            let inputs: Vec<ContactInput> = again
                .iter()
                .map(|t| mapping::input(&t.user, &t.state))
                .collect();
            match self.client.upsert_contacts(&inputs).await {
                Ok(report) => {
                    for (t, input) in again.into_iter().zip(&inputs) {
                        match refusal(&report, input) {
                            Some(why) => retry(&mut outcomes, &t.deliveries, &why),
                            None => taken.push(t),
                        }
                    }
                }
                Err(e) => {
                    for t in &again {
                        retry(&mut outcomes, &t.deliveries, &e.to_string());
                    }
                }
            }
        }
        for t in &taken {
            retry(
                &mut outcomes,
                &t.deliveries,
                "the checkpoint kept changing under concurrent writers",
            );
        }
        metrics::counter!("nax_hubspot_contacts_upserted_total").increment(upserted);
        outcomes
    }
}
