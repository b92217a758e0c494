//! The machine's floor for a fan-out shape (issue 18): the thinnest sender
//! that does what the hub does on the wire, so every report can state the
//! hub's ratio to it. It accepts WebSocket connections on 127.0.0.1 (the
//! handshake, nothing else: no ops, no subscriptions, no queues), and
//! `rate` times a second builds one hub-shaped `update` message
//! ([`crate::peer::message`], ~`bytes` long, `ts` taken as it is built),
//! frames it once, and has its writer threads write the same bytes to
//! every connection with one blocking `write` each. Connections are split
//! among `threads` writers (1 or 2: one per core here). Nothing is read
//! after the handshake; a connection whose write fails is dropped.
//!
//! Clients are `loadtest --peer nchan` (frames are pushed, no subscribe
//! op), exactly as for nginx + nchan: `scripts/peer-bench.sh` runs the
//! same clients against the hub, nchan and this. Bounded: at most
//! [`MAX_SECONDS`], [`MAX_RATE`] messages/s and [`MAX_CONNECTIONS`].

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_SECONDS: f64 = 600.0;
pub const MAX_RATE: f64 = 100_000.0;
pub const MAX_CONNECTIONS: usize = 20_000;
/// Longest handshake request read, in bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// How the floor runs.
#[derive(Debug, Clone)]
pub struct FloorOptions {
    /// Where to listen (port 0: any; see [`Floor::addr`]).
    pub bind: SocketAddr,
    /// Writer threads (at least 1).
    pub threads: usize,
    /// Messages per second to every connection.
    pub rate: f64,
    /// About this many bytes per message.
    pub bytes: usize,
    /// Publishing stops after this long.
    pub duration: Duration,
}

/// What a floor run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorReport {
    pub messages: u64,
    /// Frames written (messages × connections at the time).
    pub writes: u64,
    pub dropped_connections: u64,
}

/// A running floor sender.
pub struct Floor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    publisher: std::thread::JoinHandle<FloorReport>,
}

impl Floor {
    /// Binds and starts accepting and publishing.
    pub fn start(opts: FloorOptions) -> std::io::Result<Floor> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
        if !(opts.rate > 0.0 && opts.rate <= MAX_RATE) {
            return Err(bad("rate must be in (0, 100000]"));
        }
        if opts.duration.as_secs_f64() > MAX_SECONDS || !(1..=64).contains(&opts.threads) {
            return Err(bad("duration at most 600 s, threads 1 to 64"));
        }
        let listener = TcpListener::bind(opts.bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<Writer> = (0..opts.threads).map(|_| Writer::start()).collect();
        let accepted = Arc::new(AtomicU64::new(0));
        {
            let sockets: Vec<_> = writers.iter().map(|w| w.sockets.clone()).collect();
            let (stop, accepted) = (stop.clone(), accepted.clone());
            listener.set_nonblocking(true)?;
            std::thread::spawn(move || accept(listener, sockets, stop, accepted));
        }
        let publisher = {
            let stop = stop.clone();
            std::thread::spawn(move || publish(opts, writers, stop))
        };
        Ok(Floor {
            addr,
            stop,
            publisher,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the end of the run (its duration, or [`Floor::stop`]).
    pub fn wait(self) -> FloorReport {
        let report = self.publisher.join().expect("publisher thread");
        self.stop.store(true, Ordering::Relaxed);
        report
    }

    /// Ends the run now.
    pub fn stop(self) -> FloorReport {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }
}

/// One writer thread and the connections it owns.
struct Writer {
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    frames: mpsc::Sender<Arc<Vec<u8>>>,
    done: mpsc::Receiver<(u64, u64)>,
}

impl Writer {
    fn start() -> Writer {
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (frames, rx) = mpsc::channel::<Arc<Vec<u8>>>();
        let (done_tx, done) = mpsc::channel();
        let mine = sockets.clone();
        std::thread::spawn(move || {
            while let Ok(frame) = rx.recv() {
                let mut sockets = mine.lock().expect("sockets");
                let before = sockets.len();
                sockets.retain_mut(|s| s.write_all(&frame).is_ok());
                let _ = done_tx.send((before as u64, (before - sockets.len()) as u64));
            }
        });
        Writer {
            sockets,
            frames,
            done,
        }
    }
}

/// Accepts connections, answers their handshakes and deals them to the
/// writers in turn, until `stop`.
fn accept(
    listener: TcpListener,
    writers: Vec<Arc<Mutex<Vec<TcpStream>>>>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
) {
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if accepted.load(Ordering::Relaxed) as usize >= MAX_CONNECTIONS {
                    continue;
                }
                if let Ok(stream) = handshake(stream) {
                    writers[next % writers.len()]
                        .lock()
                        .expect("sockets")
                        .push(stream);
                    next += 1;
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads the upgrade request (bounded) and answers 101.
fn handshake(stream: TcpStream) -> std::io::Result<TcpStream> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (mut key, mut read) = (None, 0);
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        read += n;
        if n == 0 || read > MAX_REQUEST_BYTES {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("sec-websocket-key") {
                key = Some(value.trim().to_owned());
            }
        }
    }
    let key = key.ok_or(std::io::ErrorKind::InvalidData)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    Ok(stream)
}

/// An unmasked, final text frame of `payload`.
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// Builds a message `rate` times a second and hands the same frame to
/// every writer, waiting for them before the next (a writer behind its
/// schedule delays the next message, like a saturated sender).
fn publish(opts: FloorOptions, writers: Vec<Writer>, stop: Arc<AtomicBool>) -> FloorReport {
    let start = Instant::now();
    let end = start + opts.duration;
    let mut report = FloorReport {
        messages: 0,
        writes: 0,
        dropped_connections: 0,
    };
    let (mut seq, mut prev) = (1u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_secs_f64(report.messages as f64 / opts.rate);
        let now = Instant::now();
        if due >= end || now >= end {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        let text = crate::peer::message("book.BTC-USD", "floor", seq, prev, opts.bytes);
        let frame = Arc::new(text_frame(text.as_bytes()));
        for w in &writers {
            let _ = w.frames.send(frame.clone());
        }
        for w in &writers {
            if let Ok((writes, dropped)) = w.done.recv() {
                report.writes += writes;
                report.dropped_connections += dropped;
            }
        }
        report.messages += 1;
        prev = seq;
        seq += 1;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_payload_length_in_the_three_sizes() {
        assert_eq!(text_frame(b"hi"), [0x81, 2, b'h', b'i']);
        let mid = text_frame(&[b'x'; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let big = text_frame(&vec![b'x'; 70_000]);
        assert_eq!(&big[..2], &[0x81, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
    }
}
