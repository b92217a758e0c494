//! What the `GET /ws` upgrade checks before a connection is accepted, on
//! top of what the WebSocket library checks (method, `Upgrade`,
//! `Connection`, `Sec-WebSocket-Version: 13`):
//!
//! - `Sec-WebSocket-Key` must be the base64 of exactly 16 bytes (RFC 6455
//!   §4.2.1); anything else is 400 `bad_handshake`.
//! - `Origin`, when the client sends one (browsers always do), must be
//!   allowed (403 `origin_not_allowed`): the hub's own origin (the `Host`
//!   the request was sent to, so the hub's page works), or an entry of
//!   `allowed_origins` (exact `scheme://host[:port]`, compared
//!   case-insensitively), or anything when the list holds `*`. Clients
//!   that are not browsers send no `Origin` and are not affected.
//!
//! Why an Origin policy on a public feed: a page on another site must not
//! be able to open sockets from visitors' browsers against the hub (to use
//! their addresses' connection allowance, or their tokens if a page ever
//! kept them where another origin can reach them).

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Which browser origins may open a WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    any: bool,
    allowed: Vec<String>,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("Sec-WebSocket-Key must be the base64 of 16 bytes")]
    BadKey,
    #[error("origin not allowed")]
    Origin,
}

impl OriginPolicy {
    /// From the configured list: exact origins, or `*` for any.
    pub fn new(allowed: &[String]) -> Self {
        OriginPolicy {
            any: allowed.iter().any(|o| o == "*"),
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with these headers may upgrade.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        if self.any || self.allowed.contains(&origin) {
            return true;
        }
        // Same origin: the page came from the host the socket is opened to.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        matches!((origin_host, host), (Some(o), Some(h)) if o == h)
    }
}

/// Checks the key and the origin of an upgrade request.
pub fn check(headers: &HeaderMap, origins: &OriginPolicy) -> Result<(), HandshakeError> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes())
        .unwrap_or_default();
    // 16 bytes are 24 base64 characters; decoding anything longer is moot.
    let valid = key.len() == 24 && STANDARD.decode(key).is_ok_and(|k| k.len() == 16);
    if !valid {
        return Err(HandshakeError::BadKey);
    }
    if !origins.allows(headers) {
        return Err(HandshakeError::Origin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn keys_must_be_sixteen_bytes_of_base64() {
        let none = OriginPolicy::default();
        assert_eq!(check(&headers(&[]), &none), Ok(()));
        for bad in [
            "abc",
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "!!!!!!!!!!!!!!!!!!!!!!==",
            "dGhlIHNhbXBsZSBub25jZSE=",
        ] {
            let h = headers(&[("sec-websocket-key", bad)]);
            assert_eq!(check(&h, &none), Err(HandshakeError::BadKey), "{bad}");
        }
        let mut missing = headers(&[]);
        missing.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(check(&missing, &none), Err(HandshakeError::BadKey));
    }

    #[test]
    fn origins_same_host_listed_or_any() {
        let none = OriginPolicy::default();
        let same = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ];
        assert_eq!(check(&headers(&same), &none), Ok(()));
        let evil = [
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(check(&headers(&evil), &none), Err(HandshakeError::Origin));
        let listed = OriginPolicy::new(&["https://Trade.Example.com/".into()]);
        let ok = [
            ("host", "hub:8080"),
            ("origin", "https://trade.example.com"),
        ];
        assert_eq!(check(&headers(&ok), &listed), Ok(()));
        assert_eq!(check(&headers(&evil), &listed), Err(HandshakeError::Origin));
        let any = OriginPolicy::new(&["*".into()]);
        assert_eq!(check(&headers(&evil), &any), Ok(()));
        let null = [("host", "hub"), ("origin", "null")];
        assert_eq!(check(&headers(&null), &none), Err(HandshakeError::Origin));
    }
}
