//! L2 book benches: delta apply on a 1 000-level book and the top-10 checksum.
//!
//! Run: `cargo bench -p benches --bench book -- --warm-up-time 2 --measurement-time 5`
//!
//! Delta benches time applying a whole pre-generated stream of
//! [`STREAM_LEN`] deltas (`L2Book::apply_delta` in a loop) to a fresh clone
//! of the 1 000-level book; the clone is made by `iter_batched` outside the
//! timed section. Throughput is reported per delta.

use benches::{book_with_levels, delta_stream, DeltaMix, STREAM_SEED};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use orderbook::{BookDelta, L2Book};

/// Levels per side of the benched book.
const DEPTH: usize = 1_000;
/// Deltas per timed iteration: long enough that the per-iteration overhead
/// of `iter_batched` vanishes, short enough for ~100 samples in 5 s.
const STREAM_LEN: usize = 10_000;

#[inline(never)]
fn apply_stream(book: &mut L2Book, deltas: &[BookDelta]) {
    for d in deltas {
        book.apply_delta(*d);
    }
}

fn delta_apply(c: &mut Criterion) {
    let book = book_with_levels(DEPTH);
    let mut group = c.benchmark_group("book/apply_delta_1000_levels");
    group.throughput(Throughput::Elements(STREAM_LEN as u64));
    for (name, mix) in [
        // 80 % updates / 10 % inserts / 10 % deletes, level index geometric
        // from the top (p = 0.1).
        ("realistic_mix", DeltaMix::REALISTIC),
        // Only quantity changes of existing levels, geometric from the top.
        ("update_existing", DeltaMix::UPDATES_ONLY),
        // 50 / 25 / 25, level uniform over all 1 000: inserts and deletes
        // deep in the book move most of the side's Vec.
        ("worst_case_uniform", DeltaMix::WORST_CASE),
    ] {
        let deltas = delta_stream(STREAM_SEED, STREAM_LEN, DEPTH, mix);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || book.clone(),
                |book| apply_stream(book, black_box(&deltas)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn checksum(c: &mut Criterion) {
    // 1 000 levels per side; only the top 10 of each are hashed. Prices
    // ~6_400_000 (7 digits), quantities 10^3..10^8 (4 to 9 digits).
    let book = book_with_levels(DEPTH);
    c.bench_function("book/checksum_top10_1000_levels", |b| {
        b.iter(|| black_box(&book).checksum())
    });
}

criterion_group!(benches, delta_apply, checksum);
criterion_main!(benches);
