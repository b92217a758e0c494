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
//! `candle` and `candles_300` are the messages of `candles1m.PAIR`: an
//! open-candle update and a 300-candle state message.
//! Throughput is reported in bytes of JSON produced.
//!
//! The `deflate` group compresses each of those messages as the hub does
//! for subscribers that negotiated permessage-deflate
//! (`hub::fanout::deflate::compress`, once per message per topic), and
//! prints each one's size plain, at the hub's level and at zlib's default
//! level 6.

use benches::{book_with_levels, delta_stream, DeltaMix, STREAM_SEED};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hub::fanout::deflate;
use hub::protocol::encode::{Encoder, Header};
use orderbook::candle::Candle;
use orderbook::checksum::checksum_top;
use orderbook::{Price, Qty};

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
    // Each message once, for the `deflate` group.
    let mut samples: Vec<(&str, Vec<u8>)> = Vec::new();

    // An `update` with 3 changed levels (the first 3 deltas of the
    // realistic stream: near the top, both sides).
    let deltas = delta_stream(STREAM_SEED, 3, 1_000, DeltaMix::REALISTIC);
    let mut after = book.clone();
    for d in &deltas {
        after.apply_delta(*d);
    }
    let checksum = after.checksum();
    let h = header("book.BTC-USD");
    let text = enc.book_update(&spec, &h, &deltas, checksum);
    let len = text.len();
    samples.push(("book_update_3_levels", text.to_vec()));
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
    let text = enc.depth(&spec, &h, &book, 10, checksum, None);
    let len = text.len();
    samples.push(("depth10", text.to_vec()));
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
    let text = enc.book_snapshot(&spec, &h, "subscribe", &book50, usize::MAX);
    let len = text.len();
    samples.push(("snapshot_50_levels", text.to_vec()));
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

    // A `candle` update (the open 1 m candle) and a `candles` state
    // message of 300 1 m candles (prices ~64 000.00, volumes up to ~20 BTC).
    let candles = candles_300();
    let h = header("candles1m.BTC-USD");
    let open = candles[299];
    let text = enc.candle_update(&spec, &h, &open, false);
    let len = text.len();
    samples.push(("candle", text.to_vec()));
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("candle", |b| {
        b.iter(|| enc.candle_update(black_box(&spec), black_box(&h), black_box(&open), false))
    });
    let text = enc.candles(&spec, &h, "subscribe", candles.iter(), Some(open.start));
    let len = text.len();
    samples.push(("candles_300", text.to_vec()));
    eprintln!("encode/candles_300: {len} bytes");
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("candles_300", |b| {
        b.iter(|| {
            enc.candles(
                black_box(&spec),
                black_box(&h),
                "subscribe",
                black_box(&candles).iter(),
                Some(open.start),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("deflate");
    for (name, text) in &samples {
        let size = |p: Option<bytes::Bytes>| p.map_or(text.len(), |p| p.len());
        eprintln!(
            "deflate/{name}: {} bytes plain, {} at the hub's level, {} at level 6",
            text.len(),
            size(deflate::compress(text)),
            size(deflate::compress_at_level(text, 6)),
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(*name, |b| b.iter(|| deflate::compress(black_box(text))));
    }
    group.finish();
}

/// 300 consecutive 1 m candles with a few trades each (deterministic).
fn candles_300() -> Vec<Candle> {
    let start = 1_763_940_000_000_000;
    (0..300u64)
        .map(|i| {
            let mut c = Candle::opened(
                start + i * 60_000_000,
                Price(6_400_000 + i * 7),
                Qty(1_250_000),
            );
            for k in 0..(i % 5) {
                c.add(
                    Price(6_400_000 + i * 7 + k * 13),
                    Qty(3_000_000 + k * 1_000_001),
                );
            }
            c
        })
        .collect()
}

criterion_group!(benches, encode);
criterion_main!(benches);
