//! Upstream ingest: reading one recorded Shift frame
//! (`benches/data/shift_frames.ndjson`, made by `examples/record_shift.rs`
//! from `nax-venue`) into the adapter's GraphQL response, four ways (and the
//! bounds check alone):
//!
//! - `serde_json_tree`: what `feeds::shift::parse_frame` did until
//!   2026-12-05 (kept here as [`tree_frame`]), a `serde_json::Value` of the
//!   whole frame, then its payload into the response type;
//! - `parse_frame`: `feeds::shift::parse_frame` now, bounds check included:
//!   the envelope read with the payload left as raw JSON text, then the
//!   payload into the response type once `type` is known;
//! - `bounds_check`: `UPSTREAM_BOUNDS.check` alone, the scan that every
//!   frame gets before any parser;
//! - `serde_json_typed`: `serde_json::from_slice` straight into a typed
//!   frame (one pass, no bounds check);
//! - `simd_json_typed`: `simd_json::serde::from_slice` into the same typed
//!   frame, on a copy of the bytes (simd-json parses in place).
//!
//! All four end with the same `data` tree; the later step (its
//! `orderBookUpdates` or `trades` field into the adapter's types) is the
//! same for each, so it is left out. Results: docs/BENCHMARKS.md, "Ingest".

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;
use std::hint::black_box;

#[derive(Deserialize)]
#[allow(dead_code)]
struct TypedFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Payload {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// `parse_frame` as it was before the envelope decode: the bounds check,
/// the whole frame as a `Value`, then the payload out of it (into this
/// file's mirror of the adapter's response type).
fn tree_frame(bytes: &[u8]) -> (String, Payload) {
    feeds::shift::UPSTREAM_BOUNDS.check(bytes).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let id = v["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(v["type"], "next");
    let payload = v.get_mut("payload").map(serde_json::Value::take).unwrap();
    (id, serde_json::from_value(payload).unwrap())
}

fn frames() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/shift_frames.ndjson");
    let text = std::fs::read_to_string(path).expect("recorded frames");
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

fn ingest(c: &mut Criterion) {
    let frames = frames();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    // The three decoders agree on every frame.
    for f in &frames {
        let tree = match feeds::shift::parse_frame(f).unwrap() {
            feeds::shift::Frame::Subscription(m) => format!("{m:?}"),
            other => panic!("not a subscription frame: {other:?}"),
        };
        let typed: TypedFrame = serde_json::from_slice(f).unwrap();
        assert!(tree.contains(&format!("{:?}", tree_frame(f).1.data.unwrap())));
        let simd: TypedFrame = simd_json::serde::from_slice(&mut f.clone()).unwrap();
        let data = |t: &TypedFrame| t.payload.as_ref().and_then(|p| p.data.clone());
        assert_eq!(data(&typed), data(&simd));
        assert!(tree.contains(&format!("{:?}", data(&typed).unwrap())));
    }
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("serde_json_tree", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(tree_frame(black_box(f)));
            }
        })
    });
    group.bench_function("bounds_check", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(feeds::shift::UPSTREAM_BOUNDS.check(black_box(f)).is_ok());
            }
        })
    });
    group.bench_function("parse_frame", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(feeds::shift::parse_frame(black_box(f)).unwrap());
            }
        })
    });
    group.bench_function("serde_json_typed", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(serde_json::from_slice::<TypedFrame>(black_box(f)).unwrap());
            }
        })
    });
    let mut scratch = Vec::new();
    group.bench_function("simd_json_typed", |b| {
        b.iter(|| {
            for f in &frames {
                scratch.clear();
                scratch.extend_from_slice(f);
                black_box(
                    simd_json::serde::from_slice::<TypedFrame>(black_box(&mut scratch)).unwrap(),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
