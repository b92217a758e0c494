//! Idle-socket holders: connections that cost the hub a socket and a task
//! but never a finished request, each reopened as soon as the hub closes
//! it. Four modes, in turn:
//! - `silent`: connects and sends nothing;
//! - `partial`: sends a request head without its final empty line;
//! - `drip`: sends a request head one byte a second, never finishing it;
//! - `keepalive`: sends one complete `GET /health`, reads the answer,
//!   then stays silent on the kept-alive connection.
//!
//! The hub is expected to close the first three at its header timeout
//! (`http.header_timeout_ms`, 10 s by default; dripping must not extend
//! it) and the fourth at its idle timeout (`http.idle_timeout_ms`, 60 s).
//! Every close is an expected outcome; the time each socket was held is
//! recorded per mode (`idle hold <mode>`), so the summary shows whether
//! the deadlines held. A socket still open after [`HOLD_CAP`] is closed by
//! us and counted as unexpected, as is a socket closed at once (the
//! per-address cap refusing it: holders stay under it).

use super::net::{status_of, Block, Target};
use super::Tally;
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A socket the hub has not closed after this long is closed by us (past
/// the default idle timeout of 60 s and the proxies' 130 s).
pub const HOLD_CAP: Duration = Duration::from_secs(180);
/// A close sooner than this, with no answer, is a refused connection.
const REFUSED_WITHIN: Duration = Duration::from_millis(50);
/// Pause before reconnecting after a failed connect.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Between two dripped bytes.
const DRIP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
enum Mode {
    Silent,
    Partial,
    Drip,
    KeepAlive,
}

const MODES: [Mode; 4] = [Mode::Silent, Mode::Partial, Mode::Drip, Mode::KeepAlive];

impl Mode {
    /// The outcome kind, `idle <mode>`.
    fn kind(self) -> &'static str {
        match self {
            Mode::Silent => "idle silent",
            Mode::Partial => "idle partial",
            Mode::Drip => "idle drip",
            Mode::KeepAlive => "idle keepalive",
        }
    }

    /// The timing of how long the hub let a socket be held.
    fn hold_timing(self) -> &'static str {
        match self {
            Mode::Silent => "idle hold silent",
            Mode::Partial => "idle hold partial",
            Mode::Drip => "idle hold drip",
            Mode::KeepAlive => "idle hold keepalive",
        }
    }
}

/// Holds `sockets` sockets, `per_address` per source address, until
/// dropped.
pub async fn run(target: Target, tally: Arc<Tally>, sockets: u32, per_address: u32) {
    join_all((0..sockets as usize).map(|i| {
        let source = target.source(Block::Idle, i / per_address as usize);
        holder(&target, &tally, MODES[i % MODES.len()], source, i)
    }))
    .await;
}

async fn holder(
    target: &Target,
    tally: &Tally,
    mode: Mode,
    source: Option<std::net::IpAddr>,
    index: usize,
) {
    // Spread the first connects (and so the closes) over a second.
    tokio::time::sleep(Duration::from_millis((index as u64 * 7) % 1000)).await;
    loop {
        let stream = match target.connect(source).await {
            Ok(s) => s,
            Err(e) => {
                tally.outcome(mode.kind(), &format!("connect {:?}", e.kind()), false);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let opened = Instant::now();
        let (outcome, expected) = hold(stream, mode, &target.authority, tally).await;
        let held = opened.elapsed();
        tally.outcome(mode.kind(), &outcome, expected);
        if expected {
            tally.time(mode.hold_timing(), held);
        }
    }
}

/// Holds one socket in `mode` until the hub closes it or [`HOLD_CAP`]
/// passes: the outcome and whether it was expected.
async fn hold(mut stream: TcpStream, mode: Mode, host: &str, tally: &Tally) -> (String, bool) {
    let opened = Instant::now();
    let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nX-Drip: ");
    let first: Vec<u8> = match mode {
        Mode::Silent | Mode::Drip => Vec::new(),
        Mode::Partial => format!("GET /health HTTP/1.1\r\nHost: {host}\r\n").into_bytes(),
        Mode::KeepAlive => format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
    };
    let (mut rd, mut wr) = stream.split();
    if !first.is_empty() && wr.write_all(&first).await.is_err() {
        return ("send failed".into(), false);
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut dripped = 0usize;
    let mut drip = tokio::time::interval(DRIP_EVERY);
    let cap = tokio::time::sleep(HOLD_CAP);
    tokio::pin!(cap);
    let closed = loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => break true,
                Ok(n) => {
                    if answer.len() < 1024 {
                        answer.extend_from_slice(&buf[..n]);
                    }
                }
            },
            _ = drip.tick(), if matches!(mode, Mode::Drip) => {
                // The head, then the header value forever.
                let byte = head.as_bytes().get(dripped).copied().unwrap_or(b'a');
                dripped += 1;
                if wr.write_all(&[byte]).await.is_err() {
                    break true;
                }
            }
            () = &mut cap => break false,
        }
    };
    if !closed {
        return (format!("still open after {} s", HOLD_CAP.as_secs()), false);
    }
    let keepalive = matches!(mode, Mode::KeepAlive);
    match status_of(&answer) {
        Some(status) => {
            tally.status(status);
            (
                format!("answered {status}, then closed by hub"),
                keepalive && status == 200,
            )
        }
        None if opened.elapsed() < REFUSED_WITHIN => ("closed at once (refused)".into(), false),
        None => ("closed by hub".into(), !keepalive),
    }
}
