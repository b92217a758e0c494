//! Acceptance of the audit archive: 10,000 events published to the SQS
//! FIFO audit queue on moto (50 users and `system`), archived by a worker
//! process (this test binary re-executed as a child) into S3 on moto
//! behind a TCP proxy, with the DynamoDB store on moto. The worker is
//! SIGKILLed twice (once while S3 is cut, with a batch pending) and
//! restarted; S3 is cut for 20 s. Afterwards every event is in the
//! archive exactly once, `verify` passes, and one flipped byte fails it.

use crate::common;

use api::events::sqs::{SqsPublisher, StaticCredentials};
use api::events::EventPublisher;
use api::store::dynamo::{DynamoConfig, DynamoStore};
use api::store::Store;
use chrono::{TimeZone, Utc};
use std::collections::HashSet;
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::audit::{self, state, AuditArchive, AuditSettings, S3Config, S3Sink, Sink};

const TEST: &str = "events_are_archived_exactly_once_through_kills_and_an_s3_outage";
const CHILD: &str = "NAX_AUDIT_CHILD";
/// Events published: 10,000, or `NAX_TEST_AUDIT_EVENTS`.
fn events_total() -> usize {
    std::env::var("NAX_TEST_AUDIT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const USERS: usize = 50;
const VISIBILITY: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Names {
    queue_prefix: String,
    table_prefix: String,
    bucket: String,
}

async fn store(moto: &str, prefix: &str) -> DynamoStore {
    DynamoStore::new(&DynamoConfig {
        endpoint: Some(moto.to_owned()),
        table_prefix: prefix.to_owned(),
        static_credentials: Some(StaticCredentials::test()),
        ..DynamoConfig::default()
    })
    .await
}

async fn s3(bucket: &str, endpoint: String) -> S3Sink {
    S3Sink::new(&S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(endpoint),
        static_credentials: Some(StaticCredentials::test()),
        ..S3Config::default()
    })
    .await
}

async fn queue_url(client: &aws_sdk_sqs::Client, name: String) -> String {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect("queue url")
        .queue_url()
        .expect("url")
        .to_owned()
}

/// The worker process: the archiver loop over the queue until killed.
async fn run_child() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,worker=info")
        .with_test_writer()
        .try_init();
    // Die with the parent test (a failed assertion there leaves no
    // worker behind).
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    });
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} unset"));
    let names = Names {
        queue_prefix: env("NAX_AUDIT_QUEUE_PREFIX"),
        table_prefix: env("NAX_AUDIT_TABLE_PREFIX"),
        bucket: env("NAX_AUDIT_BUCKET"),
    };
    let moto = env("NAX_AUDIT_MOTO");
    let source = api::queue::sqs::SqsSource::connect(
        &common::sqs_config(&moto, &names.queue_prefix),
        api::events::sqs::Queue::AuditLog,
    )
    .await
    .expect("the audit queue")
    .with_visibility(VISIBILITY);
    let source = Arc::new(source);
    let store: Arc<dyn Store> = Arc::new(store(&moto, &names.table_prefix).await);
    let sink = Arc::new(s3(&names.bucket, env("NAX_AUDIT_S3_ENDPOINT")).await);
    // A FIFO group with a message in flight gives no more until it is
    // deleted, so a batch holds about one receive's worth per group (~50
    // here) however long it gathers: a short gathering wait keeps the
    // test's 10,000 events from taking minutes.
    let settings = AuditSettings {
        wait: Duration::from_millis(100),
        ..AuditSettings::default()
    };
    let archive = Arc::new(AuditArchive::new(store, sink, settings));
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let options = api::queue::RunOptions {
        stop,
        ready: Arc::new(AtomicBool::new(false)),
    };
    api::queue::run(source, archive, options).await;
}

/// The worker process, SIGKILLed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(names: &Names, moto: &str, s3_endpoint: &str) -> Worker {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            &testkit::test_path(module_path!(), TEST),
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("NAX_AUDIT_QUEUE_PREFIX", &names.queue_prefix)
        .env("NAX_AUDIT_TABLE_PREFIX", &names.table_prefix)
        .env("NAX_AUDIT_BUCKET", &names.bucket)
        .env("NAX_AUDIT_S3_ENDPOINT", s3_endpoint)
        .env("NAX_AUDIT_MOTO", moto)
        .spawn()
        .expect("start the worker process");
    Worker(child)
}

fn sigkill(worker: &mut Worker) {
    worker.0.kill().expect("SIGKILL the worker"); // std's kill is SIGKILL on Unix
    worker.0.wait().expect("reap the worker");
}

fn streams() -> Vec<String> {
    let mut s: Vec<String> = (0..USERS).map(|u| format!("user-{u:02}")).collect();
    s.push("system".to_owned());
    s
}

/// Records archived and confirmed so far (one read: the head's count).
async fn archived(store: &dyn Store) -> u64 {
    let total = state::read_head(store)
        .await
        .map(|h| h.records)
        .unwrap_or(0);
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap();
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
        *last = Some(Instant::now());
        eprintln!("progress: {total} records archived");
    }
    total
}

/// Records archived per the stream checkpoints.
async fn archived_by_streams(store: &dyn Store) -> u64 {
    let mut total = 0;
    for s in streams() {
        total += state::read_stream(store, &s).await.unwrap().seq;
    }
    total
}

/// Polls `check` every second until it holds or `within` passes.
async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

async fn queue_counts(client: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let n = |a| {
        out.attributes()
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_archived_exactly_once_through_kills_and_an_s3_outage() {
    if std::env::var(CHILD).is_ok() {
        run_child().await;
        return;
    }
    let started = Instant::now();
    let total = events_total();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let names = Names {
        queue_prefix: format!("t{}-", &id[..12]),
        table_prefix: format!("t{}-", &id[..12]),
        bucket: format!("audit-{}", &id[..12]),
    };
    // A moto of the test's own: 10,000 events through SQS, DynamoDB and
    // S3 take minutes on a moto shared with other tests (it serves one
    // request at a time), and the state it piles up slows it further.
    let moto_port = testkit::free_port();
    let _moto_server = testkit::OwnServer::moto(moto_port);
    let moto = format!("http://127.0.0.1:{moto_port}");
    let sqs = SqsPublisher::client(&common::sqs_config(&moto, &names.queue_prefix)).await;
    SqsPublisher::ensure_queues(&sqs, &names.queue_prefix)
        .await
        .expect("queues on moto");
    let url = queue_url(&sqs, format!("{}audit-log-queue.fifo", names.queue_prefix)).await;
    let dlq = queue_url(
        &sqs,
        format!("{}audit-log-queue-dlq.fifo", names.queue_prefix),
    )
    .await;
    let store = store(&moto, &names.table_prefix).await;
    store.ensure_tables().await.expect("tables on moto");
    let direct = s3(&names.bucket, moto.clone()).await;
    direct
        .client()
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .expect("bucket on moto");
    let proxy = testkit::Proxy::start(format!("127.0.0.1:{moto_port}").parse().unwrap()).await;

    // Publish in the background, as the outbox relay would.
    let users = streams();
    // `order.accepted` goes to the audit queue only: a type the CRM sync
    // also gets (`order.filled`) would pile every event up in a
    // `hubspot-sync-queue` that nothing reads here, and moto scans a
    // whole queue on every send (its queue attributes), so publishing
    // would slow down with every event sent.
    let events: Vec<api::events::Event> = (0..total)
        .map(|i| {
            let user = &users[i % users.len()];
            let mut event = common::event((user != "system").then_some(user.as_str()), i);
            event.event_type = "order.accepted".to_owned();
            event
        })
        .collect();
    // moto scans the whole queue (its attributes, several times) for
    // every message sent, received or deleted, so the publisher keeps at
    // most ~100 events ahead of the archive: a deeper queue makes every
    // call slower (about 4 events a second were archived at ~600).
    let publisher = SqsPublisher::new(&common::sqs_config(&moto, &names.queue_prefix)).await;
    let to_publish = events.clone();
    let progress = store.clone();
    let publishing = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(1200);
        for (i, chunk) in to_publish.chunks(25).enumerate() {
            let published = (i * 25) as u64;
            while published > archived(&progress).await + 75 {
                assert!(
                    Instant::now() < deadline,
                    "the archive stopped at {published}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut tries = 0;
            while let Err(e) = publisher.publish(&common::shared(chunk)).await {
                tries += 1;
                assert!(tries < 20, "publishing keeps failing: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    let mut worker = spawn_child(&names, &moto, &proxy.http_url());
    // First kill, mid-run.
    until("1,500 records", Duration::from_secs(120), || async {
        archived(&store).await >= 1_500
    })
    .await;
    sigkill(&mut worker);
    let at_kill = archived(&store).await;
    eprintln!(
        "[{:?}] killed the worker at {at_kill} records",
        started.elapsed()
    );
    let mut worker = spawn_child(&names, &moto, &proxy.http_url());
    // Let the killed worker's messages come back and be archived (they
    // have been received twice now: one more receive would send them to
    // the dead-letter queue), then a few more batches.
    tokio::time::sleep(VISIBILITY + Duration::from_secs(2)).await;
    let batch = state::read_head(&store).await.unwrap().batch;
    until("two more batches", Duration::from_secs(60), || async {
        state::read_head(&store).await.unwrap().batch >= batch + 2
    })
    .await;

    // S3 cut for 20 s; the worker is killed with a batch pending.
    proxy.cut();
    let cut_at = Instant::now();
    eprintln!(
        "[{:?}] S3 cut at {} records",
        started.elapsed(),
        archived(&store).await
    );
    until(
        "a batch pending during the outage",
        Duration::from_secs(10),
        || async { state::read_head(&store).await.unwrap().pending.is_some() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut_at.elapsed())).await;
    sigkill(&mut worker);
    eprintln!(
        "[{:?}] killed the worker during the outage",
        started.elapsed()
    );
    let mut worker = spawn_child(&names, &moto, &proxy.http_url());
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(cut_at.elapsed())).await;
    proxy.restore();
    eprintln!("[{:?}] S3 restored", started.elapsed());

    publishing.await.expect("publisher");
    until(
        "every event archived",
        Duration::from_secs(1200),
        || async { archived(&store).await >= total as u64 },
    )
    .await;
    eprintln!("[{:?}] all archived", started.elapsed());
    until("the queue drained", Duration::from_secs(30), || async {
        queue_counts(&sqs, &url).await == (0, 0)
    })
    .await;
    sigkill(&mut worker);
    assert_eq!(
        queue_counts(&sqs, &dlq).await,
        (0, 0),
        "nothing dead-lettered"
    );
    let head = state::read_head(&store).await.unwrap();
    assert_eq!((head.pending, head.records), (None, total as u64));
    assert_eq!(archived_by_streams(&store).await, total as u64);

    // Read the whole archive back: every event exactly once.
    let keys = direct.list("audit/", "audit/~", usize::MAX).await.unwrap();
    assert_eq!(
        keys.len() as u64,
        head.batch,
        "one object per confirmed batch"
    );
    let mut seen = HashSet::new();
    for key in &keys {
        let body = direct
            .get(key, u64::MAX)
            .await
            .unwrap()
            .expect("listed object");
        for line in common::read_object(&body) {
            assert!(
                seen.insert(line.event_id.clone()),
                "{} archived twice",
                line.event_id
            );
        }
    }
    let sent: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(seen.len(), total);
    assert_eq!(seen, sent, "the archive holds exactly the published events");

    let (from, to) = (
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
    );
    let report = audit::verify(&direct, from, to).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!((report.records, report.streams), (total, USERS + 1));

    // One flipped byte in one object fails verify.
    let victim = &keys[keys.len() / 2];
    let mut body = direct.get(victim, u64::MAX).await.unwrap().unwrap();
    let at = body.len() / 2;
    body[at] ^= 0x20;
    direct.put(victim, body).await.unwrap();
    let report = audit::verify(&direct, from, to).await.unwrap();
    assert!(!report.ok(), "a flipped byte must fail verify");
    eprintln!("[{:?}] done: {} objects", started.elapsed(), keys.len());
}
