//! The shard workers that push a published frame into many queues in
//! parallel: one worker per core, each owning a slice of every large
//! topic's subscribers.

use super::{ChannelId, Pushed, Subscriber};
use crate::metrics as m;
use crate::protocol::message::ChannelMessage;
use feeds::event::now_micros;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Subscribers a shard worker pushes to before it lets other tasks run:
/// a push may be a socket write (~2-5 µs), so a 5,000-subscriber slice
/// would otherwise hold a runtime thread for tens of milliseconds.
const YIELD_EVERY: usize = 256;

/// A subscriber whose queue overflowed on a conflatable channel: its pair
/// task owes it a fresh snapshot.
#[derive(Debug)]
pub struct ResyncRequest {
    pub channel: ChannelId,
    pub subscriber: Arc<Subscriber>,
}

/// One channel message on its way to subscribers.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub channel: ChannelId,
    pub seq: u64,
    pub msg: ChannelMessage,
    /// Hub ingest time (µs) of the event behind it.
    pub ts: u64,
    /// Idle connections are written at once (write-through); false when
    /// the publisher has a backlog, so connections' writers batch.
    pub through: bool,
}

struct Job {
    subscribers: Arc<[Arc<Subscriber>]>,
    work: Work,
    resync: mpsc::UnboundedSender<ResyncRequest>,
    /// The topic's count of jobs not yet done, decremented when this one is.
    in_flight: Arc<AtomicUsize>,
}

/// What a job does to each of its subscribers, in the worker's FIFO order.
enum Work {
    Deliver(Delivery),
    /// The channel's numbering restarts (new upstream epoch).
    Restart(ChannelId),
}

/// Delivers frames to slices of subscribers on worker tasks. Never blocks
/// the publisher: jobs go through unbounded channels whose depth is bounded
/// by the publish rate.
#[derive(Clone)]
pub struct ShardPool {
    workers: Arc<[mpsc::UnboundedSender<Job>]>,
}

impl ShardPool {
    /// Starts `n` workers (at least one) on the current runtime.
    pub fn start(n: usize) -> Self {
        let workers: Vec<_> = (0..n.max(1))
            .map(|_| {
                let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
                tokio::spawn(async move {
                    while let Some(job) = rx.recv().await {
                        match &job.work {
                            Work::Deliver(d) => {
                                // Jobs waiting behind this one are a backlog:
                                // queue, so the writers batch.
                                let through = d.through && rx.is_empty();
                                // A push may be a socket write: other tasks
                                // get this thread between chunks.
                                let mut chunks = job.subscribers.chunks(YIELD_EVERY).peekable();
                                while let Some(chunk) = chunks.next() {
                                    deliver(chunk, d, through, &job.resync);
                                    if chunks.peek().is_some() {
                                        tokio::task::yield_now().await;
                                    }
                                }
                            }
                            Work::Restart(channel) => job
                                .subscribers
                                .iter()
                                .for_each(|s| s.queue.restart_numbering(*channel)),
                        }
                        job.in_flight.fetch_sub(1, Ordering::Release);
                    }
                });
                tx
            })
            .collect();
        ShardPool {
            workers: workers.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Queues delivery of one frame to shard `i`'s subscribers, counted in
    /// `in_flight` until done.
    pub(super) fn send(
        &self,
        i: usize,
        subscribers: Arc<[Arc<Subscriber>]>,
        delivery: Delivery,
        resync: &mpsc::UnboundedSender<ResyncRequest>,
        in_flight: &Arc<AtomicUsize>,
    ) {
        self.queue(i, subscribers, Work::Deliver(delivery), resync, in_flight);
    }

    /// Queues a numbering restart of `channel` for shard `i`'s subscribers,
    /// after every delivery already queued to them.
    pub(super) fn restart(
        &self,
        i: usize,
        subscribers: Arc<[Arc<Subscriber>]>,
        channel: ChannelId,
        resync: &mpsc::UnboundedSender<ResyncRequest>,
        in_flight: &Arc<AtomicUsize>,
    ) {
        self.queue(i, subscribers, Work::Restart(channel), resync, in_flight);
    }

    fn queue(
        &self,
        i: usize,
        subscribers: Arc<[Arc<Subscriber>]>,
        work: Work,
        resync: &mpsc::UnboundedSender<ResyncRequest>,
        in_flight: &Arc<AtomicUsize>,
    ) {
        in_flight.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            subscribers,
            work,
            resync: resync.clone(),
            in_flight: in_flight.clone(),
        };
        // A worker only stops with the runtime, and then nothing is
        // delivered anyway (the count stays up: the topic is gone too).
        let _ = self.workers[i % self.workers.len()].send(job);
    }
}

/// Pushes one frame to each subscriber; overflowing conflatable channels
/// turn into resync requests for the pair task. What pushes wrote to
/// sockets themselves is counted here, once per call (the writer counts
/// the rest).
pub(super) fn deliver(
    subscribers: &[Arc<Subscriber>],
    d: &Delivery,
    through: bool,
    resync: &mpsc::UnboundedSender<ResyncRequest>,
) {
    let (mut written, mut bytes) = (0usize, 0usize);
    for sub in subscribers {
        let queue = &sub.queue;
        let pushed = if through {
            queue.push_channel(d.channel, d.seq, &d.msg, d.ts)
        } else {
            queue.push_channel_batched(d.channel, d.seq, &d.msg, d.ts)
        };
        match pushed {
            Pushed::NeedsResync => {
                let _ = resync.send(ResyncRequest {
                    channel: d.channel,
                    subscriber: sub.clone(),
                });
            }
            Pushed::Written(n) => {
                written += 1;
                bytes += n;
            }
            Pushed::Queued | Pushed::Filtered | Pushed::Closing => {}
        }
    }
    if written > 0 {
        let mut tally = m::Tally::default();
        tally.written(written as u64, bytes as u64);
        if d.ts > 0 {
            tally.latency(now_micros().saturating_sub(d.ts), written as u64);
        }
        tally.add();
    }
}
