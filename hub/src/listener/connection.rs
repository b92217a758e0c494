//! One accepted connection: HTTP/1.1 through hyper (WebSocket upgrades
//! included), with the deadlines hyper does not keep for us.
//!
//! A connection is always in one phase, each with its own deadline:
//! - **head**: waiting for a complete request head, from the accept, or
//!   on a kept-alive connection from the first byte of its next request;
//!   the deadline is `header_timeout` after that and is not moved by later
//!   bytes, so dripping a head byte by byte does not keep a connection;
//! - **busy**: a request is being handled or its response written; no
//!   deadline (the handlers own their time);
//! - **idle**: kept alive after a response, no byte of a next request yet;
//!   the deadline is `idle_timeout` after the response.
//!
//! Past its deadline the connection is dropped (closed). hyper's own
//! `header_read_timeout` is not used: it starts when a kept-alive
//! connection goes idle, so it would cut keep-alive at the header timeout,
//! shorter than a load balancer's idle timeout.
//!
//! Every request gets `ConnectInfo<SocketAddr>` (the peer) and
//! [`ClientIp`] as extensions.

use super::peers::PeerSlot;
use crate::metrics as m;
use crate::shutdown::Shutdown;
use api::http::{ClientIp, TrustedProxies};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// What every connection of one server shares.
pub(super) struct Shared {
    pub router: axum::Router,
    pub trusted: Arc<TrustedProxies>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub proxy_idle_timeout: Duration,
    pub max_head_bytes: usize,
}

/// Serves one connection until it closes, times out, or finishes after a
/// graceful shutdown (in-flight requests complete, idle connections
/// close). `slot` (the peer's place under the per-address cap) is held as
/// long as the socket is open, through a WebSocket upgrade too; `_close`
/// tells the server this connection is done.
pub(super) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    trusted_peer: bool,
    slot: Option<PeerSlot>,
    shared: Arc<Shared>,
    shutdown: Shutdown,
    _close: watch::Receiver<()>,
) {
    let idle = if trusted_peer {
        shared.proxy_idle_timeout
    } else {
        shared.idle_timeout
    };
    let clock = Arc::new(Clock::new(shared.header_timeout, idle));
    metrics::gauge!(m::HTTP_CONNECTIONS).increment(1.0);
    let io = TokioIo::new(TimedStream {
        tcp,
        clock: clock.clone(),
        hold: SocketHold { _slot: slot },
    });
    let service = ConnService {
        router: shared.router.clone(),
        peer,
        trusted: shared.trusted.clone(),
        clock: clock.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(shared.max_head_bytes)
        .max_header_size(shared.max_head_bytes)
        .header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut alarm = pin!(tokio::time::sleep(Duration::ZERO));
    let mut graceful = false;
    loop {
        let deadline = clock.deadline();
        if let Some(deadline) = deadline {
            alarm.as_mut().reset(deadline);
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            () = clock.changed.notified() => {}
            () = alarm.as_mut(), if deadline.is_some() => {
                if let Some(phase) = clock.expired(Instant::now()) {
                    metrics::counter!(m::HTTP_TIMEOUTS_TOTAL, m::LABEL_PHASE => phase).increment(1);
                    tracing::debug!(%peer, phase, "closing a silent connection");
                    break;
                }
            }
            () = shutdown.triggered(), if !graceful => {
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    clock.finish();
}

/// The phase of a connection (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head(Instant),
    Busy(u32),
    Idle(Instant),
    /// The connection task ended (closed, or handed to a WebSocket).
    Done,
}

/// A connection's phase, shared by its task, its service and its socket.
struct Clock {
    header_timeout: Duration,
    idle_timeout: Duration,
    phase: Mutex<Phase>,
    /// Mirrors `phase == Idle`, so reads need no lock otherwise.
    idle: AtomicBool,
    /// Wakes the connection task when the deadline moves.
    changed: Notify,
}

impl Clock {
    fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Clock {
            header_timeout,
            idle_timeout,
            phase: Mutex::new(Phase::Head(Instant::now() + header_timeout)),
            idle: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Head(at) | Phase::Idle(at) => Some(at),
            Phase::Busy(_) | Phase::Done => None,
        }
    }

    /// The phase whose deadline has passed at `now`, if any.
    fn expired(&self, now: Instant) -> Option<&'static str> {
        match *self.phase.lock() {
            Phase::Head(at) if at <= now => Some("head"),
            Phase::Idle(at) if at <= now => Some("idle"),
            _ => None,
        }
    }

    /// Bytes arrived: on an idle connection they start the next head.
    fn bytes_read(&self) {
        if !self.idle.load(Ordering::Acquire) {
            return;
        }
        let mut phase = self.phase.lock();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now() + self.header_timeout);
            self.idle.store(false, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request head is complete and handed to the router.
    fn request_started(&self) {
        let mut phase = self.phase.lock();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Done => Phase::Done,
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        };
        self.idle.store(false, Ordering::Release);
        self.changed.notify_one();
    }

    /// A response was written (or abandoned).
    fn request_finished(&self) {
        let mut phase = self.phase.lock();
        if let Phase::Busy(n) = *phase {
            *phase = if n > 1 {
                Phase::Busy(n - 1)
            } else {
                self.idle.store(true, Ordering::Release);
                Phase::Idle(Instant::now() + self.idle_timeout)
            };
            self.changed.notify_one();
        }
    }

    fn finish(&self) {
        *self.phase.lock() = Phase::Done;
        self.idle.store(false, Ordering::Release);
    }
}

/// Marks a request busy from its head until its response body is done
/// with (dropped by hyper after the last byte, or with the connection).
struct Busy(Arc<Clock>);

impl Busy {
    fn start(clock: Arc<Clock>) -> Self {
        clock.request_started();
        Busy(clock)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The socket: tells the clock when bytes arrive, and holds what an open
/// socket holds ([`SocketHold`]) until it closes.
pub(crate) struct TimedStream {
    tcp: TcpStream,
    clock: Arc<Clock>,
    hold: SocketHold,
}

/// What an open socket holds until it closes, however it is taken apart:
/// the peer's slot under the per-address cap and its count in
/// [`m::HTTP_CONNECTIONS`].
pub(crate) struct SocketHold {
    _slot: Option<PeerSlot>,
}

impl Drop for SocketHold {
    fn drop(&mut self) {
        metrics::gauge!(m::HTTP_CONNECTIONS).decrement(1.0);
    }
}

impl TimedStream {
    /// The socket and its hold, for a WebSocket session that reads and
    /// writes the socket itself (`session/socket.rs`): after an upgrade no
    /// deadline of this module applies.
    pub(crate) fn into_socket(self) -> (TcpStream, SocketHold) {
        (self.tcp, self.hold)
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        result
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The router, with the connection's extensions and busy tracking.
struct ConnService {
    router: axum::Router,
    peer: SocketAddr,
    trusted: Arc<TrustedProxies>,
    clock: Arc<Clock>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let busy = Busy::start(self.clock.clone());
        let client = ClientIp::resolve(self.peer.ip(), request.headers(), &self.trusted);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(client);
        let mut router = self.router.clone();
        let response = tower_service::Service::call(&mut router, request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its request busy until hyper is done with it.
struct TrackedBody {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    /// `clock`'s deadline, which must have been set `span` after an
    /// instant between `before` and now.
    fn assert_deadline(clock: &Clock, before: Instant, span: Duration) -> Instant {
        let deadline = clock.deadline().expect("a deadline");
        assert!(
            deadline >= before + span,
            "{deadline:?} < {:?}",
            before + span
        );
        assert!(deadline <= Instant::now() + span);
        deadline
    }

    #[test]
    fn phases_move_their_deadlines() {
        let before = Instant::now();
        let clock = Arc::new(Clock::new(HEAD, IDLE));
        let first_head = assert_deadline(&clock, before, HEAD);
        // Bytes of the first head do not move its deadline.
        clock.bytes_read();
        assert_eq!(clock.deadline(), Some(first_head));
        assert_eq!(clock.expired(first_head), Some("head"));
        assert_eq!(clock.expired(first_head - Duration::from_millis(1)), None);

        let busy = Busy::start(clock.clone());
        assert_eq!(clock.deadline(), None);
        assert_eq!(clock.expired(first_head + IDLE * 10), None);
        let before = Instant::now();
        drop(busy);
        let idle_until = assert_deadline(&clock, before, IDLE);
        assert_eq!(clock.expired(idle_until), Some("idle"));

        // The first byte of the next request starts a head deadline...
        let before = Instant::now();
        clock.bytes_read();
        let next_head = assert_deadline(&clock, before, HEAD);
        // ...which further bytes do not move.
        clock.bytes_read();
        assert_eq!(clock.deadline(), Some(next_head));

        clock.finish();
        assert_eq!(clock.deadline(), None);
        drop(Busy::start(clock.clone()));
        assert_eq!(clock.deadline(), None, "a finished clock stays finished");
    }
}
