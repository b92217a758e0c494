//! Hub encoder benches: one channel message written to JSON bytes by
//! `hub::protocol::encode::Encoder`, as the pair task does once per message
//! whatever the number of subscribers.
//!
//! Run: `cargo bench -p benches --bench encode -- --warm-up-time 2 --measurement-time 5`
//!
//! BTC-USD scales (price 2 decimals, quantity 6) from
//! `feeds::sandbox_pairs::default_pairs()`; books from `benches::book_with_levels`
//! (prices ~64 000.00, quantities 0.001 to 100 BTC). Each iteration is one
//! encoder call: writing into the encoder's reused buffer plus the copy out
//! into a fresh `Bytes` (one allocation), exactly the production call. The
//! checksum is passed in precomputed (the pair task computes it once per
//! book change for every channel; see the `book` bench for its cost).
//! Throughput is reported in bytes of JSON produced.

use benches::{book_with_levels, delta_stream, DeltaMix, STREAM_SEED};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hub::protocol::encode::{Encoder, Header};
use orderbook::checksum::checksum_top;

fn header(channel: &str) -> Header<'_> {
    Header {
        channel,
        epoch: "9f2c1a7b",
        seq: 1_043_512,
        prev_seq: 1_043_511,
        ts: 1_763_940_000_124_001,
    }
}

fn encode(c: &mut Criterion) {
    let spec = benches::btc_usd();
    let book = book_with_levels(1_000);
    let mut group = c.benchmark_group("encode");
    let mut enc = Encoder::new();

    // An `update` with 3 changed levels (the first 3 deltas of the
    // realistic stream: near the top, both sides).
    let deltas = delta_stream(STREAM_SEED, 3, 1_000, DeltaMix::REALISTIC);
    let mut after = book.clone();
    for d in &deltas {
        after.apply_delta(*d);
    }
    let checksum = after.checksum();
    let h = header("book.BTC-USD");
    let len = enc.book_update(&spec, &h, &deltas, checksum).len();
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("book_update_3_levels", |b| {
        b.iter(|| {
            enc.book_update(
                black_box(&spec),
                black_box(&h),
                black_box(&deltas),
                checksum,
            )
        })
    });

    // A `depth` message of the top 10 levels each side of a 1 000-level book.
    let h = header("depth10.BTC-USD");
    let checksum = checksum_top(&book, 10);
    let len = enc.depth(&spec, &h, &book, 10, checksum, None).len();
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("depth10", |b| {
        b.iter(|| {
            enc.depth(
                black_box(&spec),
                black_box(&h),
                black_box(&book),
                10,
                checksum,
                None,
            )
        })
    });

    // A `snapshot` of a 50-level (each side) book, all levels.
    let book50 = book_with_levels(50);
    let h = header("book.BTC-USD");
    let len = enc
        .book_snapshot(&spec, &h, "subscribe", &book50, usize::MAX)
        .len();
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("snapshot_50_levels", |b| {
        b.iter(|| {
            enc.book_snapshot(
                black_box(&spec),
                black_box(&h),
                "subscribe",
                black_box(&book50),
                usize::MAX,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
