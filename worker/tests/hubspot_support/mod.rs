//! What the HubSpot sync tests share: settings against a
//! [`testkit::hubspot::HubspotServer`], and users and events written as
//! the API writes them.

#![allow(dead_code)]

use api::events::sqs::{Queue, SqsConfig, StaticCredentials};
use api::events::{now, Event, EventType};
use api::secret::Secret;
use api::store::{KycStatus, Store, User, Write};
use aws_sdk_sqs::Client;
use std::time::Duration;
use testkit::hubspot::HubspotServer;
use worker::hubspot::HubspotSettings;

/// Settings for `server` with a short window and quick retries.
pub fn settings(server: &HubspotServer, limit: usize, window: Duration) -> HubspotSettings {
    HubspotSettings {
        base_url: server.url(),
        token: Secret::new(server.token()),
        requests_per_window: limit,
        window,
        batch_max: 100,
        batch_wait: Duration::from_millis(300),
        max_attempts: 4,
        backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
    }
}

/// An SQS config on the moto at `endpoint` with a fresh queue prefix.
pub fn sqs_config(endpoint: &str) -> SqsConfig {
    SqsConfig {
        endpoint: Some(endpoint.to_owned()),
        region: "us-east-1".to_owned(),
        queue_prefix: format!("hs{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(StaticCredentials::test()),
    }
}

pub fn new_user(user_id: &str, email: &str) -> User {
    let at = now();
    User {
        user_id: user_id.to_owned(),
        email: email.to_owned(),
        password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        first_name: None,
        last_name: None,
        phone: None,
        country: None,
        kyc_status: KycStatus::None,
        kyc_updated_at: at,
        mfa_secret: None,
        mfa_enabled: false,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// Registers `user_id` as `auth::account` does: the user and its
/// `user.registered` in one commit. Returns the event.
pub async fn register(store: &dyn Store, user_id: &str, email: &str) -> Event {
    let event = Event::new(
        EventType::UserRegistered,
        Some(user_id),
        serde_json::json!({"user_id": user_id, "email": email}),
    );
    store
        .commit(vec![
            Write::CreateUser(new_user(user_id, email)),
            Write::Emit(event.clone()),
        ])
        .await
        .expect("register");
    event
}

/// Applies `change` to the stored user (next version) and commits it
/// with `event`, as `users::profile` and `users::kyc` do.
pub async fn update(
    store: &dyn Store,
    user_id: &str,
    change: impl FnOnce(&mut User),
    event: Event,
) -> Event {
    let stored = store.user(user_id).await.expect("read").expect("user");
    let mut user = stored.clone();
    change(&mut user);
    user.version = stored.version + 1;
    user.updated_at = now();
    store
        .commit(vec![
            Write::UpdateUser {
                user,
                expected_version: stored.version,
            },
            Write::Emit(event.clone()),
        ])
        .await
        .expect("update user");
    event
}

/// Sends `events` to `hubspot-sync-queue` in order, as `SqsPublisher`
/// does (`SendMessageBatch` of ten, the body the event's JSON), but to
/// that queue only: the publisher also writes the FIFO audit queue, whose
/// sends slow down on moto as it fills (thousands of messages here).
pub async fn publish(client: &Client, prefix: &str, events: &[Event]) {
    let url = client
        .get_queue_url()
        .queue_name(format!("{prefix}{}", Queue::HubspotSync.name()))
        .send()
        .await
        .expect("GetQueueUrl")
        .queue_url()
        .expect("queue url")
        .to_owned();
    for chunk in events.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(e).expect("event json"))
                    .build()
                    .expect("entry")
            })
            .collect::<Vec<_>>();
        // A loaded moto can time out; a send that landed anyway is a
        // duplicate, which the consumer absorbs (at least once).
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries.clone()))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    assert!(out.failed().is_empty(), "rejected: {:?}", out.failed());
                    break;
                }
                Err(e) if attempt < 4 => {
                    eprintln!("SendMessageBatch failed (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("SendMessageBatch: {e:?}"),
            }
        }
    }
}
