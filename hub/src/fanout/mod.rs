//! Fan-out: one encoded message, many connections.
//!
//! A [`Topic`] is one channel of one pair (e.g. `book.BTC-USD@100ms`) with
//! its subscribers and its history. Publishing hands the shared frame to
//! the [`ShardPool`]: the subscriber list is split into one shard per core
//! and each shard worker pushes the same bytes (a reference count, no copy)
//! into its connections' [`OutboundQueue`]s. Small topics are delivered
//! inline, where the hop to a worker would cost more than it saves.

pub mod deflate;
mod queue;
mod shards;
mod topic;

pub use queue::{
    Body, CloseReason, DirectSink, Frame, GroupItem, GroupPushed, OnOverflow, OutboundQueue,
    Pushed, MAX_FRAMES,
};
pub use shards::{ResyncRequest, ShardPool};
pub use topic::{History, Topic};

/// A channel's id, unique in the process (interned channel name).
pub type ChannelId = u32;

/// The fan-out side of one connection.
#[derive(Debug)]
pub struct Subscriber {
    pub conn_id: u64,
    pub queue: OutboundQueue,
}

impl Subscriber {
    pub fn new(conn_id: u64, max_queue_bytes: usize) -> Self {
        Subscriber {
            conn_id,
            queue: OutboundQueue::new(max_queue_bytes),
        }
    }

    /// A connection that negotiated permessage-deflate: it is queued the
    /// compressed form of what has one ([`deflate`]).
    pub fn compressing(conn_id: u64, max_queue_bytes: usize) -> Self {
        Subscriber {
            conn_id,
            queue: OutboundQueue::compressing(max_queue_bytes),
        }
    }
}
