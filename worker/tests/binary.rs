//! The `nax-worker` binary, as an operator runs it, with embedded
//! defaults (no AWS): `nax-worker audit` archives the event log under
//! `<data_dir>/audit/` and serves `/health`, `/ready` and `/metrics`;
//! SIGTERM stops it cleanly; `audit verify` passes on the archive and fails
//! once a byte of an object is flipped; `audit export` writes one user's
//! trail, to a file or as the only thing on standard output (its log on
//! standard error). On SQS (moto): SIGTERM mid-batch gives the messages back.
//! `nax-worker webhooks` on SQS: `binary_webhooks.rs`.

use api::events::log::EventLog;
use api::events::{Event, EventPublisher, EventType};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub(crate) fn worker(data_dir: &Path, health_port: u16, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nax-worker"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NAX_DATA_DIR", data_dir)
        .env("NAX_WORKER_HEALTH_PORT", health_port.to_string())
        .env("NAX_LOG", "warn");
    command
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    worker(data_dir, testkit::free_port(), args)
        .output()
        .expect("nax-worker runs")
}

pub(crate) async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

/// The value of an unlabelled-suffix sample line `name{labels} value`.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test]
async fn the_audit_worker_archives_serves_its_endpoints_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Event> = (0..40)
        .map(|i| {
            Event::new(
                EventType::OrderAccepted,
                Some(&format!("user-{}", i % 4)),
                json!({ "i": i }),
            )
        })
        .collect();
    EventLog::open(dir.path())
        .unwrap()
        .publish(&crate::common::shared(&events))
        .await
        .unwrap();

    let port = testkit::free_port();
    // Its log: a file, so JSON lines by default (checked after it stops).
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("nax-worker.log");
    let child = worker(dir.path(), port, &["audit"])
        .env("NAX_LOG", "info")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("nax-worker starts");
    let mut child = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = "nax_worker_processed_total{consumer=\"audit\"}";
    loop {
        if let (Some((200, _)), Some((200, _)), Some((200, metrics))) = (
            get(port, "/health").await,
            get(port, "/ready").await,
            get(port, "/metrics").await,
        ) {
            if sample(&metrics, series) == Some(events.len() as f64) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not archive the log in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM: a clean exit, promptly.
    terminate(&mut child).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() >= 2,
        "the start and stop lines:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "an ANSI escape in a log file");
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(value[key].is_string(), "no {key} in {line}");
        }
    }

    // Read back: verify passes and counts every event.
    let hour = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H").to_string();
    let now = chrono::Utc::now();
    let (from, to) = (
        hour(now - chrono::TimeDelta::hours(1)),
        hour(now + chrono::TimeDelta::hours(1)),
    );
    let verify = run(
        dir.path(),
        &["audit", "verify", "--from", &from, "--to", &to],
    );
    let report = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(
        verify.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Export one user's trail: exactly that user's 10 events, in order.
    let out = dir.path().join("trail.ndjson");
    let export = run(
        dir.path(),
        &[
            "audit",
            "export",
            "--user",
            "user-1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let trail = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<String> = trail
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: Vec<String> = events
        .iter()
        .filter(|e| e.user_id.as_deref() == Some("user-1"))
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids, want);

    // To standard output, with logging on: the same trail and nothing
    // else there; the log lines go to standard error.
    let export = worker(
        dir.path(),
        testkit::free_port(),
        &["audit", "export", "--user", "user-1"],
    )
    .env("NAX_LOG", "info")
    .output()
    .expect("nax-worker runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&export.stdout),
        String::from_utf8_lossy(&export.stderr),
    );
    assert!(export.status.success(), "{stderr}");
    assert_eq!(stdout, trail, "standard output is exactly the trail");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"level\":\"INFO\"") && l.contains("audit trail")),
        "the log lines on standard error: {stderr}"
    );

    // Flip one byte of one object: verify fails.
    let object = walk(&dir.path().join("audit"))
        .into_iter()
        .next()
        .expect("an object");
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&object, bytes).unwrap();
    let verify = run(
        dir.path(),
        &["audit", "verify", "--from", &from, "--to", &to],
    );
    assert!(!verify.status.success(), "verify passed a tampered archive");
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "gz") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// SIGTERM while the audit worker holds a batch it is still gathering (a
/// long `audit_batch_wait_ms`, so its messages are in flight on SQS, on
/// moto): it exits promptly and cleanly, and every message it held is back
/// in the queue at once (released, not left to the visibility timeout) or
/// archived; a second run archives each event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_gives_back_the_messages_in_flight() {
    use api::events::sqs::{Queue, SqsPublisher};
    use api::queue::sqs::SqsSource;
    use api::queue::Source as _;

    const EVENTS: usize = 20;
    let moto = testkit::shared_moto_endpoint();
    let prefix = format!("sig{}-", uuid::Uuid::new_v4().simple());
    let sqs = crate::common::sqs_config(&moto, &prefix);
    SqsPublisher::ensure_queues(&SqsPublisher::client(&sqs).await, &prefix)
        .await
        .expect("queues on moto");
    // One user (a FIFO message group) each: SQS hands out no more of a
    // group while one of its messages is in flight, so distinct groups
    // let the worker hold them all at once.
    let events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            Event::new(
                EventType::OrderAccepted,
                Some(&format!("sig-user-{i}")),
                json!({ "i": i }),
            )
        })
        .collect();
    SqsPublisher::new(&sqs)
        .await
        .publish(&crate::common::shared(&events))
        .await
        .expect("published");
    let queue = SqsSource::connect(&sqs, Queue::AuditLog)
        .await
        .expect("the audit queue");

    let dir = tempfile::tempdir().unwrap();
    let config = |wait_ms: u64| {
        let path = dir.path().join(format!("worker-{wait_ms}.toml"));
        std::fs::write(
            &path,
            format!(
                "[api]\nevents_to_sqs = true\nsqs_endpoint = \"{moto}\"\nsqs_queue_prefix = \"{prefix}\"\n\
                 aws_access_key_id = \"test\"\naws_secret_access_key = \"test\"\n\
                 [worker]\naudit_batch_max = 500\naudit_batch_wait_ms = {wait_ms}\n"
            ),
        )
        .unwrap();
        path
    };
    let gathering = config(60_000);
    let mut child = start_audit(dir.path(), &gathering);

    // Every message received and held: in flight, the batch still
    // gathering (for a minute).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let depth = queue.depth().await.expect("queue depth");
        if depth.in_flight as usize == EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never held the whole batch: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    terminate(&mut child).await;
    let depth = queue.depth().await.expect("queue depth");
    let archived = records(dir.path()).await;
    assert_eq!(depth.in_flight, 0, "messages left in flight: {depth:?}");
    assert_eq!(
        depth.visible as usize + archived,
        EVENTS,
        "each message either back in the queue or archived: {depth:?}, {archived} archived"
    );

    // A second run archives what came back, each event once.
    let quick = config(200);
    let mut child = start_audit(dir.path(), &quick);
    let deadline = Instant::now() + Duration::from_secs(90);
    while records(dir.path()).await < EVENTS {
        assert!(Instant::now() < deadline, "the second run did not archive");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = child.0.wait();
    let report = verify_archive(dir.path()).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, EVENTS, "each event archived once");
}

/// The archive under `<dir>/audit/` read back over the hours around now.
async fn verify_archive(dir: &Path) -> worker::audit::Report {
    let now = chrono::Utc::now();
    let sink = worker::audit::DirSink::in_data_dir(dir);
    worker::audit::verify(
        &sink,
        now - chrono::TimeDelta::hours(1),
        now + chrono::TimeDelta::hours(1),
    )
    .await
    .expect("the archive reads")
}

/// How many records the archive under `<dir>/audit/` holds.
async fn records(dir: &Path) -> usize {
    if !dir.join("audit").exists() {
        return 0;
    }
    verify_archive(dir).await.records
}

/// Sends SIGTERM and expects a clean exit within 20 s.
pub(crate) async fn terminate(child: &mut Running) {
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// `nax-worker audit` with the configuration file `config`.
fn start_audit(dir: &std::path::Path, config: &std::path::Path) -> Running {
    let child = worker(
        dir,
        testkit::free_port(),
        &["--config", config.to_str().unwrap(), "audit"],
    )
    .spawn()
    .expect("nax-worker starts");
    Running(child)
}
