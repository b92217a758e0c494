//! Hand-offs between threads: tokio's channels (what the hub uses) against
//! crossbeam's, at the two places issue 18 names (docs/BENCHMARKS.md,
//! "Hand-offs: tokio or crossbeam").
//!
//! Run: `cargo bench -p benches --bench handoff -- --warm-up-time 2 --measurement-time 5`
//!
//! **Shard jobs** (`handoff/shard_jobs/...`): the shape of
//! `hub::fanout::ShardPool`. One channel message is handed to `W` workers
//! (`W` = available cores), each pushing it into its slice of `n`
//! subscribers' queues (`conn_id % W`, the real `OutboundQueue::push_channel`).
//! Timed: from the first hand-off until every worker has pushed every
//! message to its whole slice, the bench thread parked on a `Notify` that
//! each worker signals after each job (the same for both kinds).
//! - `tokio_tasks`: `tokio::sync::mpsc::unbounded_channel`, each worker a
//!   task on a `W`-thread tokio runtime (the hub's pool);
//! - `crossbeam_threads`: `crossbeam::channel::unbounded`, each worker an OS
//!   thread blocked in `recv` (crossbeam's receivers block the thread, so
//!   they cannot be tokio tasks; the hub would run them beside its runtime).
//!
//! A burst of 64 messages handed off back to back (`burst64`) shows the
//! queued throughput, where the wake-up is paid once.
//!
//! **Ingest → pair** (`handoff/ingest/...`): the feed's reader hands decoded
//! market events to the pair's task through a bounded channel (8,192 in the
//! hub). Ping-pong of one 64-byte event and its echo (two hand-offs and two
//! wake-ups), and a burst of 1,024 events to a consumer that sums them and
//! answers once:
//! - `tokio`: `tokio::sync::mpsc::channel`, consumer a tokio task, producer
//!   the bench thread (`blocking_send`);
//! - `crossbeam`: `crossbeam::channel::bounded`, consumer an OS thread.
//!
//! Untimed: every queue is drained and checked after each iteration.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hub::fanout::{Frame, OnOverflow, Subscriber};
use hub::protocol::encode::{Encoder, Header};
use hub::protocol::message::ChannelMessage;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const CHANNEL: u32 = 16;
const QUEUE_BYTES: usize = 1 << 20;
const BURST: u64 = 64;

/// One job: a message for one slice of subscribers.
struct Job {
    seq: u64,
    msg: ChannelMessage,
}

/// One worker's subscribers and its count of jobs done.
struct Slice {
    subscribers: Vec<Arc<Subscriber>>,
    done: AtomicU64,
    notify: Notify,
}

fn push_all(slice: &Slice, job: &Job) {
    for s in &slice.subscribers {
        s.queue.push_channel(CHANNEL, job.seq, &job.msg, 0);
    }
    slice.done.fetch_add(1, Ordering::Release);
    slice.notify.notify_one();
}

/// How jobs reach the workers.
enum Pool {
    Tokio(Vec<tokio::sync::mpsc::UnboundedSender<Job>>),
    Crossbeam(Vec<crossbeam::channel::Sender<Job>>),
}

impl Pool {
    fn tokio(rt: &tokio::runtime::Runtime, slices: &[Arc<Slice>]) -> Self {
        Pool::Tokio(
            slices
                .iter()
                .map(|slice| {
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
                    let slice = slice.clone();
                    rt.spawn(async move {
                        while let Some(job) = rx.recv().await {
                            push_all(&slice, &job);
                        }
                    });
                    tx
                })
                .collect(),
        )
    }

    fn crossbeam(slices: &[Arc<Slice>]) -> Self {
        Pool::Crossbeam(
            slices
                .iter()
                .map(|slice| {
                    let (tx, rx) = crossbeam::channel::unbounded::<Job>();
                    let slice = slice.clone();
                    std::thread::spawn(move || {
                        while let Ok(job) = rx.recv() {
                            push_all(&slice, &job);
                        }
                    });
                    tx
                })
                .collect(),
        )
    }

    fn send(&self, i: usize, job: Job) {
        match self {
            Pool::Tokio(w) => w[i].send(job).map_err(|_| ()),
            Pool::Crossbeam(w) => w[i].send(job).map_err(|_| ()),
        }
        .expect("worker alive");
    }
}

struct ShardCase {
    subscribers: Vec<Arc<Subscriber>>,
    slices: Vec<Arc<Slice>>,
    pool: Pool,
    msg: ChannelMessage,
    seq: u64,
    drained: VecDeque<Frame>,
    rt: tokio::runtime::Handle,
}

impl ShardCase {
    fn new(n: usize, workers: usize, rt: &tokio::runtime::Runtime, crossbeam: bool) -> Self {
        let subscribers: Vec<_> = (0..n as u64)
            .map(|id| {
                let s = Arc::new(Subscriber::new(id, QUEUE_BYTES));
                s.queue.subscribe(CHANNEL, 0, OnOverflow::Resync);
                s.queue.release(&[CHANNEL]);
                s
            })
            .collect();
        let slices: Vec<Arc<Slice>> = (0..workers as u64)
            .map(|i| {
                Arc::new(Slice {
                    subscribers: subscribers
                        .iter()
                        .filter(|s| s.conn_id % workers as u64 == i)
                        .cloned()
                        .collect(),
                    done: AtomicU64::new(0),
                    notify: Notify::new(),
                })
            })
            .collect();
        let pool = if crossbeam {
            Pool::crossbeam(&slices)
        } else {
            Pool::tokio(rt, &slices)
        };
        let mut enc = Encoder::new();
        let h = Header {
            channel: "book.BTC-USD",
            epoch: "9f2c1a7b",
            seq: 1,
            prev_seq: 0,
            ts: 1_763_940_000_124_001,
        };
        let bytes = enc.book_update(&benches::btc_usd(), &h, &[], 0);
        ShardCase {
            subscribers,
            slices,
            pool,
            msg: enc.channel_message(bytes),
            seq: 0,
            drained: VecDeque::new(),
            rt: rt.handle().clone(),
        }
    }

    /// Timed: `count` messages handed to every worker, then parked until
    /// every worker has done all of them.
    fn hand_off(&mut self, count: u64) {
        for _ in 0..count {
            self.seq += 1;
            for i in 0..self.slices.len() {
                self.pool.send(
                    i,
                    Job {
                        seq: self.seq,
                        msg: self.msg.clone(),
                    },
                );
            }
        }
        let (slices, target) = (&self.slices, self.seq);
        self.rt.block_on(async {
            for s in slices {
                loop {
                    let notified = s.notify.notified();
                    if s.done.load(Ordering::Acquire) >= target {
                        break;
                    }
                    notified.await;
                }
            }
        });
    }

    /// Untimed: every queue holds exactly the messages of this iteration.
    fn drain_and_check(&mut self, count: u64) {
        for s in &self.subscribers {
            s.queue.drain_into(&mut self.drained);
            assert!(
                self.drained.len() == count as usize
                    && self.drained.back().map(|f| f.seq) == Some(self.seq),
                "subscriber {} holds {:?} after seq {}",
                s.conn_id,
                self.drained.iter().map(|f| f.seq).collect::<Vec<_>>(),
                self.seq
            );
            self.drained.clear();
        }
    }
}

fn shard_jobs(c: &mut Criterion) {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("handoff/shard_jobs");
    for n in [10_000usize, 256] {
        for crossbeam in [false, true] {
            let mut case = ShardCase::new(n, workers, &rt, crossbeam);
            let kind = if crossbeam {
                "crossbeam_threads"
            } else {
                "tokio_tasks"
            };
            for count in [1, BURST] {
                let id = BenchmarkId::new(kind, format!("{n}_subscribers/burst{count}"));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let start = Instant::now();
                            case.hand_off(count);
                            total += start.elapsed();
                            case.drain_and_check(count);
                        }
                        total
                    })
                });
            }
        }
    }
    group.finish();
}

/// A decoded market event's size (feeds' `MarketEvent` is ~64 bytes).
#[derive(Clone, Copy)]
struct Event([u64; 8]);

const INGEST_BUFFER: usize = 8192;
const INGEST_BURST: u64 = 1024;

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("handoff/ingest");

    // tokio: consumer task; echoes each event, or the sum after a burst
    // (the marker event carries u64::MAX in its first word).
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(INGEST_BUFFER);
        let (back_tx, mut back_rx) = tokio::sync::mpsc::channel::<u64>(INGEST_BUFFER);
        rt.spawn(async move {
            let mut sum = 0u64;
            while let Some(e) = rx.recv().await {
                if e.0[0] == u64::MAX {
                    let _ = back_tx.send(sum).await;
                    sum = 0;
                } else {
                    sum = sum.wrapping_add(e.0[1]);
                }
            }
        });
        let mut i = 0u64;
        group.bench_function("tokio/ping_pong", |b| {
            b.iter(|| {
                i += 1;
                tx.blocking_send(Event([0, i, 0, 0, 0, 0, 0, 0])).unwrap();
                tx.blocking_send(Event([u64::MAX; 8])).unwrap();
                assert_eq!(back_rx.blocking_recv(), Some(i));
            })
        });
        group.bench_function(format!("tokio/burst{INGEST_BURST}"), |b| {
            b.iter(|| {
                for k in 0..INGEST_BURST {
                    tx.blocking_send(Event([0, k, 0, 0, 0, 0, 0, 0])).unwrap();
                }
                tx.blocking_send(Event([u64::MAX; 8])).unwrap();
                assert_eq!(
                    back_rx.blocking_recv(),
                    Some(INGEST_BURST * (INGEST_BURST - 1) / 2)
                );
            })
        });
    }

    // crossbeam: consumer thread, same protocol.
    {
        let (tx, rx) = crossbeam::channel::bounded::<Event>(INGEST_BUFFER);
        let (back_tx, back_rx) = crossbeam::channel::bounded::<u64>(INGEST_BUFFER);
        std::thread::spawn(move || {
            let mut sum = 0u64;
            while let Ok(e) = rx.recv() {
                if e.0[0] == u64::MAX {
                    let _ = back_tx.send(sum);
                    sum = 0;
                } else {
                    sum = sum.wrapping_add(e.0[1]);
                }
            }
        });
        let mut i = 0u64;
        group.bench_function("crossbeam/ping_pong", |b| {
            b.iter(|| {
                i += 1;
                tx.send(Event([0, i, 0, 0, 0, 0, 0, 0])).unwrap();
                tx.send(Event([u64::MAX; 8])).unwrap();
                assert_eq!(back_rx.recv().ok(), Some(i));
            })
        });
        group.bench_function(format!("crossbeam/burst{INGEST_BURST}"), |b| {
            b.iter(|| {
                for k in 0..INGEST_BURST {
                    tx.send(Event([0, k, 0, 0, 0, 0, 0, 0])).unwrap();
                }
                tx.send(Event([u64::MAX; 8])).unwrap();
                assert_eq!(
                    back_rx.recv().ok(),
                    Some(INGEST_BURST * (INGEST_BURST - 1) / 2)
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, shard_jobs, ingest);
criterion_main!(benches);
