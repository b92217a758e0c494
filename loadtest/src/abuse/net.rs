//! Sockets of the abuse scenario: the hub's address, the local client
//! addresses each kind of worker uses, a minimal HTTP/1.1 request on a
//! fresh connection, and a WebSocket connect.
//!
//! Against a hub on IPv4 loopback every worker kind gets its own block of
//! `127.0.0.x` source addresses (the whole of 127/8 is local on Linux), so
//! the hub's per-address limits (connections per IP, login throttles) see
//! many clients; the sampler keeps the plain `127.0.0.1`, so no abuse ever
//! counts against the connection that measures `/health`. Against any
//! other address nothing is bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Longest HTTP answer read (the hub's answers here are tiny).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Largest frame a WebSocket client of this scenario accepts from the hub.
const MAX_INBOUND_FRAME: usize = 1 << 20;

/// Which worker kind a source address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Idle-socket holders: `127.0.0.2 ..= 127.0.0.65`.
    Idle,
    /// Malformed-frame senders: `127.0.0.66 ..= 127.0.0.81`.
    Frames,
    /// Subscribe flippers: `127.0.0.82 ..= 127.0.0.97`.
    Flip,
    /// Login workers: `127.0.0.98 ..= 127.0.0.254`.
    Login,
}

impl Block {
    /// First last octet and number of addresses of the block.
    const fn range(self) -> (u8, u8) {
        match self {
            Block::Idle => (2, 64),
            Block::Frames => (66, 16),
            Block::Flip => (82, 16),
            Block::Login => (98, 157),
        }
    }

    /// Addresses in the block.
    pub const fn addresses(self) -> usize {
        self.range().1 as usize
    }
}

/// The hub under attack.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT` as given, for `Host` headers and the WebSocket URL.
    pub authority: String,
    pub addr: SocketAddr,
    /// Bind sockets to per-kind `127.0.0.x` addresses.
    pub bind_local: bool,
}

impl Target {
    /// Parses `http://HOST[:PORT]` (a trailing `/` allowed), resolves HOST
    /// (first address); local addresses are used when it is
    /// `127.0.0.1` and `bind_local` is asked for.
    pub async fn resolve(url: &str, bind_local: bool) -> Result<Target, String> {
        let bad = || format!("--url {url:?}: expected http://HOST[:PORT]");
        let authority = url
            .strip_prefix("http://")
            .ok_or_else(bad)?
            .trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        let addr = crate::target::resolve_authority(authority).await.map_err(
            |(with_port, e)| match e {
                Some(e) => format!("cannot resolve {with_port}: {e}"),
                None => format!("cannot resolve {with_port}"),
            },
        )?;
        Ok(Target {
            authority: authority.to_string(),
            bind_local: bind_local && addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST),
            addr,
        })
    }

    /// The hub's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.authority)
    }

    /// The `index`-th source address of `block` (wrapping), or `None` when
    /// nothing is bound.
    pub fn source(&self, block: Block, index: usize) -> Option<IpAddr> {
        let (first, len) = block.range();
        self.bind_local.then(|| {
            let octet = first + (index % usize::from(len)) as u8;
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet))
        })
    }

    /// A TCP connection from `source` (any local address when `None`).
    pub async fn connect(&self, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// One request on a fresh connection (`Connection: close`), within
    /// `timeout`: the answer's status and how long it took from the connect
    /// to the end of the answer. `Err` names what failed.
    pub async fn request(
        &self,
        source: Option<IpAddr>,
        method: &str,
        path: &str,
        json_body: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, Duration), String> {
        let started = Instant::now();
        let exchange = async {
            let mut stream = self
                .connect(source)
                .await
                .map_err(|e| format!("connect {:?}", e.kind()))?;
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
                self.authority
            );
            if let Some(body) = json_body {
                head.push_str(&format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                ));
            }
            head.push_str("\r\n");
            head.push_str(json_body.unwrap_or_default());
            stream
                .write_all(head.as_bytes())
                .await
                .map_err(|e| format!("send {:?}", e.kind()))?;
            let mut answer = Vec::new();
            (&mut stream)
                .take(MAX_ANSWER_BYTES)
                .read_to_end(&mut answer)
                .await
                .map_err(|e| format!("read {:?}", e.kind()))?;
            status_of(&answer).ok_or_else(|| "no HTTP status".to_string())
        };
        let status = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| "timed out".to_string())??;
        Ok((status, started.elapsed()))
    }

    /// A WebSocket connection from `source`, within `timeout`. `Err` names
    /// what failed; a refused handshake is `http STATUS`.
    pub async fn websocket(&self, source: Option<IpAddr>, timeout: Duration) -> Result<Ws, String> {
        let attempt = async {
            let stream = self
                .connect(source)
                .await
                .map_err(|e| format!("connect {:?}", e.kind()))?;
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_INBOUND_FRAME))
                .max_frame_size(Some(MAX_INBOUND_FRAME));
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(self.ws_url(), stream, Some(config))
                    .await
                    .map_err(|e| ws_error(&e))?;
            Ok(ws)
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| "connect timed out".to_string())?
    }
}

/// The status code of an HTTP/1.x answer's first line.
pub fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    words.next()?.parse().ok()
}

/// A short, bounded-cardinality name for a WebSocket error.
pub fn ws_error(e: &WsError) -> String {
    match e {
        WsError::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => "reset".into(),
            kind => format!("io {kind:?}"),
        },
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".into(),
        WsError::Http(response) => format!("http {}", response.status().as_u16()),
        WsError::Capacity(_) => "capacity".into(),
        WsError::Protocol(p) => format!("protocol: {p}"),
        other => other.to_string().chars().take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_and_sources() {
        let t = Target::resolve("http://127.0.0.1:8080/", true)
            .await
            .unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.ws_url(), "ws://127.0.0.1:8080/ws");
        assert_eq!(t.source(Block::Idle, 0), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(
            t.source(Block::Idle, 64),
            Some("127.0.0.2".parse().unwrap()),
            "wraps"
        );
        assert_eq!(
            t.source(Block::Login, 156),
            Some("127.0.0.254".parse().unwrap())
        );
        let off = Target::resolve("http://127.0.0.1:8080", false)
            .await
            .unwrap();
        assert_eq!(off.source(Block::Frames, 3), None);
        for bad in ["ws://127.0.0.1/ws", "http://", "http://h/x"] {
            assert!(Target::resolve(bad, true).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_do_not_overlap() {
        let blocks = [Block::Idle, Block::Frames, Block::Flip, Block::Login];
        let mut end = 2u16;
        for b in blocks {
            let (first, len) = b.range();
            assert_eq!(u16::from(first), end, "{b:?} follows the previous block");
            end = u16::from(first) + u16::from(len);
        }
        assert_eq!(end, 255, "127.0.0.254 is the last address used");
    }

    #[test]
    fn statuses_parse() {
        assert_eq!(status_of(b"HTTP/1.1 429 Too Many\r\n\r\n"), Some(429));
        assert_eq!(status_of(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"SSH-2.0\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
