//! The audit archive's format and checks: the chain formula against an
//! independent recomputation, the directory and S3 sinks, and `verify`
//! catching each kind of tampering.

use crate::common;

use chrono::{TimeZone, Utc};
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use worker::audit::{self, AuditArchive, AuditSettings, DirSink, Problem, Sink};

fn settings() -> AuditSettings {
    AuditSettings {
        put_give_up: std::time::Duration::from_secs(2),
        ..AuditSettings::default()
    }
}

/// Archives `batches` (each one `handle` call) into `dir`; returns the
/// sink.
async fn archive(dir: &Path, batches: &[Vec<api::events::Event>]) -> Arc<DirSink> {
    let sink = Arc::new(DirSink::new(dir.join("objects")));
    let store = embedded(&dir.join("store"));
    let archive = AuditArchive::new(store, sink.clone(), settings());
    api::queue::Consumer::recover(&archive).await.unwrap();
    for batch in batches {
        let deliveries: Vec<_> = batch.iter().map(delivery).collect();
        let outcomes = api::queue::Consumer::handle(&archive, &deliveries).await;
        assert!(
            outcomes.iter().all(|o| *o == api::queue::Outcome::Done),
            "{outcomes:?}"
        );
    }
    sink
}

fn all_time() -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    (
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
    )
}

fn sample() -> Vec<Vec<api::events::Event>> {
    let users = [Some("alice"), Some("bob"), None, Some("carol\"quote")];
    (0..3)
        .map(|b| {
            (0..12)
                .map(|i| event(users[(i + b) % users.len()], b * 100 + i))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn records_follow_the_documented_chain_formula() {
    let dir = tempfile::tempdir().unwrap();
    let batches = sample();
    archive(dir.path(), &batches).await;
    let files = files(&dir.path().join("objects"));
    assert_eq!(files.len(), 3, "one object per batch: {files:?}");
    let mut chains: HashMap<String, (u64, String)> = HashMap::new();
    let mut ids = Vec::new();
    for (key, path) in &files {
        assert!(key.starts_with("audit/"), "{key}");
        for line in read_object(&std::fs::read(path).unwrap()) {
            let (seq, prev) = chains
                .get(&line.stream)
                .cloned()
                .unwrap_or((0, "0".repeat(64)));
            assert_eq!(line.seq, seq + 1, "seq counts from 1 per stream");
            assert_eq!(
                line.prev, prev,
                "prev is the previous hash (64 zeros first)"
            );
            let hash = expected_hash(&line.prev, &line.stream, line.seq, &line.event_bytes);
            assert_eq!(
                line.hash, hash,
                "hash over prev, stream, seq and the event bytes"
            );
            let event: api::events::Event = serde_json::from_str(&line.event_bytes).unwrap();
            assert_eq!(line.stream, event.user_id.as_deref().unwrap_or("system"));
            chains.insert(line.stream.clone(), (line.seq, line.hash.clone()));
            ids.push(line.event_id);
        }
    }
    let sent: Vec<String> = batches.iter().flatten().map(|e| e.id.clone()).collect();
    assert_eq!(ids, sent, "every event once, in delivery order");
    assert_eq!(chains["system"].0, 9);
    assert_eq!(chains["carol\"quote"].0, 9);
}

#[tokio::test]
async fn a_delivery_with_its_queues_json_is_archived_with_that_json_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(DirSink::new(dir.path().join("objects")));
    let archive = AuditArchive::new(
        embedded(&dir.path().join("store")),
        sink.clone(),
        settings(),
    );
    api::queue::Consumer::recover(&archive).await.unwrap();
    let (with, without) = (event(Some("alice"), 1), event(Some("alice"), 2));
    // The same event as the log's line has it, its keys in another order:
    // what the archive keeps and hashes is this text, not its own.
    let mut fields: Vec<(String, serde_json::Value)> = match serde_json::to_value(&with).unwrap() {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        other => panic!("{other}"),
    };
    fields.reverse();
    let text = format!(
        "{{{}}}",
        fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_ne!(text, serde_json::to_string(&with).unwrap());
    let deliveries = [
        api::queue::Delivery {
            json: Some(Arc::from(text.as_str())),
            ..delivery(&with)
        },
        delivery(&without),
    ];
    let outcomes = api::queue::Consumer::handle(&archive, &deliveries).await;
    assert!(outcomes.iter().all(|o| *o == api::queue::Outcome::Done));
    let files = files(&dir.path().join("objects"));
    let lines = read_object(&std::fs::read(&files[0].1).unwrap());
    assert_eq!(lines[0].event_bytes, text);
    assert_eq!(
        lines[1].event_bytes,
        serde_json::to_string(&without).unwrap()
    );
    let (from, to) = all_time();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.records, 2);
}

#[tokio::test]
async fn dir_sink_round_trips_objects_by_key_range() {
    let dir = tempfile::tempdir().unwrap();
    let sink = DirSink::new(dir.path());
    let keys = [
        "audit/2026/12/01/10/000000000001-a.ndjson.gz",
        "audit/2026/12/01/10/000000000002-b.ndjson.gz",
        "audit/2026/12/01/11/000000000003-c.ndjson.gz",
    ];
    for (i, key) in keys.iter().enumerate() {
        sink.put(key, vec![i as u8; 10 + i]).await.unwrap();
    }
    sink.put(keys[0], b"replaced".to_vec()).await.unwrap();
    assert_eq!(sink.get(keys[0], 100).await.unwrap().unwrap(), b"replaced");
    assert_eq!(
        sink.get(keys[2], 100).await.unwrap().unwrap(),
        vec![2u8; 12]
    );
    assert!(sink
        .get("audit/2026/12/01/10/none.ndjson.gz", 100)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        sink.get(keys[2], 11).await,
        Err(audit::SinkError::TooLarge { max: 11, .. })
    ));
    let all = sink.list("audit/", "audit/~", usize::MAX).await.unwrap();
    assert_eq!(all, keys);
    let hour_10 = sink
        .list("audit/2026/12/01/10/", "audit/2026/12/01/11/", usize::MAX)
        .await
        .unwrap();
    assert_eq!(hour_10, &keys[..2]);
    assert_eq!(sink.list("audit/", "audit/~", 1).await.unwrap(), &keys[..1]);
    assert!(sink.put("audit/../escape.ndjson.gz", vec![]).await.is_err());
    let leftovers: Vec<_> = walkdir(dir.path())
        .into_iter()
        .filter(|p| p.rsplit('/').next().unwrap().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(walkdir(&entry.path()));
        } else {
            out.push(entry.path().to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn verify_passes_a_clean_archive_and_fails_on_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let sink = archive(dir.path(), &sample()).await;
    let (from, to) = all_time();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!((report.objects, report.records, report.streams), (3, 36, 4));
    let files = files(&dir.path().join("objects"));
    let mut body = std::fs::read(&files[1].1).unwrap();
    let at = body.len() / 2;
    body[at] ^= 0x01;
    std::fs::write(&files[1].1, body).unwrap();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(!report.ok(), "a flipped byte must fail: {report}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Unreadable { key, .. } if *key == files[1].0)),
        "{report}"
    );
}

#[tokio::test]
async fn verify_reports_a_removed_object_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let sink = archive(dir.path(), &sample()).await;
    let files = files(&dir.path().join("objects"));
    std::fs::remove_file(&files[1].1).unwrap();
    let (from, to) = all_time();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Gap { .. })),
        "{report}"
    );
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            Problem::MissingObjects {
                first: 2,
                last: 2,
                ..
            }
        )),
        "{report}"
    );
    // The first object removed: every stream starts past seq 1.
    std::fs::remove_file(&files[0].1).unwrap();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Gap { expected: 1, .. })),
        "{report}"
    );
}

#[tokio::test]
async fn verify_reports_a_duplicated_object() {
    let dir = tempfile::tempdir().unwrap();
    let sink = archive(dir.path(), &sample()).await;
    let files = files(&dir.path().join("objects"));
    let copy = files[1].0.replace(".ndjson.gz", "-copy.ndjson.gz");
    sink.put(&copy, std::fs::read(&files[1].1).unwrap())
        .await
        .unwrap();
    let (from, to) = all_time();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(!report.ok());
    let duplicates: Vec<_> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::Duplicate { key, .. } if key.contains("/000000000002-")))
        .collect();
    // The batch number, and each of the 12 events and (stream, seq), on
    // whichever of the two copies comes second in key order.
    assert_eq!(duplicates.len(), 1 + 12 + 12, "{report}");
    assert_eq!(report.problems.len(), duplicates.len(), "{report}");
}

#[tokio::test]
async fn verify_reports_an_edited_record_with_a_recomputed_hash_as_a_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let sink = archive(dir.path(), &sample()).await;
    let files = files(&dir.path().join("objects"));
    let mut lines = read_object(&std::fs::read(&files[0].1).unwrap());
    // Edit alice's first record (she has more records after it) and
    // recompute its own hash, as a careful forger would.
    let target = lines.iter().position(|l| l.stream == "alice").unwrap();
    let edited = lines[target].event_bytes.replace("101.25", "999.99");
    assert_ne!(edited, lines[target].event_bytes);
    lines[target].event_bytes = edited;
    let l = &lines[target];
    lines[target].hash = expected_hash(&l.prev, &l.stream, l.seq, &l.event_bytes);
    let text: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                r#"{{"stream":{},"seq":{},"prev":"{}","hash":"{}","event":{}}}"#,
                serde_json::to_string(&l.stream).unwrap(),
                l.seq,
                l.prev,
                l.hash,
                l.event_bytes
            )
        })
        .collect();
    std::fs::write(&files[0].1, audit::record::encode_object(&text)).unwrap();
    let (from, to) = all_time();
    let report = audit::verify(&*sink, from, to).await.unwrap();
    assert!(!report.ok());
    assert_eq!(
        report.problems.len(),
        1,
        "only the successor's link breaks: {report}"
    );
    assert!(
        matches!(&report.problems[0], Problem::BrokenLink { stream, seq: 2, .. } if stream == "alice"),
        "{report}"
    );
}

#[tokio::test]
async fn a_range_starting_after_the_archive_notes_late_streams_and_export_checks_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let ten = Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap();
    let eleven = Utc.with_ymd_and_hms(2026, 12, 1, 11, 5, 0).unwrap();
    let batches = vec![
        (0..4).map(|i| event_at(Some("alice"), ten, i)).collect(),
        (4..8)
            .map(|i| {
                event_at(
                    if i % 2 == 0 {
                        Some("alice")
                    } else {
                        Some("bob")
                    },
                    eleven,
                    i,
                )
            })
            .collect::<Vec<_>>(),
    ];
    let sink = archive(dir.path(), &batches).await;
    let report = audit::verify(&*sink, eleven, eleven).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.records, 4);
    assert_eq!(report.notes.len(), 1, "alice starts at seq 5: {report}");
    assert!(report.notes[0].contains("starts at seq 5"), "{report}");
    // From the archive's first hour, a stream past seq 1 is a gap.
    let files = files(&dir.path().join("objects"));
    assert!(files[0].0.starts_with("audit/2026/12/01/10/"));
    assert!(files[1].0.starts_with("audit/2026/12/01/11/"));
    std::fs::remove_file(&files[0].1).unwrap();
    let report = audit::verify(&*sink, ten, eleven).await.unwrap();
    assert!(!report.ok(), "{report}");

    let dir = tempfile::tempdir().unwrap();
    let sink = archive(dir.path(), &batches).await;
    let mut out = Vec::new();
    let summary = audit::export(&*sink, "alice", ten, eleven, &mut out)
        .await
        .unwrap();
    assert!(summary.ok(), "{summary:?}");
    assert_eq!((summary.objects, summary.records), (2, 6));
    let text = String::from_utf8(out).unwrap();
    let exported: Vec<String> = text
        .lines()
        .map(|l| audit::record::parse_line(l.as_bytes()).unwrap().event_id)
        .collect();
    let alice: Vec<String> = batches
        .iter()
        .flatten()
        .filter(|e| e.user_id.as_deref() == Some("alice"))
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(exported, alice);
    let seqs: HashSet<u64> = text
        .lines()
        .map(|l| audit::record::parse_line(l.as_bytes()).unwrap().seq)
        .collect();
    assert_eq!(seqs, (1..=6).collect());
}

#[tokio::test]
async fn s3_sink_round_trips_on_moto_with_sse_kms_and_a_checksum() {
    let endpoint = testkit::shared_moto_endpoint();
    let bucket = format!("audit-{}", uuid::Uuid::new_v4().simple());
    let sink = audit::S3Sink::new(&audit::S3Config {
        bucket: bucket.clone(),
        kms_key_id: Some("alias/nax-test".to_owned()),
        endpoint: Some(endpoint),
        static_credentials: Some(api::aws::StaticCredentials::test()),
        ..audit::S3Config::default()
    })
    .await;
    sink.client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = (1..=3)
        .map(|i| format!("audit/2026/12/01/10/{i:012}-e{i}.ndjson.gz"))
        .collect();
    for key in &keys {
        sink.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let head = sink
        .client()
        .head_object()
        .bucket(&bucket)
        .key(&keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/x-ndjson"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    assert_eq!(
        sink.get(&keys[1], 1000).await.unwrap().unwrap(),
        keys[1].as_bytes()
    );
    assert!(sink
        .get("audit/2026/12/01/10/nope.ndjson.gz", 1000)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        sink.get(&keys[1], 5).await,
        Err(audit::SinkError::TooLarge { .. })
    ));
    assert_eq!(
        sink.list("audit/", "audit/~", usize::MAX).await.unwrap(),
        keys
    );
    assert_eq!(
        sink.list(&keys[0], "audit/~", 1).await.unwrap(),
        &keys[1..2]
    );
    assert_eq!(
        sink.list("audit/", &keys[2], usize::MAX).await.unwrap(),
        &keys[..2]
    );
}
