//! Pagination of list routes: `limit` (1..=100, default 50) and an opaque
//! `cursor` that the store hands out and takes back.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Default page size of list routes.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size (docs/API.md: limit ≤ 100).
pub const MAX_LIMIT: usize = 100;
/// Longest cursor decoded (characters); longer ones are refused before
/// decoding. The longest this API hands out is about 2,000: the store's
/// position (a DynamoDB key of at most 1 KiB, as base64url JSON) encoded
/// once more.
pub const MAX_CURSOR_LEN: usize = 4096;

/// A validated page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub usize);

impl Limit {
    /// `None` is the default; 0 or over [`MAX_LIMIT`] is 422 `invalid_limit`.
    pub fn parse(raw: Option<usize>) -> Result<Self, ApiError> {
        match raw {
            None => Ok(Limit(DEFAULT_LIMIT)),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Limit(n)),
            Some(n) => Err(ApiError::unprocessable(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}, got {n}"),
            )),
        }
    }
}

/// An opaque cursor: the store's position key, base64url-encoded so
/// clients treat it as a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    /// Encodes a store position for the client.
    pub fn encode(position: &str) -> String {
        URL_SAFE_NO_PAD.encode(position.as_bytes())
    }

    /// Decodes a client cursor; garbage is 422 `invalid_cursor`.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let bad =
            || ApiError::unprocessable("invalid_cursor", "cursor is not one this API handed out");
        if raw.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let s = String::from_utf8(bytes).map_err(|_| bad())?;
        Ok(Some(Cursor(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(Limit::parse(None).unwrap(), Limit(DEFAULT_LIMIT));
        assert_eq!(Limit::parse(Some(100)).unwrap(), Limit(100));
        assert_eq!(Limit::parse(Some(101)).unwrap_err().code, "invalid_limit");
        assert_eq!(Limit::parse(Some(0)).unwrap_err().code, "invalid_limit");
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor::encode("u1#0190");
        assert_eq!(
            Cursor::parse(Some(&c)).unwrap(),
            Some(Cursor("u1#0190".into()))
        );
        assert_eq!(
            Cursor::parse(Some("%%%")).unwrap_err().code,
            "invalid_cursor"
        );
        assert_eq!(Cursor::parse(Some("")).unwrap(), None);
    }

    #[test]
    fn overlong_cursor_is_refused_before_decoding() {
        let longest = Cursor::encode(&"x".repeat(MAX_CURSOR_LEN * 3 / 4));
        assert!(longest.len() <= MAX_CURSOR_LEN);
        assert!(Cursor::parse(Some(&longest)).is_ok());
        let long = Cursor::encode(&"x".repeat(100_000));
        assert_eq!(
            Cursor::parse(Some(&long)).unwrap_err().code,
            "invalid_cursor"
        );
    }
}
