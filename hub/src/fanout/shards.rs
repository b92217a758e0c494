//! The shard workers that push a published frame into many queues in
//! parallel: one worker per core, each owning a slice of every large
//! topic's subscribers.

use super::{ChannelId, GroupItem, Pushed, Subscriber, MAX_FRAMES};
use crate::metrics as m;
use crate::protocol::message::ChannelMessage;
use feeds::event::now_micros;
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

/// A shard worker: takes its jobs in order, each delivery together with
/// the deliveries to the same subscribers queued right behind it (up to
/// [`MAX_FRAMES`]).
async fn work(mut rx: mpsc::UnboundedReceiver<Job>) {
    // A job taken off the queue that did not join the group before it.
    let mut next: Option<Job> = None;
    let mut group: Vec<Job> = Vec::with_capacity(MAX_FRAMES);
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
        group.push(job);
        while group.len() < MAX_FRAMES {
            match rx.try_recv() {
                Ok(job) if joins(&group[0], &job) => group.push(job),
                Ok(job) => {
                    next = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        run(&group, next.is_some() || !rx.is_empty()).await;
        for job in group.drain(..) {
            job.in_flight.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Whether `job` may be delivered with the group that `first` starts: a
/// delivery of the same channel to the same subscriber list.
fn joins(first: &Job, job: &Job) -> bool {
    match (&first.work, &job.work) {
        (Work::Deliver(a), Work::Deliver(b)) => {
            a.channel == b.channel && Arc::ptr_eq(&first.subscribers, &job.subscribers)
        }
        _ => false,
    }
}

/// Delivers a group of jobs (one, or several [`joins`] put together) to
/// their subscribers, letting other tasks run between chunks of them (a
/// push may be a socket write). `behind`: other jobs wait after these.
async fn run(group: &[Job], behind: bool) {
    let first = &group[0];
    // A group holds deliveries only (`work` runs a restart on its own).
    let deliveries: Vec<&Delivery> = group
        .iter()
        .filter_map(|job| match &job.work {
            Work::Deliver(d) => Some(d),
            Work::Restart(_) => None,
        })
        .collect();
    let items: Vec<GroupItem<'_>> = match deliveries.as_slice() {
        [_] => Vec::new(),
        many => many.iter().map(|d| (d.seq, &d.msg, d.ts)).collect(),
    };
    // About YIELD_EVERY messages between yields, whatever the group's size.
    let chunk = (YIELD_EVERY / deliveries.len()).max(8);
    let mut chunks = first.subscribers.chunks(chunk).peekable();
    while let Some(chunk) = chunks.next() {
        match deliveries.as_slice() {
            // Jobs waiting behind this one are a backlog: queue, so the
            // writers batch.
            [d] => deliver(chunk, d, d.through && !behind, &first.resync),
            [d, ..] => deliver_group(chunk, d.channel, &items, &first.resync),
            [] => {}
        }
        if chunks.peek().is_some() {
            tokio::task::yield_now().await;
        }
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
mod tests {
    use super::*;
    use crate::fanout::queue::script::{framed, Socket};
    use crate::fanout::OnOverflow;
    use std::time::Duration;

    /// A subscriber of channel 1 from its start, writing through to a socket.
    fn listening(id: u64) -> (Arc<Subscriber>, Arc<Socket>) {
        let sub = Arc::new(Subscriber::new(id, 1 << 20));
        sub.queue.subscribe(1, 0, OnOverflow::Resync);
        sub.queue.release(&[1]);
        let socket = Arc::new(Socket::default());
        sub.queue.attach_through(socket.clone());
        (sub, socket)
    }

    /// One thread: the worker runs only once the test awaits, and finds
    /// every job queued.
    #[tokio::test]
    async fn deliveries_waiting_for_the_same_subscribers_go_out_together_in_order() {
        const MESSAGES: u64 = 40;
        let pool = ShardPool::start(1);
        let (tx, _rx) = mpsc::unbounded_channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (subs, sockets): (Vec<_>, Vec<_>) = (0..3).map(listening).unzip();
        let subs: Arc<[Arc<Subscriber>]> = subs.into();
        let other: Arc<[Arc<Subscriber>]> = Arc::from(vec![listening(9).0]);
        for seq in 1..=MESSAGES {
            let msg = ChannelMessage::for_tests(&format!("m{seq}"));
            let delivery = |seq| Delivery {
                channel: 1,
                seq,
                msg: msg.clone(),
                ts: 0,
                through: true,
            };
            pool.send(0, subs.clone(), delivery(seq), &tx, &in_flight);
            // Another list's job ends a group.
            if seq == 10 {
                pool.send(0, other.clone(), delivery(seq), &tx, &in_flight);
            }
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while in_flight.load(Ordering::Acquire) > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the jobs are done");
        let expected: Vec<u8> = (1..=MESSAGES)
            .flat_map(|seq| framed(&format!("m{seq}")))
            .collect();
        for socket in &sockets {
            assert_eq!(*socket.bytes.lock(), expected);
            // 1-10, then 11-40 (at most 32 a group).
            assert_eq!(*socket.calls.lock(), 2);
        }
    }

    /// A restart queued between deliveries keeps its place: the messages
    /// before it go out as they are, the first after it as the client's
    /// first on the channel (`prev_seq` 0), queued for the writer.
    #[tokio::test]
    async fn a_restart_between_deliveries_keeps_its_place() {
        let pool = ShardPool::start(1);
        let (tx, _rx) = mpsc::unbounded_channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (sub, socket) = listening(0);
        let subs: Arc<[Arc<Subscriber>]> = Arc::from(vec![sub.clone()]);
        let text = |seq: u64, prev: u64| format!(r#"{{"prev_seq":{prev},"seq":{seq}}}"#);
        let delivery = |seq: u64, prev: u64| Delivery {
            channel: 1,
            seq,
            msg: ChannelMessage::for_tests(&text(seq, prev)),
            ts: 0,
            through: true,
        };
        for seq in 1..=5 {
            pool.send(0, subs.clone(), delivery(seq, seq - 1), &tx, &in_flight);
        }
        pool.restart(0, subs.clone(), 1, &tx, &in_flight);
        for seq in 1..=3 {
            pool.send(0, subs.clone(), delivery(seq, seq + 6), &tx, &in_flight);
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while in_flight.load(Ordering::Acquire) > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the jobs are done");
        let before: Vec<u8> = (1..=5)
            .flat_map(|seq| framed(&text(seq, seq - 1)))
            .collect();
        assert_eq!(*socket.bytes.lock(), before);
        assert_eq!(*socket.calls.lock(), 1);
        let mut queued = std::collections::VecDeque::new();
        sub.queue.drain_into(&mut queued);
        let texts: Vec<&str> = queued.iter().filter_map(|f| f.body.as_text()).collect();
        assert_eq!(texts, [text(1, 0), text(2, 8), text(3, 9)]);
    }
}
