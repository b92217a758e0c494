//! `worker::hubspot::HubspotClient` against the HubSpot-shaped server of
//! `testkit::hubspot`: authentication, `429` with `Retry-After`, `5xx`
//! retries and their bound, a bad contact among good ones, and a burst
//! that never goes over the request limit (and, with a client that
//! believes in a higher limit, does).

use crate::hubspot_support;

use api::secret::Secret;
use hubspot_support::settings;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::hubspot::{HubspotConfig, HubspotServer};
use worker::hubspot::{ContactInput, HubspotClient, UpsertError};

fn contact(n: usize) -> ContactInput {
    let mut properties = BTreeMap::new();
    properties.insert("email".to_owned(), format!("user{n}@example.com"));
    properties.insert("firstname".to_owned(), format!("User {n}"));
    properties.insert("lifecyclestage".to_owned(), "subscriber".to_owned());
    properties.insert("na_x_user_id".to_owned(), format!("u{n}"));
    ContactInput {
        email: format!("user{n}@example.com"),
        properties,
    }
}

async fn server(limit: usize, window: Duration) -> HubspotServer {
    HubspotServer::start(HubspotConfig {
        limit,
        window,
        ..HubspotConfig::default()
    })
    .await
}

#[tokio::test]
async fn auth_is_refused_without_or_with_a_wrong_token() {
    let server = server(100, Duration::from_secs(10)).await;
    for token in ["", "pat-na1-wrong"] {
        let mut s = settings(&server, 100, Duration::from_secs(10));
        s.token = Secret::new(token);
        let client = HubspotClient::new(&s).unwrap();
        match client.upsert_contacts(&[contact(1)]).await {
            Err(UpsertError::Refused {
                status, category, ..
            }) => {
                assert_eq!(status, 401);
                assert_eq!(category, "INVALID_AUTHENTICATION");
            }
            other => panic!("token {token:?}: {other:?}"),
        }
    }
    assert!(server.contacts().is_empty());
    // The right token gets in.
    let client = HubspotClient::new(&settings(&server, 100, Duration::from_secs(10))).unwrap();
    client.upsert_contacts(&[contact(1)]).await.unwrap();
    assert_eq!(
        server.contacts()["user1@example.com"]["firstname"],
        "User 1"
    );
}

#[tokio::test]
async fn a_429_waits_its_retry_after() {
    let server = server(100, Duration::from_secs(10)).await;
    let client = HubspotClient::new(&settings(&server, 100, Duration::from_secs(10))).unwrap();
    server.fail_next_with_retry_after(1, 429, 1);
    let start = Instant::now();
    client.upsert_contacts(&[contact(1)]).await.unwrap();
    let requests = server.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(gap >= Duration::from_secs(1), "resent after {gap:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(server.over_limit_count(), 0);
}

#[tokio::test]
async fn a_429_without_retry_after_waits_the_interval_hint() {
    // The server's window (and its Interval-Milliseconds hint) is 700 ms.
    let window = Duration::from_millis(700);
    let server = server(100, window).await;
    let client = HubspotClient::new(&settings(&server, 100, window)).unwrap();
    server.fail_next(1, 429);
    client.upsert_contacts(&[contact(1)]).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at.duration_since(requests[0].at) >= window);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let server = server(100, Duration::from_secs(10)).await;
    let client = HubspotClient::new(&settings(&server, 100, Duration::from_secs(10))).unwrap();
    server.fail_next(2, 503);
    client.upsert_contacts(&[contact(1)]).await.unwrap();
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    // More failures than tries (4): the batch is given back.
    server.fail_next(10, 500);
    match client.upsert_contacts(&[contact(2)]).await {
        Err(UpsertError::Unavailable(why)) => assert!(why.contains("500"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 3 + 4);
    assert!(!server.contacts().contains_key("user2@example.com"));
}

#[tokio::test]
async fn a_refused_contact_does_not_poison_the_others() {
    let server = server(100, Duration::from_secs(10)).await;
    let client = HubspotClient::new(&settings(&server, 100, Duration::from_secs(10))).unwrap();
    let mut bad = contact(2);
    bad.properties
        .insert("no_such_property".to_owned(), "x".to_owned());
    let report = client
        .upsert_contacts(&[contact(1), bad, contact(3)])
        .await
        .unwrap();
    assert_eq!(
        report.rejected.keys().collect::<Vec<_>>(),
        vec!["user2@example.com"]
    );
    let contacts = server.contacts();
    assert!(contacts.contains_key("user1@example.com"));
    assert!(contacts.contains_key("user3@example.com"));
    assert!(!contacts.contains_key("user2@example.com"));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![400, 200]);
}

/// 30 batches at once against 5 requests per 500 ms.
async fn burst(client_limit: usize) -> (HubspotServer, Duration) {
    let window = Duration::from_millis(500);
    let server = server(5, window).await;
    let client = Arc::new(HubspotClient::new(&settings(&server, client_limit, window)).unwrap());
    let start = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.upsert_contacts(&[contact(n)]).await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("every batch is taken in the end");
    }
    (server, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_never_goes_over_the_limit() {
    let (server, took) = burst(5).await;
    assert_eq!(server.over_limit_count(), 0);
    assert_eq!(server.requests().len(), 30);
    assert_eq!(server.contacts().len(), 30);
    // 30 requests, 5 per window: at least 5 windows waited.
    assert!(took >= Duration::from_millis(2500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_limit_is_caught_by_the_server() {
    // The same burst from a client that believes in 50 per window: the
    // server counts what came over, and the 429s still get every batch in.
    let (server, _) = burst(50).await;
    assert!(server.over_limit_count() > 0);
    assert_eq!(server.contacts().len(), 30);
}
