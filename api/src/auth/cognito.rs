//! Production mode (`auth_mode = "cognito"`): bearer tokens are AWS
//! Cognito access tokens, RS256 JWTs verified against the user pool's JWKS.
//!
//! Checks: algorithm RS256 only, a `kid` the JWKS has, signature, `exp`,
//! `iss` = the pool, `client_id` (or `aud`) = the app client, and
//! `token_use = "access"` (ID tokens are refused). The JWKS is fetched on
//! first use and cached `jwks_cache_secs`; an unknown `kid` refetches it
//! once (at most once per [`MIN_REFETCH`], so junk tokens cannot hammer
//! the pool). When a refetch fails, the cached keys keep serving; with no
//! keys at all the request is 503 `auth_unavailable`.

use super::rejection::{header_alg, Rejection};
use super::tokens::LEEWAY_SECS;
use crate::config::CognitoConfig;
use inbound::JsonBounds;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Shortest time between two JWKS fetches caused by unknown `kid`s.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Bounds of the JWKS document, checked while it is read (size) and
/// before it is parsed (see docs/SECURITY.md, "Input bounds"). A pool has
/// a handful of keys, each a flat object (`x5c` a list: depth 3).
pub const JWKS_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 256 * 1024,
    max_depth: 4,
    max_elements: 4096,
};

/// Why a Cognito token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CognitoError {
    /// The token failed a check (401).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The keys could not be fetched and none are cached (503).
    #[error("JWKS unavailable: {0}")]
    KeysUnavailable(String),
}

/// The claims used from a Cognito access token.
#[derive(Debug, Clone, Deserialize)]
pub struct CognitoClaims {
    /// The user's id: our `user_id`.
    pub sub: String,
    pub token_use: String,
    /// The app client (access tokens).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The app client (ID tokens; a string or a list).
    #[serde(default)]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub email: Option<String>,
}

/// Verifies Cognito access tokens; holds the cached JWKS.
pub struct CognitoVerifier {
    http: reqwest::Client,
    config: CognitoConfig,
    validation: Validation,
    keys: RwLock<KeyCache>,
    /// One fetch at a time; waiters reuse its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

impl CognitoVerifier {
    /// A verifier for `config`; JWKS requests time out after `timeout`.
    pub fn new(config: &CognitoConfig, timeout: Duration) -> Result<Self, reqwest::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&config.issuer]);
        validation.validate_aud = false; // client_id is checked by hand
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(CognitoVerifier {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            config: config.clone(),
            validation,
            keys: RwLock::new(KeyCache::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The token's claims when every check passes.
    pub async fn verify(&self, token: &str) -> Result<CognitoClaims, CognitoError> {
        if header_alg(token)? != "RS256" {
            return Err(Rejection::Algorithm.into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;
        let key = self.key(&kid).await?;
        let claims = jsonwebtoken::decode::<CognitoClaims>(token, &key, &self.validation)
            .map_err(|e| Rejection::from_jwt(e.kind()))?
            .claims;
        if claims.token_use != "access" {
            return Err(Rejection::TokenUse.into());
        }
        if !self.is_our_client(&claims) {
            return Err(Rejection::Audience.into());
        }
        Ok(claims)
    }

    fn is_our_client(&self, claims: &CognitoClaims) -> bool {
        let want = self.config.client_id.as_str();
        let by_client_id = claims.client_id.as_deref() == Some(want);
        let by_aud = match &claims.aud {
            Some(serde_json::Value::String(aud)) => aud == want,
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a == want),
            _ => false,
        };
        !want.is_empty() && (by_client_id || by_aud)
    }

    /// The key `kid`, from the cache while fresh, else after a fetch.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, CognitoError> {
        let ttl = Duration::from_secs(self.config.jwks_cache_secs);
        let lookup = |cache: &KeyCache| cache.keys.get(kid).cloned();
        let fresh = |cache: &KeyCache| cache.fetched_at.is_some_and(|t| t.elapsed() < ttl);
        let may_refetch =
            |cache: &KeyCache| cache.fetched_at.is_none_or(|t| t.elapsed() >= MIN_REFETCH);
        {
            let cache = self.keys.read();
            match lookup(&cache) {
                Some(key) if fresh(&cache) => return Ok(key),
                None if fresh(&cache) && !may_refetch(&cache) => {
                    return Err(Rejection::UnknownKey.into())
                }
                _ => {}
            }
        }
        let started = Instant::now();
        let _one_at_a_time = self.fetching.lock().await;
        // Someone else may have fetched while we waited.
        let fetched_meanwhile = self.keys.read().fetched_at.is_some_and(|t| t >= started);
        if !fetched_meanwhile {
            match self.fetch().await {
                Ok(keys) => {
                    *self.keys.write() = KeyCache {
                        keys,
                        fetched_at: Some(Instant::now()),
                    };
                }
                Err(why) => {
                    tracing::warn!(error = %why, "Cognito JWKS fetch failed");
                    let cache = self.keys.read();
                    if cache.keys.is_empty() {
                        return Err(CognitoError::KeysUnavailable(why));
                    }
                }
            }
        }
        lookup(&self.keys.read()).ok_or(Rejection::UnknownKey.into())
    }

    /// Downloads and parses the JWKS: the RSA signing keys by `kid`. The
    /// body is read in chunks and dropped as soon as it is over
    /// [`JWKS_BOUNDS`], whatever its `Content-Length` says.
    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let max = JWKS_BOUNDS.max_bytes;
        let too_large = || format!("JWKS over {max} bytes");
        let mut response = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// The RSA signature keys of a JWKS document, by `kid`; other keys are
/// skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    #[derive(Deserialize)]
    struct Jwk {
        kty: String,
        kid: Option<String>,
        #[serde(rename = "use")]
        usage: Option<String>,
        alg: Option<String>,
        n: Option<String>,
        e: Option<String>,
    }
    JWKS_BOUNDS
        .check(body)
        .map_err(|e| format!("JWKS refused: {e}"))?;
    let jwks: Jwks = serde_json::from_slice(body).map_err(|e| format!("bad JWKS: {e}"))?;
    let keys = jwks
        .keys
        .into_iter()
        .filter(|k| k.kty == "RSA")
        .filter(|k| k.usage.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
        .filter_map(|k| {
            let key = DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
            Some((k.kid?, Arc::new(key)))
        })
        .collect();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_keeps_rsa_signature_keys_only() {
        let body = br#"{"keys":[
            {"kty":"RSA","kid":"a","use":"sig","alg":"RS256","n":"sXch","e":"AQAB"},
            {"kty":"RSA","kid":"b","use":"enc","n":"sXch","e":"AQAB"},
            {"kty":"EC","kid":"c","crv":"P-256","x":"x","y":"y"},
            {"kty":"RSA","use":"sig","n":"sXch","e":"AQAB"},
            {"kty":"RSA","kid":"d","alg":"RS512","n":"sXch","e":"AQAB"}
        ]}"#;
        let keys = parse_jwks(body).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(parse_jwks(b"{}").is_err());
    }

    #[test]
    fn jwks_over_its_bounds_is_refused_before_parsing() {
        let deep = format!(
            r#"{{"keys":[],"x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let err = parse_jwks(deep.as_bytes()).err().unwrap();
        assert!(err.contains("nests deeper than 4"), "{err}");
        let many = format!(r#"{{"keys":[{}{{}}]}}"#, "{},".repeat(5000));
        let err = parse_jwks(many.as_bytes()).err().unwrap();
        assert!(err.contains("more than 4096 elements"), "{err}");
    }

    /// A JWKS endpoint that never stops sending (no `Content-Length`).
    async fn endless_jwks() -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(b"1\r\n[\r\n").await;
            let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        });
        format!("http://{addr}/jwks.json")
    }

    #[tokio::test]
    async fn jwks_fetch_stops_reading_at_its_size_bound() {
        let config = CognitoConfig {
            jwks_url: endless_jwks().await,
            ..CognitoConfig::default()
        };
        let v = CognitoVerifier::new(&config, Duration::from_secs(30)).unwrap();
        let started = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(20), v.fetch())
            .await
            .expect("the fetch gave up at the bound, not at the timeout")
            .err()
            .unwrap();
        assert_eq!(err, format!("JWKS over {} bytes", JWKS_BOUNDS.max_bytes));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn verifier(client_id: &str) -> CognitoVerifier {
        let config = CognitoConfig {
            client_id: client_id.into(),
            ..CognitoConfig::default()
        };
        CognitoVerifier::new(&config, Duration::from_secs(1)).unwrap()
    }

    fn claims(client_id: Option<&str>, aud: Option<serde_json::Value>) -> CognitoClaims {
        CognitoClaims {
            sub: "s".into(),
            token_use: "access".into(),
            client_id: client_id.map(str::to_owned),
            aud,
            email: None,
        }
    }

    #[test]
    fn client_is_matched_by_client_id_or_aud() {
        let v = verifier("app");
        assert!(v.is_our_client(&claims(Some("app"), None)));
        assert!(v.is_our_client(&claims(None, Some("app".into()))));
        assert!(v.is_our_client(&claims(None, Some(serde_json::json!(["x", "app"])))));
        assert!(!v.is_our_client(&claims(Some("other"), None)));
        assert!(!v.is_our_client(&claims(None, None)));
        assert!(!verifier("").is_our_client(&claims(Some(""), None)));
    }
}
