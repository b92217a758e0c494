//! The HTTP server of the hub: its own accept loop in place of
//! `axum::serve`, so that connections are bounded before they send a
//! request.
//!
//! - Each accepted socket gets `TCP_NODELAY` and a bounded `SO_SNDBUF`
//!   (`limits.socket_send_buffer_bytes`).
//! - A peer address with `http.max_connections_per_ip` open connections
//!   (WebSocket ones included) has its next one closed at once; trusted
//!   proxies are not capped.
//! - A connection must send a complete request head within
//!   `http.header_timeout_ms`, and a kept-alive one its next request within
//!   `http.idle_timeout_ms` (`http.proxy_idle_timeout_ms` for trusted
//!   proxies) of a response; a head over `http.max_head_bytes` gets 431
//!   (see [`connection`]).
//! - `accept` failures for want of resources (`EMFILE`, ...) pause the loop
//!   with exponential backoff (5 ms doubling to 1 s, reset on success) and
//!   are logged at most once a second with the number not logged
//!   ([`backoff`]).
//! - HTTP/1.1 only (with upgrades for `/ws`); the load balancer speaks
//!   HTTP/1.1 to its targets.
//! - Graceful shutdown: when the [`Shutdown`] triggers, the listener
//!   closes, idle connections close, in-flight requests finish; the
//!   returned future resolves when every connection task has ended
//!   (WebSocket sessions close themselves on the same trigger).

pub mod backoff;
mod connection;
pub(crate) use connection::{SocketHold, TimedStream};
pub mod peers;

use crate::config::{Config, HttpConfig};
use crate::metrics as m;
use crate::shutdown::Shutdown;
use api::http::TrustedProxies;
use backoff::{AcceptBackoff, ErrorLog};
use connection::Shared;
use peers::PeerLimits;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How often accept failures are logged at most.
pub const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(1);

/// Everything the server needs from the configuration.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `[http]`.
    pub http: HttpConfig,
    /// `limits.socket_send_buffer_bytes`.
    pub send_buffer_bytes: usize,
}

impl ServerOptions {
    /// The options of a hub configuration.
    pub fn from_config(config: &Config) -> Self {
        ServerOptions {
            http: config.http.clone(),
            send_buffer_bytes: config.limits.socket_send_buffer_bytes,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` triggers and every
/// connection has ended (see the module doc).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    options: ServerOptions,
    shutdown: Shutdown,
) {
    let http = &options.http;
    let trusted: Arc<TrustedProxies> = Arc::new(http.trusted_proxies.clone());
    let shared = Arc::new(Shared {
        router,
        trusted: trusted.clone(),
        header_timeout: Duration::from_millis(http.header_timeout_ms),
        idle_timeout: Duration::from_millis(http.idle_timeout_ms),
        proxy_idle_timeout: Duration::from_millis(http.proxy_idle_timeout_ms),
        max_head_bytes: http.max_head_bytes,
    });
    let peers = PeerLimits::new(http.max_connections_per_ip);
    // Each connection task holds a receiver; `closed()` resolves when all
    // are gone.
    let (close_tx, close_rx) = watch::channel(());
    let mut backoff = AcceptBackoff::default();
    let mut errors = ErrorLog::new(ACCEPT_ERROR_LOG_EVERY);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.triggered() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                metrics::counter!(m::HTTP_ACCEPT_ERRORS_TOTAL).increment(1);
                if let Some(not_logged) = errors.failure(std::time::Instant::now()) {
                    tracing::error!(error = %e, not_logged, "accept error; backing off");
                }
                let pause = backoff.failure();
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = shutdown.triggered() => break,
                }
            }
        };
        backoff.success();
        let not_logged = errors.success();
        if not_logged > 0 {
            tracing::warn!(not_logged, "accepting connections again");
        }
        tune(&tcp, options.send_buffer_bytes);
        let trusted_peer = trusted.contains(peer.ip());
        let slot = if trusted_peer {
            None
        } else {
            match peers.try_acquire(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    metrics::counter!(m::HTTP_CONNECTIONS_REFUSED_TOTAL, m::LABEL_REASON => "per_ip")
                        .increment(1);
                    tracing::debug!(%peer, "connection refused: per-address cap");
                    drop(tcp);
                    continue;
                }
            }
        };
        tokio::spawn(connection::serve(
            tcp,
            peer,
            trusted_peer,
            slot,
            shared.clone(),
            shutdown.clone(),
            close_rx.clone(),
        ));
    }
    drop(listener);
    drop(close_rx);
    close_tx.closed().await;
}

/// Small frames go out at once (no Nagle delay), and a bounded kernel
/// buffer lets the outbound queue, not the kernel, absorb a slow client.
fn tune(tcp: &TcpStream, send_buffer_bytes: usize) {
    let _ = tcp.set_nodelay(true);
    let _ = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer_bytes);
}

/// Failures of one connection that went away before it was accepted: the
/// next accept may succeed at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
