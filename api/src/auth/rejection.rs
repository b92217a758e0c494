//! Why a bearer token was refused, shared by local and Cognito
//! verification. Every reason is a 401 `unauthorized` whose message says
//! which check failed; the token itself is never echoed or logged.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use inbound::JsonBounds;
use jsonwebtoken::errors::ErrorKind;
use thiserror::Error;

/// Longest bearer token looked at; longer ones are malformed.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Bounds of a token's decoded header and claims, checked before any
/// parser (ours or the JWT library's) reads them (see docs/SECURITY.md,
/// "Input bounds"). Headers are flat; Cognito claims hold lists
/// (`aud`, `cognito:groups`), so depth 2, and a few dozen members.
pub const TOKEN_PART_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: MAX_TOKEN_LEN,
    max_depth: 4,
    max_elements: 256,
};

/// A failed token check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm not accepted")]
    Algorithm,
    #[error("invalid token signature")]
    Signature,
    #[error("token expired")]
    Expired,
    /// `nbf` later than now (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` later than now (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("wrong token issuer")]
    Issuer,
    #[error("wrong token audience")]
    Audience,
    #[error("not an access token")]
    TokenUse,
    #[error("token signing key unknown")]
    UnknownKey,
    #[error("token revoked")]
    Revoked,
}

impl Rejection {
    /// Maps a `jsonwebtoken` failure to the check it reports.
    pub fn from_jwt(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature => Rejection::Signature,
            ErrorKind::ExpiredSignature => Rejection::Expired,
            ErrorKind::ImmatureSignature => Rejection::NotYetValid,
            ErrorKind::InvalidIssuer => Rejection::Issuer,
            ErrorKind::InvalidAudience => Rejection::Audience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Rejection::Algorithm,
            _ => Rejection::Malformed,
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::unauthorized(r.to_string())
    }
}

/// The `alg` of a compact JWS's header, read before any library parsing so
/// `none` and unknown algorithms are reported as such (the library would
/// call them malformed). The header and the claims must both be
/// base64url JSON within [`TOKEN_PART_BOUNDS`]: every verifier calls this
/// first, so no parser reads a token part beyond them.
pub fn header_alg(token: &str) -> Result<String, Rejection> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let mut json_part = || {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts.next().unwrap_or_default())
            .map_err(|_| Rejection::Malformed)?;
        TOKEN_PART_BOUNDS
            .check(&bytes)
            .map_err(|_| Rejection::Malformed)?;
        Ok::<_, Rejection>(bytes)
    };
    let bytes = json_part()?;
    json_part()?;
    #[derive(serde::Deserialize)]
    struct Alg {
        alg: String,
    }
    serde_json::from_slice::<Alg>(&bytes)
        .map(|h| h.alg)
        .map_err(|_| Rejection::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_algorithm_of_any_header() {
        let none = format!("{}.e30.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert_eq!(header_alg(&none).unwrap(), "none");
        assert_eq!(header_alg("a.b"), Err(Rejection::Malformed));
        assert_eq!(header_alg("!!.e30.x"), Err(Rejection::Malformed));
        let long = format!("{none}{}", "x".repeat(MAX_TOKEN_LEN));
        assert_eq!(header_alg(&long), Err(Rejection::Malformed));
    }

    #[test]
    fn header_and_claims_over_their_bounds_are_malformed() {
        let part = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let nested = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        let claims = part(r#"{"sub":"u"}"#);
        let ok = format!("{}.{claims}.sig", part(r#"{"alg":"HS256"}"#));
        assert_eq!(header_alg(&ok).unwrap(), "HS256");
        // Deep nesting in an ignored header member, and in the claims.
        let deep_header = format!(
            "{}.{claims}.sig",
            part(&format!(r#"{{"alg":"HS256","x":{nested}}}"#))
        );
        assert_eq!(header_alg(&deep_header), Err(Rejection::Malformed));
        let deep_claims = format!(
            "{}.{}.sig",
            part(r#"{"alg":"HS256"}"#),
            part(&format!(r#"{{"sub":"u","x":{nested}}}"#))
        );
        assert_eq!(header_alg(&deep_claims), Err(Rejection::Malformed));
        let many = format!(
            "{}.{}.sig",
            part(r#"{"alg":"HS256"}"#),
            part(&format!(r#"{{"sub":"u","x":[{}0]}}"#, "0,".repeat(300)))
        );
        assert_eq!(header_alg(&many), Err(Rejection::Malformed));
    }

    #[test]
    fn messages_say_which_check_failed() {
        let e: ApiError = Rejection::Expired.into();
        assert_eq!((e.status.as_u16(), &*e.code), (401, "unauthorized"));
        assert_eq!(e.message, "token expired");
    }
}
