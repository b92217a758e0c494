//! In-process fan-out benches: one book update encoded once and queued to
//! every subscriber of its topic.
//!
//! Run: `cargo bench -p benches --bench fanout -- --warm-up-time 2 --measurement-time 5`
//!
//! Set-up (untimed): `n` `hub::fanout::Subscriber`s (outbound queue bound
//! 1 MiB), each subscribed to the channel with `queue.subscribe(ch, 0,
//! OnOverflow::Resync)` + `queue.release(&[ch])` and added to one
//! `hub::fanout::Topic`; a `ShardPool` of `available_parallelism` workers on
//! a tokio multi-thread runtime of as many threads, built by the bench.
//!
//! Timed, per iteration (`iter_custom`, one `Instant` pair):
//! 1. `Encoder::book_update` of a 3-level BTC-USD update (checksum
//!    precomputed) and its wrapping as a `ChannelMessage`, as the pair
//!    task does;
//! 2. `Topic::publish` (history push; one job per non-empty shard to the
//!    pool's workers, subscribers assigned by `conn_id % shards`);
//! 3. waiting until the frame is in every subscriber's queue. The shard
//!    workers push to their slice in order, so the bench thread waits for
//!    the **last** subscriber of each slice, parked in
//!    `OutboundQueue::ready()` (woken by the push, as a connection's writer
//!    would be) rather than spinning, so it does not take a core from the
//!    workers on a small machine. The wake-up (~10–50 µs) is included.
//!
//! Untimed, after each iteration: every queue is drained and checked to
//! hold exactly that frame (so a late or missing delivery panics instead of
//! going unmeasured), which also keeps the queues from overflowing.
//!
//! Not included: the WebSocket writes (each connection's writer task, the
//! socket syscalls) — this measures the hub's fan-out up to the queues.

use benches::{book_with_levels, delta_stream, DeltaMix, STREAM_SEED};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hub::fanout::{Frame, History, OnOverflow, ShardPool, Subscriber, Topic};
use hub::protocol::encode::{Encoder, Header};
use orderbook::{BookDelta, MarketSpec};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CHANNEL: u32 = 16;
const QUEUE_BYTES: usize = 1 << 20;

/// Everything one bench case needs.
struct Fanout {
    spec: MarketSpec,
    deltas: Vec<BookDelta>,
    checksum: u32,
    encoder: Encoder,
    topic: Topic,
    subscribers: Vec<Arc<Subscriber>>,
    /// The last subscriber of each shard (`conn_id % shards`).
    watch: Vec<Arc<Subscriber>>,
    pool: ShardPool,
    resync: mpsc::UnboundedSender<hub::fanout::ResyncRequest>,
    _resync_rx: mpsc::UnboundedReceiver<hub::fanout::ResyncRequest>,
    seq: u64,
    drained: VecDeque<Frame>,
    rt: tokio::runtime::Handle,
}

impl Fanout {
    fn new(n: usize, rt: &tokio::runtime::Runtime, shards: usize) -> Self {
        let pool = {
            let _guard = rt.enter();
            ShardPool::start(shards)
        };
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let mut topic = Topic::new(
            CHANNEL,
            "book.BTC-USD",
            OnOverflow::Resync,
            History::new(1_000, Duration::ZERO),
            pool.len(),
        );
        let subscribers: Vec<_> = (0..n as u64)
            .map(|id| {
                let s = Arc::new(Subscriber::new(id, QUEUE_BYTES));
                s.queue.subscribe(CHANNEL, 0, OnOverflow::Resync);
                s.queue.release(&[CHANNEL]);
                topic.add(s.clone());
                s
            })
            .collect();
        // Shards as `Topic` assigns them: `conn_id % shards`, in join order.
        let shard_count = pool.len() as u64;
        let watch = (0..shard_count)
            .filter_map(|i| {
                subscribers
                    .iter()
                    .rev()
                    .find(|s| s.conn_id % shard_count == i)
                    .cloned()
            })
            .collect();
        let book = book_with_levels(1_000);
        let deltas = delta_stream(STREAM_SEED, 3, 1_000, DeltaMix::REALISTIC);
        let mut after = book;
        for d in &deltas {
            after.apply_delta(*d);
        }
        Fanout {
            spec: benches::btc_usd(),
            checksum: after.checksum(),
            deltas,
            encoder: Encoder::new(),
            topic,
            subscribers,
            watch,
            pool,
            resync,
            _resync_rx: resync_rx,
            seq: 1_000_000,
            drained: VecDeque::new(),
            rt: rt.handle().clone(),
        }
    }

    /// The timed part: encode, publish, wait for every queue to hold it.
    fn publish_and_wait(&mut self) {
        self.seq += 1;
        let h = Header {
            channel: "book.BTC-USD",
            epoch: "9f2c1a7b",
            seq: self.seq,
            prev_seq: self.seq - 1,
            ts: 1_763_940_000_124_001,
        };
        let bytes = self
            .encoder
            .book_update(&self.spec, &h, &self.deltas, self.checksum);
        let text = self.encoder.channel_message(bytes);
        self.topic.publish(
            self.seq,
            text,
            h.ts,
            true,
            &self.pool,
            &self.resync,
            Instant::now(),
        );
        // Parks until each watched queue is non-empty (`OutboundQueue::ready`
        // is woken by the push), leaving both cores to the workers.
        let watch = &self.watch;
        self.rt.block_on(async {
            for s in watch {
                s.queue.ready().await;
            }
        });
    }

    /// Untimed: empties every queue, checking each got exactly this frame.
    fn drain_and_check(&mut self) {
        for s in &self.subscribers {
            s.queue.drain_into(&mut self.drained);
            assert!(
                self.drained.len() == 1 && self.drained[0].seq == self.seq,
                "subscriber {} holds {:?} after publishing seq {}",
                s.conn_id,
                self.drained.iter().map(|f| f.seq).collect::<Vec<_>>(),
                self.seq
            );
            self.drained.clear();
        }
    }
}

/// Criterion reports per-sample means; this prints the distribution of
/// single publishes (`iters` of them, after the bench's own warm-up) so the
/// tail is visible too.
fn print_latency_percentiles(name: &str, f: &mut Fanout, iters: usize) {
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f.publish_and_wait();
            let t = start.elapsed();
            f.drain_and_check();
            t
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{name}: {iters} single publishes: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        at(0.5),
        at(0.9),
        at(0.99),
        times[times.len() - 1]
    );
}

fn fanout(c: &mut Criterion) {
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shards)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("fanout");
    for n in [10_000usize, 1_000, 256] {
        let mut f = Fanout::new(n, &rt, shards);
        let path = format!("sharded_{shards}_workers");
        group.bench_function(BenchmarkId::new(path, format!("{n}_subscribers")), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    f.publish_and_wait();
                    total += start.elapsed();
                    f.drain_and_check();
                }
                total
            })
        });
        print_latency_percentiles(&format!("fanout/{n}_subscribers"), &mut f, 2_000);
    }

    // Reference: the same 10 000 pushes done by one thread, no pool, i.e.
    // what inline delivery of a 10 000-subscriber topic would cost.
    let f = Fanout::new(10_000, &rt, shards);
    let text = {
        let mut enc = Encoder::new();
        let h = Header {
            channel: "book.BTC-USD",
            epoch: "9f2c1a7b",
            seq: 1,
            prev_seq: 0,
            ts: 1_763_940_000_124_001,
        };
        let bytes = enc.book_update(&f.spec, &h, &[], 0);
        enc.channel_message(bytes)
    };
    let mut drained = VecDeque::new();
    let mut seq = 0;
    group.bench_function("push_loop_one_thread/10000_subscribers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seq += 1;
                let start = Instant::now();
                for s in &f.subscribers {
                    s.queue.push_channel(CHANNEL, seq, &text, 0);
                }
                total += start.elapsed();
                for s in &f.subscribers {
                    s.queue.drain_into(&mut drained);
                    assert_eq!(drained.len(), 1);
                    drained.clear();
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
