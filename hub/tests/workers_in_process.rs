//! With embedded defaults `nax-hub` runs the queue consumers in process
//! over its event log (docs/ARCHITECTURE.md, "After the queues"): a
//! registration and a sandbox KYC reach the audit archive under
//! `<data_dir>/audit/`, chained and verifiable, and the consumers'
//! metrics are on the hub's `/metrics`.

use crate::common;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use worker::audit::{DirSink, Report};

async fn verify(data_dir: &std::path::Path) -> Report {
    let sink = DirSink::in_data_dir(data_dir);
    let now = chrono::Utc::now();
    worker::audit::verify(
        &sink,
        now - chrono::TimeDelta::hours(2),
        now + chrono::TimeDelta::hours(1),
    )
    .await
    .expect("the archive reads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_reaches_the_audit_archive_in_process() {
    let config = common::test_config(|c| c.worker.audit_batch_wait_ms = 100);
    let data_dir = config.data_dir.clone();
    let hub = hub::app::start(&config).await.expect("hub starts");
    let http = reqwest::Client::new();
    let base = format!("http://{}", hub.addr);
    let email = "audit-me@example.com";
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": "Correct-Horse-9-Battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let user_id = user["user_id"].as_str().expect("user_id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = verify(&data_dir).await;
        if report.records > 0 {
            let mut trail = Vec::new();
            let sink = DirSink::in_data_dir(&data_dir);
            let now = chrono::Utc::now();
            let summary = worker::audit::export(
                &sink,
                &user_id,
                now - chrono::TimeDelta::hours(2),
                now + chrono::TimeDelta::hours(1),
                &mut trail,
            )
            .await
            .unwrap();
            if summary.records > 0 {
                let text = String::from_utf8(trail).unwrap();
                assert!(text.contains("\"user.registered\""), "{text}");
                assert!(summary.ok(), "{:?}", summary.problems);
                break report;
            }
        }
        assert!(Instant::now() < deadline, "nothing archived: {report}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(report.ok(), "{report}");
    let (status, metrics) = common::http_get(hub.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("nax_worker_processed_total{consumer=\"audit\"}"),
        "the audit consumer's counter is on the hub's /metrics"
    );
    hub.stop().await;
}
