//! The webhook applier as `nax-worker webhooks` runs it: consuming
//! `webhook-processing-queue` on SQS (moto) with the DynamoDB store (moto),
//! the API's route publishing through the outbox relay. Three concurrent
//! deliveries of one webhook, the queue's message duplicated and two
//! applier loops consuming it at once, credit once; a worker process
//! SIGKILLed while it holds the received message, before it applied it,
//! loses nothing: the next worker run applies it once. Part of
//! `webhooks.rs`.

use super::*;
use api::events::sqs::{Queue, SqsConfig, SqsPublisher};
use api::events::Event;
use api::queue::sqs::SqsSource;
use api::queue::{run, RunOptions, Source as _};
use api::store::{Record, RecordKey, Store};
use api::webhooks::worker::WebhookApplier;
use api::ApiConfig;
use axum::extract::FromRef;
use common::money::{dynamodb_tables, random_prefix, start_money_on_sqs_and};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::watch;

/// How long a worker's received message stays invisible (the queue's own
/// default is 30 s; a killed worker's message comes back after this).
const VISIBILITY: Duration = Duration::from_secs(5);

/// A server on DynamoDB tables under `tables`, publishing to SQS queues
/// under `queues` (both on the shared moto), whose webhook applier does
/// not run in process: the test runs the workers.
async fn server(queues: &str, tables: &str) -> TestApi {
    let config = sqs_config(queues);
    let store = dynamodb_tables(tables).await;
    start_money_on_sqs_and(config, Arc::new(store)).await
}

/// The API config of the server and of the worker process: events to
/// the SQS queues under `queues` on the shared moto, no in-process
/// applier.
fn sqs_config(queues: &str) -> ApiConfig {
    ApiConfig {
        aws_access_key_id: "test".into(),
        aws_secret_access_key: Some(api::secret::Secret::new("test")),
        events_to_sqs: true,
        sqs_endpoint: testkit::shared_moto_endpoint(),
        sqs_queue_prefix: queues.to_owned(),
        webhook_worker_in_process: false,
        ..config_with_delay(600_000)
    }
}

async fn queue(t: &TestApi, queue: Queue) -> SqsSource {
    SqsSource::connect(&SqsConfig::from_api(&t.api.config), queue)
        .await
        .expect("the queue on moto")
}

/// A worker loop as `nax-worker webhooks` runs it ([`run`] of a
/// [`WebhookApplier`] on `webhook-processing-queue`), in this process,
/// on the server's parts; stopped by sending `true` on the returned
/// channel.
async fn applier_loop(t: &TestApi) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let source = queue(t, Queue::WebhookProcessing)
        .await
        .with_visibility(VISIBILITY);
    let (stop_tx, stop) = watch::channel(false);
    let options = RunOptions {
        stop,
        ready: Arc::new(AtomicBool::new(false)),
    };
    let applier = WebhookApplier::new(FromRef::from_ref(&t.api));
    let handle = tokio::spawn(run(Arc::new(source), Arc::new(applier), options));
    (stop_tx, handle)
}

/// Waits until `webhook-processing-queue` holds nothing (visible, in
/// flight or dead-lettered).
async fn wait_drained(t: &TestApi) {
    let source = queue(t, Queue::WebhookProcessing).await;
    let deadline = Instant::now() + common::webhooks::DEADLINE;
    loop {
        let depth = source.depth().await.expect("queue depth");
        if depth == api::queue::Depth::default() {
            return;
        }
        assert!(Instant::now() < deadline, "the queue kept {depth:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ids of the `webhook.applied` / `webhook.rejected` events of
/// `webhook_id` the relay published (read from `audit-log-queue.fifo`,
/// which carries every event and has no other consumer here), once at
/// least one arrived and a receive then found nothing more.
async fn published_outcomes(t: &TestApi, webhook_id: &str) -> BTreeSet<String> {
    let audit = queue(t, Queue::AuditLog).await;
    let deadline = Instant::now() + common::webhooks::DEADLINE;
    let mut ids = BTreeSet::new();
    loop {
        let got = audit
            .receive(10, Duration::from_secs(1))
            .await
            .expect("receive");
        if got.is_empty() && !ids.is_empty() {
            return ids;
        }
        let handles: Vec<String> = got.iter().map(|d| d.handle.clone()).collect();
        audit.delete(&handles).await.expect("delete");
        ids.extend(
            got.into_iter()
                .map(|d| d.event)
                .filter(|e| e.event_type == "webhook.applied" || e.event_type == "webhook.rejected")
                .filter(|e| e.data["webhook_id"] == webhook_id)
                .map(|e| e.id.clone()),
        );
        assert!(
            Instant::now() < deadline,
            "no outcome of {webhook_id} published"
        );
    }
}

/// The credit is there once, every delivery of the queue handled: the
/// receipt moved once, the deposit completed, `amount` available, one
/// outcome published.
async fn credited_once(t: &TestApi, token: &str, tx: &str, webhook_id: &str, amount: &str) {
    t.handled_receipt("stripe", webhook_id).await;
    t.wait_status("/fiat/transactions", token, tx, "completed")
        .await;
    t.wait_available(token, "USD", amount).await;
    wait_drained(t).await;
    let receipt = t.receipt("stripe", webhook_id).await.unwrap();
    assert_eq!(
        (receipt.status, receipt.version),
        (ReceiptStatus::Applied, 2),
        "moved once"
    );
    let outcomes = published_outcomes(t, webhook_id).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(t.balance(token, "USD").await.2, amount);
}

/// Test (a) through the queue: three concurrent deliveries of one signed
/// body to the route store one receipt and queue one `webhook.received`;
/// that message is sent to the queue once more (SQS and the relay deliver
/// at least once), and two applier loops consume the queue at once: the
/// deposit is credited once, one `webhook.applied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_three_times_concurrently_credits_once_through_sqs_on_dynamodb() {
    let t = server(&random_prefix(), &random_prefix()).await;
    let (token, user, tx) = open_deposit(&t, "three-sqs@example.com", "stripe", "10").await;
    let body = stripe_paid(&user, &tx, "10.00", "evt_three_sqs");
    super::applier::delivered_three_times_at_once(&t, &body).await;

    // The one message the relay queued, sent again as a duplicate.
    let webhooks = queue(&t, Queue::WebhookProcessing).await;
    let deadline = Instant::now() + common::webhooks::DEADLINE;
    let received: Event = loop {
        let got = webhooks
            .receive(10, Duration::from_secs(1))
            .await
            .expect("receive");
        if let Some(first) = got.first() {
            let handles: Vec<String> = got.iter().map(|d| d.handle.clone()).collect();
            webhooks.release(&handles).await.unwrap();
            break Event::clone(&first.event);
        }
        assert!(Instant::now() < deadline, "webhook.received never queued");
    };
    assert_eq!(received.data["webhook_id"], "evt_three_sqs");
    let sqs = SqsConfig::from_api(&t.api.config);
    let client = SqsPublisher::client(&sqs).await;
    let url = SqsPublisher::queue_url(&client, &sqs.queue_prefix, Queue::WebhookProcessing)
        .await
        .unwrap();
    client
        .send_message()
        .queue_url(url)
        .message_body(serde_json::to_string(&received).unwrap())
        .send()
        .await
        .expect("the duplicate sent");

    let loops = [applier_loop(&t).await, applier_loop(&t).await];
    credited_once(&t, &token, &tx, "evt_three_sqs", "10.00000000").await;
    for (stop, handle) in loops {
        stop.send(true).unwrap();
        handle.await.unwrap();
    }
    // A redelivery by the provider afterwards is a duplicate.
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
    assert_eq!(t.balance(&token, "USD").await.0, "10.00000000");
}

/// This test's name, which the worker process runs (see [`run_child`]).
const KILL_TEST: &str =
    "a_worker_killed_between_receipt_and_apply_loses_nothing_on_sqs_and_dynamodb";
/// Set (to the queue prefix, table prefix and data directory, one per
/// line) in the worker process.
const CHILD: &str = "NAX_TEST_WEBHOOK_WORKER";
/// What the worker process prints once it holds a received message.
const HOLDING: &str = "webhook worker: holding a received message";

/// Test (b) with a worker process: the test binary re-executed runs the
/// applier on the queue ([`run_child`]) and is SIGKILLed while it holds
/// the received message, before it applied it (the receipt still
/// `received`, the message in flight); a new worker run applies it
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_receipt_and_apply_loses_nothing_on_sqs_and_dynamodb() {
    if let Ok(names) = std::env::var(CHILD) {
        run_child(&names).await;
        return;
    }
    let (queues, tables) = (random_prefix(), random_prefix());
    let t = server(&queues, &tables).await;
    let (token, user, tx) = open_deposit(&t, "killed@example.com", "stripe", "50").await;

    let names = format!("{queues}\n{tables}\n{}", t.dir.path().display());
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &testkit::test_path(module_path!(), KILL_TEST),
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, names)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker process");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();

    let body = stripe_paid(&user, &tx, "50.00", "evt_killed");
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "accepted"})));
    let holding = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("the worker's output") {
            if line == HOLDING {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(holding, Ok(true), "the worker never held the message");

    // Received and not applied: in flight, the receipt still `received`,
    // the deposit pending, nothing credited.
    let webhooks = queue(&t, Queue::WebhookProcessing).await;
    let depth = webhooks.depth().await.unwrap();
    assert!(depth.in_flight >= 1, "{depth:?}");
    let receipt = t.receipt("stripe", "evt_killed").await.unwrap();
    assert_eq!(
        (receipt.status, receipt.version),
        (ReceiptStatus::Received, 1)
    );
    let listed = t.listed("/fiat/transactions", &token, &tx).await.unwrap();
    assert_eq!(listed["status"], "pending");
    assert_eq!(t.balance(&token, "USD").await.2, "0.00000000");
    child.kill().await.expect("SIGKILL the worker"); // SIGKILL on Unix

    // The next worker run gets the message once its visibility lapses.
    let (stop, handle) = applier_loop(&t).await;
    credited_once(&t, &token, &tx, "evt_killed", "50.00000000").await;
    stop.send(true).unwrap();
    handle.await.unwrap();
    let (s, ack) = t.signed_webhook("stripe", &body).await;
    assert_eq!((s, &ack), (200, &json!({"status": "duplicate"})));
    assert_eq!(t.balance(&token, "USD").await.0, "50.00000000");
}

/// The worker process of [`KILL_TEST`]: the API's parts for a worker
/// (`Api::start_for_worker`, as `nax-worker` builds them) on the test's
/// tables, queues and data directory (its data key), and the applier
/// loop on `webhook-processing-queue`, until killed. Its store holds the
/// first read of a webhook receipt (see [`Holding`]). Its venue is a
/// sandbox of its own: it is killed before it could reach one.
async fn run_child(names: &str) {
    // Die with the test (a failed assertion there leaves no worker).
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    });
    let mut names = names.lines();
    let mut next = || names.next().expect("queue prefix, table prefix, data dir");
    let (queues, tables, dir) = (next(), next(), next());
    let config = sqs_config(queues);
    let store: Arc<dyn Store> = Arc::new(Holding(dynamodb_tables(tables).await));
    let venue = feeds::SandboxVenue::start(feeds::SandboxConfig {
        events_per_sec: 0,
        ..feeds::SandboxConfig::default()
    })
    .expect("sandbox");
    let api = api::Api::start_for_worker(api::ApiParts {
        publisher: Arc::new(SqsPublisher::new(&SqsConfig::from_api(&config)).await),
        config,
        data_dir: dir.into(),
        store,
        venue: Arc::new(venue) as Arc<dyn feeds::Venue>,
        self_url: String::new(),
    })
    .await
    .expect("the worker's parts");
    let source = SqsSource::connect(&SqsConfig::from_api(&api.config), Queue::WebhookProcessing)
        .await
        .expect("the webhook queue")
        .with_visibility(VISIBILITY);
    let (_stop, stop) = watch::channel(false);
    let options = RunOptions {
        stop,
        ready: Arc::new(AtomicBool::new(false)),
    };
    let applier = WebhookApplier::new(FromRef::from_ref(&api));
    run(Arc::new(source), Arc::new(applier), options).await;
}

/// The worker process's store: DynamoDB, except that the first read of a
/// webhook receipt (the applier's first step on a received message,
/// before anything is applied) prints [`HOLDING`] and never returns, so
/// the test kills the worker at that point. Test code only: nothing in
/// the applier knows of it.
struct Holding(api::store::dynamo::DynamoStore);

#[async_trait::async_trait]
impl Store for Holding {
    async fn commit(&self, writes: Vec<api::store::Write>) -> api::store::StoreResult<()> {
        self.0.commit(writes).await
    }
    async fn get(&self, key: RecordKey<'_>) -> api::store::StoreResult<Option<Record>> {
        if matches!(key, RecordKey::WebhookReceipt { .. }) {
            println!("{HOLDING}");
            std::future::pending::<()>().await;
        }
        self.0.get(key).await
    }
    async fn user_by_email(
        &self,
        email: &str,
    ) -> api::store::StoreResult<Option<api::store::User>> {
        self.0.user_by_email(email).await
    }
    async fn transactions(
        &self,
        user_id: &str,
        query: &api::store::TxQuery,
    ) -> api::store::StoreResult<api::store::Page<api::store::Transaction>> {
        self.0.transactions(user_id, query).await
    }
    async fn in_status(
        &self,
        query: &api::store::StatusQuery<'_>,
    ) -> api::store::StoreResult<Vec<api::store::Transaction>> {
        self.0.in_status(query).await
    }
    async fn outbox_pending(
        &self,
        limit: usize,
    ) -> api::store::StoreResult<Vec<api::store::OutboxEntry>> {
        self.0.outbox_pending(limit).await
    }
    async fn outbox_ack(&self, positions: &[String]) -> api::store::StoreResult<()> {
        self.0.outbox_ack(positions).await
    }
    async fn ping(&self) -> api::store::StoreResult<()> {
        self.0.ping().await
    }
}
