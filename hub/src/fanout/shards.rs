//! The shard workers that push a published frame into many queues in
//! parallel: one worker per core, each owning a slice of every large
//! topic's subscribers.

use super::{ChannelId, GroupItem, Pushed, Subscriber, MAX_FRAMES};
use crate::metrics as m;
use crate::protocol::message::ChannelMessage;
use feeds::event::now_micros;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Messages a shard worker pushes (subscribers × the group's messages)
/// before it lets other tasks run: a push may be a socket write (~2-5 µs),
/// so a 5,000-subscriber slice would otherwise hold a runtime thread for
/// tens of milliseconds.
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
                let (tx, rx) = mpsc::unbounded_channel::<Job>();
                tokio::spawn(work(rx));
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

/// A shard worker: takes its jobs in order. A delivery goes out as a
/// round over its subscribers, which the deliveries of the same channel to
/// the same subscribers join, whether they were queued behind it or arrive
/// while the round is under way ([`round`]).
async fn work(mut rx: mpsc::UnboundedReceiver<Job>) {
    // A job taken off the queue that did not join the round before it.
    let mut next: Option<Job> = None;
    let mut under_way = VecDeque::with_capacity(MAX_FRAMES);
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        if let Work::Restart(channel) = &job.work {
            for s in job.subscribers.iter() {
                s.queue.restart_numbering(*channel);
            }
            job.in_flight.fetch_sub(1, Ordering::Release);
            continue;
        }
        next = round(job, &mut rx, &mut under_way).await;
    }
}

/// Whether `job` may join the round that `first` started: a delivery of
/// the same channel to the same subscriber list.
fn joins(first: &Job, job: &Job) -> bool {
    match (&first.work, &job.work) {
        (Work::Deliver(a), Work::Deliver(b)) => {
            a.channel == b.channel && Arc::ptr_eq(&first.subscribers, &job.subscribers)
        }
        _ => false,
    }
}

/// Delivers `first` to its subscribers, chunk by chunk, letting other tasks
/// run between chunks (a push may be a socket write). Before each chunk,
/// the deliveries that [`joins`] allows are taken off the queue (up to
/// [`MAX_FRAMES`] under way), and each chunk's subscribers are pushed every
/// delivery under way, oldest first, as one group. A delivery that joins at
/// subscriber `i` goes to `i..` with the others, then, once the round
/// wraps, to `..i`: each subscriber still gets every message once and in
/// order, and a message that arrives mid-round reaches the rest of the
/// round with the one before it, in the same write, instead of waiting for
/// a round of its own. Returns the first job that did not join: it waits
/// until every delivery under way is done. `under_way` is the worker's,
/// empty between rounds: the deliveries under way, oldest first, each with
/// the subscribers it has left (the oldest always has the fewest).
async fn round(
    first: Job,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    under_way: &mut VecDeque<(Job, usize)>,
) -> Option<Job> {
    let subscribers = first.subscribers.clone();
    let resync = first.resync.clone();
    let n = subscribers.len();
    under_way.push_back((first, n));
    let mut next = None;
    let mut at = 0;
    loop {
        while next.is_none() && under_way.len() < MAX_FRAMES {
            match rx.try_recv() {
                Ok(job) if joins(&under_way[0].0, &job) => under_way.push_back((job, n)),
                Ok(job) => next = Some(job),
                Err(_) => break,
            }
        }
        // About YIELD_EVERY messages a chunk, whatever the group's size; a
        // chunk ends where the round wraps or the oldest delivery is done.
        let oldest_left = under_way.front().map_or(0, |(_, left)| *left);
        let chunk = (YIELD_EVERY / under_way.len())
            .max(8)
            .min(n - at)
            .min(oldest_left);
        let subs = &subscribers[at..at + chunk];
        if under_way.len() == 1 {
            if let Some(d) = delivery(&under_way[0].0) {
                // Jobs waiting behind this one are a backlog: queue, so
                // the writers batch.
                let through = d.through && next.is_none() && rx.is_empty();
                deliver(subs, d, through, &resync);
            }
        } else {
            let items: Vec<GroupItem<'_>> = under_way
                .iter()
                .filter_map(|(job, _)| delivery(job))
                .map(|d| (d.seq, &d.msg, d.ts))
                .collect();
            if let Some(d) = delivery(&under_way[0].0) {
                deliver_group(subs, d.channel, &items, &resync);
            }
        }
        for (_, left) in under_way.iter_mut() {
            *left -= chunk;
        }
        while under_way.front().is_some_and(|(_, left)| *left == 0) {
            if let Some((job, _)) = under_way.pop_front() {
                job.in_flight.fetch_sub(1, Ordering::Release);
            }
        }
        if under_way.is_empty() {
            return next;
        }
        at = (at + chunk) % n;
        tokio::task::yield_now().await;
    }
}

/// The delivery a round's job carries (a round holds deliveries only:
/// [`work`] runs a restart on its own).
fn delivery(job: &Job) -> Option<&Delivery> {
    match &job.work {
        Work::Deliver(d) => Some(d),
        Work::Restart(_) => None,
    }
}

/// Pushes `items`, several messages of `channel` oldest first, to each
/// subscriber as one group (`queue/group.rs`): an idle connection gets
/// them in one write.
fn deliver_group(
    subscribers: &[Arc<Subscriber>],
    channel: ChannelId,
    items: &[GroupItem<'_>],
    resync: &mpsc::UnboundedSender<ResyncRequest>,
) {
    // Connections each message was written to.
    let mut written = [0u64; MAX_FRAMES];
    let mut bytes = 0usize;
    for sub in subscribers {
        let pushed = sub.queue.push_channel_group(channel, items);
        if pushed.resync {
            let _ = resync.send(ResyncRequest {
                channel,
                subscriber: sub.clone(),
            });
        }
        for count in &mut written[pushed.from..pushed.from + pushed.written] {
            *count += 1;
        }
        bytes += pushed.bytes;
    }
    let mut tally = m::Tally::default();
    let now = now_micros();
    let mut total = 0;
    for (item, &count) in items.iter().zip(&written) {
        total += count;
        if item.2 > 0 && count > 0 {
            tally.latency(now.saturating_sub(item.2), count);
        }
    }
    if total > 0 {
        tally.written(total, bytes as u64);
        tally.add();
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

#[cfg(test)]
mod tests;
