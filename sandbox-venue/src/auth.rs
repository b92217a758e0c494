//! The shared bearer token every client presents: `Authorization: Bearer
//! <token>` on HTTP, `{"authorization": "Bearer <token>"}` in the
//! WebSocket `connection_init` payload. Compared in constant time; never
//! printed.

use subtle::ConstantTimeEq;

/// Longest token accepted, so a header cannot make the comparison costly.
const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token must not be empty")]
    Empty,
    #[error("the bearer token must be at most {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("the bearer token must be visible ASCII without spaces")]
    InvalidChars,
}

/// The token the server accepts. `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// A token of 1 to 4096 visible ASCII characters (it must fit an HTTP
    /// header unchanged).
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::InvalidChars);
        }
        Ok(BearerToken(token))
    }

    /// The token itself, for clients (tests) that must present it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `credentials` is `Bearer <this token>` (scheme case
    /// insensitive). The token bytes are compared in constant time; only
    /// the length can leak.
    pub fn accepts(&self, credentials: Option<&str>) -> bool {
        let Some(credentials) = credentials else {
            return false;
        };
        let Some((scheme, presented)) = credentials.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && presented.len() <= MAX_TOKEN_LEN
            && bool::from(presented.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let token = BearerToken::new("s3cret").unwrap();
        assert!(token.accepts(Some("Bearer s3cret")));
        assert!(token.accepts(Some("bearer s3cret")));
        for wrong in [
            None,
            Some(""),
            Some("s3cret"),
            Some("Bearer "),
            Some("Bearer s3cre"),
            Some("Bearer s3cret "),
            Some("Basic s3cret"),
            Some("Bearer  s3cret"),
        ] {
            assert!(!token.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn refuses_unusable_tokens_and_never_prints_one() {
        assert_eq!(BearerToken::new(""), Err(TokenError::Empty));
        assert_eq!(BearerToken::new("a b"), Err(TokenError::InvalidChars));
        assert_eq!(
            BearerToken::new("x".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::TooLong)
        );
        let token = BearerToken::new("s3cret").unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
