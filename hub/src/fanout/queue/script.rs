//! Test support: a socket that takes what its script says, and the
//! helpers the write-through and group tests share.

use super::{Body, DirectSink, Frame, OnOverflow, OutboundQueue};
use crate::protocol::frame;
use crate::protocol::message::ChannelMessage;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

/// A socket that takes, per call, what its script says (`None`:
/// `WouldBlock`; an empty script takes everything), and counts its calls.
#[derive(Debug, Default)]
pub struct Socket {
    pub script: Mutex<VecDeque<Option<usize>>>,
    pub bytes: Mutex<Vec<u8>>,
    pub calls: Mutex<usize>,
}

impl DirectSink for Socket {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        *self.calls.lock() += 1;
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let take = match self.script.lock().pop_front() {
            None => all.len(),
            Some(None) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(Some(n)) => n.min(all.len()),
        };
        self.bytes.lock().extend_from_slice(&all[..take]);
        Ok(take)
    }
}

/// A queue subscribed to channel 1 above `floor`, writing through to a
/// socket that follows `script`.
pub fn queue_from(floor: u64, script: &[Option<usize>]) -> (OutboundQueue, Arc<Socket>) {
    let q = OutboundQueue::new(1 << 16);
    q.subscribe(1, floor, OnOverflow::Resync);
    q.release(&[1]);
    let socket = Arc::new(Socket::default());
    socket.script.lock().extend(script.iter().copied());
    q.attach_through(socket.clone());
    (q, socket)
}

/// A queue subscribed to channel 1 from its start.
pub fn queue(script: &[Option<usize>]) -> (OutboundQueue, Arc<Socket>) {
    queue_from(0, script)
}

pub fn msg(s: &str) -> ChannelMessage {
    ChannelMessage::for_tests(s)
}

/// The frame of text message `s`.
pub fn framed(s: &str) -> Vec<u8> {
    let mut head = [0u8; 10];
    let n = frame::header(frame::OP_TEXT, s.len(), &mut head);
    [&head[..n], s.as_bytes()].concat()
}

pub fn drain(q: &OutboundQueue) -> Vec<Frame> {
    let mut out = VecDeque::new();
    q.drain_into(&mut out);
    out.into()
}

/// What the writer would write for `frames`.
pub fn wire(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| match &f.body {
            Body::Framed(b) | Body::Rest(b) => b.to_vec(),
            body => framed(body.as_text().expect("text")),
        })
        .collect()
}

/// The writer parks with nothing in hand (and is not woken).
pub async fn writer_parks(q: &OutboundQueue) {
    let parked = tokio::time::timeout(Duration::from_millis(20), q.ready()).await;
    assert!(parked.is_err(), "the writer was woken");
}
