//! The address a request is counted against: [`ClientIp`].
//!
//! It is the TCP peer's address, unless the peer is a trusted proxy (the
//! load balancer, listed in [`TrustedProxies`]). Then it is the right-most
//! `X-Forwarded-For` entry that is not itself a trusted proxy: each proxy
//! appends the address it received the request from, so entries right of
//! that one were written by our proxies and entries left of it by the
//! client (who may write anything there). A peer that is not trusted
//! cannot choose its address: its `X-Forwarded-For` is ignored.
//!
//! The server sets [`ClientIp`] as a request extension (the hub's accept
//! loop does, for every request, WebSocket upgrades included); code that
//! needs the client's address reads it with the [`ClientIp`] extractor,
//! `Option<ClientIp>`, or [`ClientIp::from_extensions`]. Where no server
//! set it (a plain `axum::serve` with `ConnectInfo`), these fall back to
//! the peer address, which is the same thing with no trusted proxies.

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The header proxies append the client's address to.
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// An entry of a trusted-proxy list that is neither an IP address nor a
/// CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR block: {0:?}")]
pub struct InvalidProxy(pub String);

/// The proxies whose `X-Forwarded-For` is believed, and whose connections
/// are not capped per peer address: IP addresses and CIDR blocks.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match the IPv4 entries.
/// In configuration files it is a list of strings
/// (`["10.0.0.0/16", "10.1.2.3"]`); [`FromStr`] reads a comma-separated
/// list (an empty string is the empty list).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses every entry (`10.0.0.0/16`, `10.1.2.3`, `fd00::/8`); the
    /// first invalid one is the error.
    pub fn parse<S: AsRef<str>>(
        entries: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidProxy> {
        let nets = entries
            .into_iter()
            .map(|entry| parse_net(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    /// Whether nothing is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

fn parse_net(entry: &str) -> Result<IpNet, InvalidProxy> {
    let entry = entry.trim();
    let net = match entry.parse::<IpAddr>() {
        Ok(ip) => IpNet::from(ip.to_canonical()),
        Err(_) => entry
            .parse::<IpNet>()
            .map_err(|_| InvalidProxy(entry.to_owned()))?,
    };
    Ok(net.trunc())
}

impl FromStr for TrustedProxies {
    type Err = InvalidProxy;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        if list.trim().is_empty() {
            return Ok(TrustedProxies::default());
        }
        Self::parse(list.split(','))
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = InvalidProxy;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(entries)
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(proxies: TrustedProxies) -> Self {
        proxies.nets.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.clone().into();
        f.write_str(&list.join(","))
    }
}

/// The client's address (see the module doc). IPv4-mapped IPv6 addresses
/// are given as IPv4, so one client has one address whatever the socket
/// family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client of a request received from `peer` with `headers`.
    ///
    /// Guarantees: the result is `peer` unless `peer` is in `trusted`; a
    /// trusted peer's request yields the right-most `X-Forwarded-For`
    /// entry (over all such header lines, in order) that is not in
    /// `trusted`, or the left-most entry when all are trusted; a header
    /// that is absent, not ASCII, or holds an entry that is not an IP
    /// address (optionally with a port) between its right end and that
    /// entry yields `peer`.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientIp {
        let peer = peer.to_canonical();
        if !trusted.contains(peer) {
            return ClientIp(peer);
        }
        ClientIp(forwarded_client(headers, trusted).unwrap_or(peer))
    }

    /// The address set by the server, else the `ConnectInfo` peer; `None`
    /// when the request carries neither.
    pub fn from_extensions(extensions: &Extensions) -> Option<ClientIp> {
        extensions.get::<ClientIp>().copied().or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| ClientIp(addr.ip().to_canonical()))
        })
    }
}

/// Right to left through every `X-Forwarded-For` entry: the first one that
/// is not trusted, else the last (left-most) one; `None` when the header is
/// absent or malformed before an untrusted entry is found.
fn forwarded_client(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut leftmost = None;
    for value in headers.get_all(FORWARDED_FOR).iter().rev() {
        let text = value.to_str().ok()?;
        for entry in text.rsplit(',') {
            let ip = parse_entry(entry.trim())?;
            if !trusted.contains(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

/// `203.0.113.7`, `2001:db8::1`, `203.0.113.7:4711` or `[2001:db8::1]:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// Fails (500) only on a server that sets neither [`ClientIp`] nor
/// `ConnectInfo`: a wiring mistake, not a client's.
impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = crate::ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ClientIp::from_extensions(&parts.extensions)
            .ok_or_else(|| crate::ApiError::internal("the server did not record the peer address"))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(ClientIp::from_extensions(&parts.extensions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn alb() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/16", "fd00::/8"]).unwrap()
    }

    fn resolve(peer: &str, lines: &[&str]) -> IpAddr {
        ClientIp::resolve(ip(peer), &xff(lines), &alb()).0
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            resolve("198.51.100.9", &["203.0.113.7"]),
            ip("198.51.100.9")
        );
        assert_eq!(resolve("198.51.100.9", &[]), ip("198.51.100.9"));
        let none = TrustedProxies::default();
        assert_eq!(
            ClientIp::resolve(ip("10.0.0.5"), &xff(&["203.0.113.7"]), &none).0,
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_trusted_peer_forwards_the_rightmost_untrusted_entry() {
        assert_eq!(resolve("10.0.1.2", &["203.0.113.7"]), ip("203.0.113.7"));
        // The client prepended a lie; the ALB appended the truth.
        assert_eq!(
            resolve("10.0.1.2", &["1.1.1.1, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Two proxies of ours in a row.
        assert_eq!(
            resolve("10.0.1.2", &["1.1.1.1, 203.0.113.7, 10.0.9.9"]),
            ip("203.0.113.7")
        );
        // Several header lines read as one list, in order.
        assert_eq!(
            resolve("10.0.1.2", &["1.1.1.1", "203.0.113.7, 10.0.9.9"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn garbage_left_of_the_client_does_not_matter_but_right_of_it_falls_back() {
        assert_eq!(
            resolve("10.0.1.2", &["<script>, not-an-ip, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(resolve("10.0.1.2", &["203.0.113.7, junk"]), ip("10.0.1.2"));
        assert_eq!(resolve("10.0.1.2", &["203.0.113.7,"]), ip("10.0.1.2"));
        assert_eq!(resolve("10.0.1.2", &[""]), ip("10.0.1.2"));
        let mut headers = HeaderMap::new();
        headers.insert(
            FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.\xff").unwrap(),
        );
        assert_eq!(
            ClientIp::resolve(ip("10.0.1.2"), &headers, &alb()).0,
            ip("10.0.1.2")
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        assert_eq!(resolve("10.0.1.2", &[]), ip("10.0.1.2"));
    }

    #[test]
    fn all_trusted_entries_give_the_leftmost() {
        assert_eq!(resolve("10.0.1.2", &["10.0.3.3, 10.0.4.4"]), ip("10.0.3.3"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        assert_eq!(
            resolve("10.0.1.2", &["203.0.113.7:4711"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            resolve("10.0.1.2", &["[2001:db8::1]:4711"]),
            ip("2001:db8::1")
        );
        assert_eq!(resolve("10.0.1.2", &["2001:db8::1"]), ip("2001:db8::1"));
        // A dual-stack socket reports an IPv4 peer as mapped IPv6.
        assert_eq!(
            resolve("::ffff:10.0.1.2", &["::ffff:203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(resolve("::ffff:198.51.100.9", &[]), ip("198.51.100.9"));
        assert_eq!(resolve("fd00::1", &["203.0.113.7"]), ip("203.0.113.7"));
    }

    #[test]
    fn trusted_lists_parse_and_refuse_garbage() {
        let list: TrustedProxies = "10.0.0.0/16, 192.0.2.1 ,fd00::/8".parse().unwrap();
        assert!(list.contains(ip("10.0.255.1")));
        assert!(list.contains(ip("192.0.2.1")));
        assert!(!list.contains(ip("192.0.2.2")));
        assert!(list.contains(ip("::ffff:10.0.0.1")));
        assert_eq!(list.to_string(), "10.0.0.0/16,192.0.2.1/32,fd00::/8");
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert_eq!(
            "10.0.0.0/16,bogus".parse::<TrustedProxies>(),
            Err(InvalidProxy("bogus".into()))
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        // Host bits are dropped: 10.0.0.7/24 is 10.0.0.0/24.
        let list: TrustedProxies = "10.0.0.7/24".parse().unwrap();
        assert_eq!(list.to_string(), "10.0.0.0/24");
    }

    #[test]
    fn extensions_prefer_the_resolved_address_then_the_peer() {
        let mut ext = Extensions::new();
        assert_eq!(ClientIp::from_extensions(&ext), None);
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 1, 2], 5000))));
        assert_eq!(
            ClientIp::from_extensions(&ext),
            Some(ClientIp(ip("10.0.1.2")))
        );
        ext.insert(ClientIp(ip("203.0.113.7")));
        assert_eq!(
            ClientIp::from_extensions(&ext),
            Some(ClientIp(ip("203.0.113.7")))
        );
    }
}
