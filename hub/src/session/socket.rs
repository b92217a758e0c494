//! The socket of a WebSocket session after the upgrade, taken apart: the
//! reader keeps tungstenite's frame decoder (bounded, fuzzed), the writer
//! writes server frames itself (docs/ARCHITECTURE.md, "Writes").
//!
//! A server frame is not masked, so a channel message's frame is the same
//! bytes for every subscriber: the writer hands the shared payload to the
//! kernel as it is, behind a header of 2, 4 or 10 bytes made on its stack, and
//! writes a whole batch of frames with one vectored write. Per connection
//! and message that is a reference count and an `iovec`; no copy in user
//! space.
//!
//! What tungstenite still writes (the Pong to a Ping, the reply to a
//! Close) it writes into [`ReadSide`], which queues those bytes, already
//! framed, on the connection's outbound queue, in order with everything
//! else the writer sends.

use super::inflate::{self, Inflating};
use crate::fanout::{DirectSink, Subscriber};
use crate::listener::{SocketHold, TimedStream};
use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{request::Parts, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// Why an upgrade request is refused: the status and the message.
pub struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        api::ApiError::new(self.0, "upgrade_required", self.1).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UpgradeRequest {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refused> {
        UpgradeRequest::from_parts(parts)
    }
}

/// The parts of `GET /ws` the upgrade needs, checked as RFC 6455 §4.2.1
/// asks (the key's form is checked by `handshake.rs`).
pub struct UpgradeRequest {
    key: HeaderValue,
    /// The answer to the client's offer of permessage-deflate, if it made
    /// one the hub takes.
    deflate_answer: Option<&'static str>,
    on_upgrade: OnUpgrade,
}

impl UpgradeRequest {
    fn from_parts(parts: &mut Parts) -> Result<Self, Refused> {
        if parts.method != Method::GET {
            return Err(Refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade must be a GET",
            ));
        }
        let h = &parts.headers;
        if !has_token(h, header::CONNECTION, "upgrade") {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "`Connection` header did not include `upgrade`",
            ));
        }
        if !h
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include `websocket`",
            ));
        }
        if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include `13`",
            ));
        }
        let Some(key) = h.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(Refused(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        Ok(UpgradeRequest {
            key,
            deflate_answer: inflate::answer(h),
            on_upgrade,
        })
    }

    /// Whether the connection compresses: the client offered it and the
    /// node allows it (`limits.permessage_deflate`).
    pub(super) fn deflate(&self, allowed: bool) -> bool {
        allowed && self.deflate_answer.is_some()
    }

    /// The `101 Switching Protocols` answer, with the extension when
    /// `deflate`.
    pub(super) fn accept(&self, deflate: bool) -> Response {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a header value"),
        );
        if let Some(answer) = self.deflate_answer.filter(|_| deflate) {
            h.insert(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(answer),
            );
        }
        response
    }

    /// Waits for hyper to hand over the socket once the 101 is written.
    pub(super) async fn upgraded(self) -> Option<Upgraded> {
        self.on_upgrade.await.ok()
    }
}

/// Whether the comma-separated header `name` has `token` (any case).
fn has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The upgraded socket's write half.
pub(super) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A TCP socket's write half, shared by the writer and the pushes that
/// write through (`fanout/queue/through.rs`); they never write at once.
#[derive(Debug)]
struct TcpWrite(tokio::net::tcp::OwnedWriteHalf);

impl DirectSink for TcpWrite {
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
}

/// The writer's handle of a shared [`TcpWrite`].
struct SharedWrite(Arc<TcpWrite>);

impl SharedWrite {
    /// Writes with `write` once the socket is writable.
    fn poll_with(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&tokio::net::TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let tcp: &tokio::net::TcpStream = self.0 .0.as_ref();
        loop {
            std::task::ready!(tcp.poll_write_ready(cx))?;
            match write(tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncWrite for SharedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |tcp| tcp.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |tcp| tcp.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the sending side down once the queue has let the socket go
    /// (`stop_through`); while a push could still hold it, the last one to
    /// drop it does (tokio shuts a dropped write half down).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Arc::get_mut(&mut self.0) {
            Some(w) => Pin::new(&mut w.0).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;

/// The reader's side of the socket as tungstenite sees it: reads from the
/// socket, writes (Pong, Close reply) onto the outbound queue.
pub(super) struct ReadSide {
    read: ReadHalf,
    subscriber: Arc<Subscriber>,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    /// Tungstenite writes its whole output buffer, whole frames, at once:
    /// queued as one pre-framed entry (bounded by the queue like a reply).
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.subscriber
            .queue
            .push_framed(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The session's reader (tungstenite's decoder over [`ReadSide`], behind
/// [`Inflating`] when the connection compresses), its writer half, and the
/// socket's hold (its slot and count), to keep until both are done.
pub(super) async fn split(
    upgraded: Upgraded,
    subscriber: Arc<Subscriber>,
    config: WebSocketConfig,
) -> (WebSocketStream<ReadSide>, WriteHalf, Option<SocketHold>) {
    let deflate = subscriber.queue.deflates();
    // On the hub's own listener the socket is a TCP stream, split without
    // a lock; any other transport is split behind tokio's.
    let (read, write, hold, buffered): (ReadHalf, WriteHalf, _, Bytes) =
        match upgraded.downcast::<TokioIo<TimedStream>>() {
            Ok(parts) => {
                let (tcp, hold) = parts.io.into_inner().into_socket();
                let (r, w) = tcp.into_split();
                let w = Arc::new(TcpWrite(w));
                subscriber.queue.attach_through(w.clone());
                (
                    Box::new(r),
                    Box::new(SharedWrite(w)),
                    Some(hold),
                    parts.read_buf,
                )
            }
            Err(upgraded) => {
                let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                (Box::new(r), Box::new(w), None, Bytes::new())
            }
        };
    let (read, buffered): (ReadHalf, Bytes) = match (deflate, config.max_message_size) {
        (true, Some(max)) => (Box::new(Inflating::new(read, &buffered, max)), Bytes::new()),
        _ => (read, buffered),
    };
    let side = ReadSide { read, subscriber };
    let reader =
        WebSocketStream::from_partially_read(side, buffered.to_vec(), Role::Server, Some(config))
            .await;
    (reader, write, hold)
}
