//! Acceptance of the HubSpot CRM sync: users written to a real store as
//! the API writes them (each registered, then some with a profile, KYC
//! submitted, verified, a completed deposit, a fill, so every lifecycle
//! stage is represented), their events sent to a real
//! `hubspot-sync-queue` on a moto of the test's own (created by
//! `SqsPublisher::ensure_queues`, bodies as `SqsPublisher` writes them),
//! consumed by `api::queue::run` (four loops sharing one `HubspotSync`)
//! against the HubSpot-shaped server of `testkit::hubspot`, with `429`s
//! and `5xx` injected. Every contact ends with the right stage and
//! properties, no request ever went over the limit, and an old event
//! replayed afterwards changes nothing.
//!
//! The same flow ([`sync_acceptance`]) runs twice: 1,000 users
//! (`NAX_TEST_HUBSPOT_USERS`) on the embedded store, and 200
//! (`NAX_TEST_HUBSPOT_DYNAMO_USERS`) on DynamoDB tables on that moto, where
//! the checkpoints' conditional writes (docs/HUBSPOT.md, "Checkpoints and
//! delivery") are DynamoDB's. moto slows down as its tables and queue
//! fill (200 users take about 30 s, 400 about 90 s; with 1,000 a write
//! failed while the users were still being written, after 166 s), hence
//! the smaller size there.

use crate::hubspot_support;

use api::events::sqs::SqsPublisher;
use api::events::{Event, EventType};
use api::queue::sqs::SqsSource;
use api::queue::{run, RunOptions};
use api::store::dynamo::{DynamoConfig, DynamoStore};
use api::store::embedded::EmbeddedStore;
use api::store::{KycStatus, Store};
use hubspot_support::{publish, register, settings, sqs_config, update};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::hubspot::{HubspotConfig, HubspotServer};
use tokio::sync::watch;
use worker::hubspot::mapping::hubspot_time;
use worker::hubspot::HubspotSync;

/// The number in the variable `name`, else `default`.
fn users(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
/// Visible messages the publishers keep the queue under. moto reads the
/// queue's attributes, a scan of every message, on each message sent
/// and each message received, so a queue thousands deep makes every
/// call slow (with 3,500 queued, sends timed out and no batch got
/// through); SQS itself has no such cost.
const BACKLOG: u64 = 100;
const LIMIT: usize = 8;
/// Concurrent `SqsPublisher::publish` calls, and `run` loops.
const PUBLISHERS: usize = 4;
const CONSUMERS: usize = 4;
const WINDOW: Duration = Duration::from_secs(1);

/// What one user's contact must end as.
type Expected = BTreeMap<String, String>;

/// Writes user `n` and its history; returns its events and contact.
async fn user_history(store: &dyn Store, n: usize) -> (Vec<Event>, Expected) {
    let user_id = format!("user-{n:04}");
    let email = format!("trader{n:04}@example.com");
    let mut events = vec![register(store, &user_id, &email).await];
    let mut expected = Expected::new();
    let depth = n % 6; // 0 subscriber, 1-2 lead, 3 sql, 4-5 customer
    if depth >= 1 {
        let e = Event::new(
            EventType::UserProfileUpdated,
            Some(&user_id),
            json!({ "fields": ["first_name", "last_name", "country"] }),
        );
        let change = |u: &mut api::store::User| {
            u.first_name = Some(format!("First{n}"));
            u.last_name = Some("Trader".to_owned());
            u.country = Some("DE".to_owned());
        };
        events.push(update(store, &user_id, change, e).await);
        expected.insert("firstname".into(), format!("First{n}"));
        expected.insert("lastname".into(), "Trader".into());
        expected.insert("country".into(), "DE".into());
    }
    if depth >= 2 {
        let e = Event::new(
            EventType::KycStatusChanged,
            Some(&user_id),
            json!({
                "from": KycStatus::None, "to": KycStatus::Pending,
                "submission_id": format!("sub-{n}"), "document_type": "passport",
                "document_sha256": "ab".repeat(32), "document_bytes": 20480,
            }),
        );
        let pending = |u: &mut api::store::User| u.kyc_status = KycStatus::Pending;
        events.push(update(store, &user_id, pending, e).await);
    }
    if depth >= 3 {
        let e = Event::new(
            EventType::KycStatusChanged,
            Some(&user_id),
            json!({
                "from": KycStatus::Pending, "to": KycStatus::Verified,
                "submission_id": format!("sub-{n}"), "reason": null,
            }),
        );
        let verified = |u: &mut api::store::User| u.kyc_status = KycStatus::Verified;
        events.push(update(store, &user_id, verified, e).await);
    }
    if depth == 4 {
        for (status, previous) in [("pending", None), ("completed", Some("pending"))] {
            events.push(Event::new(
                EventType::DepositStateChanged,
                Some(&user_id),
                json!({
                    "transaction_id": format!("tx-{n}"), "channel": "crypto",
                    "asset": "USDC", "amount": "250.00", "provider": "sandbox",
                    "status": status, "previous_status": previous,
                }),
            ));
        }
        let completed = hubspot_time(&events.last().unwrap().time);
        expected.insert("na_x_first_deposit_at".into(), completed.clone());
        expected.insert("na_x_last_deposit_at".into(), completed);
    }
    if depth == 5 {
        events.push(Event::new(
            EventType::OrderFilled,
            Some(&user_id),
            json!({
                "fill": {
                    "trade_id": format!("T-{n}"), "order_id": format!("o-{n}"),
                    "pair": "BTC-USD", "side": "buy", "price": "64000.00",
                    "qty": "0.010000", "liquidity": "taker", "time": "2026-12-03T17:00:00Z",
                },
                "order_id": format!("o-{n}"),
            }),
        ));
        expected.insert(
            "na_x_first_trade_at".into(),
            hubspot_time(&events.last().unwrap().time),
        );
    }
    let stored = store.user(&user_id).await.unwrap().unwrap();
    let stage = [
        "subscriber",
        "lead",
        "lead",
        "salesqualifiedlead",
        "customer",
        "customer",
    ][depth];
    let kyc = [
        "NONE", "NONE", "PENDING", "VERIFIED", "VERIFIED", "VERIFIED",
    ][depth];
    expected.insert("email".into(), email);
    expected.insert("lifecyclestage".into(), stage.into());
    expected.insert("na_x_user_id".into(), user_id);
    expected.insert("na_x_kyc_status".into(), kyc.into());
    expected.insert(
        "na_x_registered_at".into(),
        hubspot_time(&stored.created_at),
    );
    expected.insert(
        "na_x_last_event_at".into(),
        hubspot_time(&events.last().unwrap().time),
    );
    (events, expected)
}

/// The contacts that differ from `expected` (first few, for the message).
fn mismatches(server: &HubspotServer, expected: &BTreeMap<String, Expected>) -> Vec<String> {
    let contacts = server.contacts();
    let mut out = Vec::new();
    for (email, want) in expected {
        match contacts.get(email) {
            None => out.push(format!("{email}: missing")),
            Some(got) => {
                let keys: std::collections::BTreeSet<&String> =
                    got.keys().chain(want.keys()).collect();
                let diff: Vec<String> = keys
                    .into_iter()
                    .filter(|k| got.get(*k) != want.get(*k))
                    .map(|k| format!("{k}: got {:?}, want {:?}", got.get(k), want.get(k)))
                    .collect();
                if !diff.is_empty() {
                    out.push(format!("{email}: {}", diff.join("; ")));
                }
            }
        }
    }
    if contacts.len() != expected.len() {
        out.push(format!(
            "{} contacts, want {}",
            contacts.len(),
            expected.len()
        ));
    }
    out
}

/// 1,000 users (`NAX_TEST_HUBSPOT_USERS`) on the embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_ends_with_the_right_contact_within_the_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A moto of the test's own: the shared one serves the other tests'
    // calls one at a time in between.
    let moto_port = testkit::free_port();
    let _moto = testkit::OwnServer::moto(moto_port);
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let moto = format!("http://127.0.0.1:{moto_port}");
    sync_acceptance(store, &moto, users("NAX_TEST_HUBSPOT_USERS", 1_000)).await;
}

/// 200 users (`NAX_TEST_HUBSPOT_DYNAMO_USERS`) on DynamoDB tables on the
/// test's own moto: the checkpoints' conditional writes, their merges
/// when a worker finds another got there first, and the stale replay are
/// DynamoDB's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_ends_with_the_right_contact_on_dynamodb() {
    let moto_port = testkit::free_port();
    let _moto = testkit::OwnServer::moto(moto_port);
    let moto = format!("http://127.0.0.1:{moto_port}");
    let store = DynamoStore::new(&DynamoConfig {
        endpoint: Some(moto.clone()),
        region: "us-east-1".to_owned(),
        table_prefix: format!("hs{}-", uuid::Uuid::new_v4().simple()),
        static_credentials: Some(api::aws::StaticCredentials::test()),
    })
    .await;
    store.ensure_tables().await.expect("tables on moto");
    sync_acceptance(
        Arc::new(store),
        &moto,
        users("NAX_TEST_HUBSPOT_DYNAMO_USERS", 200),
    )
    .await;
}

/// The acceptance flow (see the module doc) with `users` users on `store`
/// and the queue on the moto at `moto`.
async fn sync_acceptance(store: Arc<dyn Store>, moto: &str, users: usize) {
    let started = Instant::now();
    let server = HubspotServer::start(HubspotConfig {
        limit: LIMIT,
        window: WINDOW,
        ..HubspotConfig::default()
    })
    .await;
    let config = sqs_config(moto);
    let sqs = SqsPublisher::client(&config).await;
    SqsPublisher::ensure_queues(&sqs, &config.queue_prefix)
        .await
        .expect("queues on moto");

    // Users and their events, each user's events for one publisher (so
    // they are sent in order, as the relay sends them).
    let mut per_publisher: Vec<Vec<Event>> = vec![Vec::new(); PUBLISHERS];
    let mut expected = BTreeMap::new();
    let mut replay = None;
    for n in 0..users {
        let (events, want) = user_history(&*store, n).await;
        if n % 6 == 4 && replay.is_none() {
            replay = Some(events[0].clone()); // a customer's user.registered
        }
        expected.insert(want["email"].clone(), want);
        per_publisher[n % PUBLISHERS].extend(events);
    }
    let events_total: usize = per_publisher.iter().map(Vec::len).sum();
    let written = started.elapsed();
    eprintln!("{users} users written in {written:?}");

    // Faults: 429s with Retry-After, then 5xx the client retries, then
    // (below) more 5xx than it tries, so that batch comes back from SQS.
    server.fail_next_with_retry_after(2, 429, 1);
    server.fail_next(3, 503);
    let (stop_tx, stop) = watch::channel(false);
    let sync =
        Arc::new(HubspotSync::new(store.clone(), &settings(&server, LIMIT, WINDOW)).unwrap());
    let mut loops = Vec::new();
    for _ in 0..CONSUMERS {
        let source = SqsSource::connect(&config, api::events::sqs::Queue::HubspotSync)
            .await
            .unwrap()
            .with_visibility(Duration::from_secs(4));
        let options = RunOptions {
            stop: stop.clone(),
            ready: Arc::new(AtomicBool::new(false)),
        };
        loops.push(tokio::spawn(run(Arc::new(source), sync.clone(), options)));
    }
    server.fail_next(5, 500);

    // Publishers in parallel with the consumers, as the relay runs.
    let sends: Vec<_> = per_publisher
        .into_iter()
        .map(|events| {
            let (sqs, config) = (sqs.clone(), config.clone());
            tokio::spawn(async move {
                use api::queue::Source as _;
                let queue = SqsSource::connect(&config, api::events::sqs::Queue::HubspotSync)
                    .await
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(600);
                for chunk in events.chunks(50) {
                    while queue.depth().await.map_or(true, |d| d.visible > BACKLOG) {
                        assert!(Instant::now() < deadline, "the queue never drained");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    publish(&sqs, &config.queue_prefix, chunk).await;
                }
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    let published = started.elapsed();
    eprintln!("{} events published at {published:?}", events_total);

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let wrong = mismatches(&server, &expected);
        if wrong.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let email = wrong[0].split(':').next().unwrap_or_default().to_owned();
            let user_id = expected.get(&email).map(|e| e["na_x_user_id"].clone());
            if let Some(user_id) = user_id {
                let cp = store
                    .checkpoint("hubspot", &format!("contact#{user_id}"))
                    .await
                    .unwrap();
                eprintln!("checkpoint of {user_id}: {cp:?}");
                for r in server
                    .requests()
                    .iter()
                    .filter(|r| r.emails.contains(&email))
                {
                    eprintln!("request {:?} status {}", r.at, r.status);
                }
            }
            // A message that failed its five receives is in the
            // dead-letter queue, its events never synced.
            let queue = SqsSource::connect(&config, api::events::sqs::Queue::HubspotSync).await;
            if let Ok(queue) = queue {
                use api::queue::Source as _;
                eprintln!("hubspot-sync-queue: {:?}", queue.depth().await);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} contacts wrong, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged = started.elapsed();
    assert_eq!(
        server.over_limit_count(),
        0,
        "a request went over the limit"
    );
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&429) && statuses.contains(&503) && statuses.contains(&500));

    // An old event replayed after the newer ones changes nothing. The
    // contacts can be right while a batch that failed earlier is still
    // due back from SQS (its events stale by now, though a retried
    // request for them may still be on its way), so the count of
    // requests is taken once the queue is empty.
    let depth = SqsSource::connect(&config, api::events::sqs::Queue::HubspotSync)
        .await
        .unwrap();
    let drained = |what: &'static str| {
        let depth = &depth;
        async move {
            use api::queue::Source as _;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let d = depth.depth().await.unwrap();
                if d.visible == 0 && d.in_flight == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{what}: {d:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    drained("the queue never drained after the contacts converged").await;
    let before = server.contacts();
    let requests_before = server.requests().len();
    publish(&sqs, &config.queue_prefix, &[replay.expect("a customer")]).await;
    drained("the replayed event was not consumed").await;
    assert_eq!(server.contacts(), before);
    assert_eq!(
        server.requests().len(),
        requests_before,
        "a stale event sent nothing"
    );
    stop_tx.send(true).unwrap();
    for l in loops {
        l.await.unwrap();
    }
    eprintln!(
        "{} events: written {written:?}, published {published:?}, converged {converged:?}, {} requests",
        events_total,
        requests_before
    );
}
