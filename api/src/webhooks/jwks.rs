//! A JSON Web Key Set fetched from a provider (Fireblocks' webhooks v2
//! are signed with one of its keys, named by `kid`), cached, and
//! refetched when it is an hour old or a delivery names a key it does not
//! hold: that is how a key rotation is picked up without a restart.
//! Refetches for unknown keys are at most [`REFETCH_BURST`] per
//! [`REFETCH_WINDOW`], so deliveries naming made-up keys cannot turn into
//! a flood of fetches; past that, an unknown key is
//! [`Lookup::Deferred`] (the route answers 500 and the provider delivers
//! again later, when a fetch is allowed), never refused unchecked, so a
//! genuine notice under a new key is not lost to the limit. One fetch at
//! a time. The answer is bounded ([`JWKS_BOUNDS`]) before it is parsed;
//! only RSA signing keys of 2,048 to 4,096 bits are kept (the `rsa`
//! crate's limit). A refresh that fails keeps the last set and is tried
//! again after [`REFETCH_WINDOW`], not on every delivery.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use inbound::JsonBounds;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Bounds of a key set, checked before it is parsed.
pub const JWKS_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: 64 * 1024,
    max_depth: 8,
    max_elements: 1_000,
};
/// How long a fetched set is used before it is fetched again (Fireblocks
/// serves it with `max-age=3600`).
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// Most fetches caused by unknown `kid`s within [`REFETCH_WINDOW`].
pub const REFETCH_BURST: usize = 2;
pub const REFETCH_WINDOW: Duration = Duration::from_secs(10);

/// What the set says about a `kid`.
#[derive(Debug)]
pub enum Lookup {
    Key(RsaPublicKey),
    /// Not in the set, fetched again for it (or fresh).
    Unknown,
    /// Not in the cached set, and no fetch is allowed now.
    Deferred,
}

/// One key of a set, as RFC 7517 spells it.
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

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// The RSA signing keys of a key set, by `kid`. Keys of another type, use
/// or algorithm, and unreadable ones, are left out.
pub fn parse(raw: &[u8], alg: &str) -> Result<HashMap<String, RsaPublicKey>, String> {
    JWKS_BOUNDS
        .check(raw)
        .map_err(|e| format!("key set refused: {e}"))?;
    let set: JwkSet =
        serde_json::from_slice(raw).map_err(|e| format!("key set not readable: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in set.keys {
        let usable = jwk.kty == "RSA"
            && jwk.usage.as_deref().is_none_or(|u| u == "sig")
            && jwk.alg.as_deref().is_none_or(|a| a == alg);
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if !usable || kid.is_empty() || kid.len() > 256 {
            continue;
        }
        let number = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .ok()
                .map(|b| BigUint::from_bytes_be(&b))
        };
        let (Some(n), Some(e)) = (number(&n), number(&e)) else {
            continue;
        };
        match RsaPublicKey::new(n, e) {
            Ok(key) if (2048..=4096).contains(&(key.size() * 8)) => {
                keys.insert(kid, key);
            }
            _ => continue,
        }
    }
    Ok(keys)
}

struct Cache {
    keys: HashMap<String, RsaPublicKey>,
    /// When the set was last fetched (`None`: never).
    fetched: Option<Instant>,
    /// When to fetch it again regardless of the `kid` asked for.
    refresh_at: Option<Instant>,
    /// When recent fetches for unknown keys happened.
    refetches: std::collections::VecDeque<Instant>,
}

/// A provider's key set at `url`, cached.
pub struct Jwks {
    url: String,
    alg: &'static str,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
}

impl Jwks {
    /// The set at `url`, whose keys sign with `alg` (e.g. `RS512`).
    pub fn new(url: &str, alg: &'static str, timeout: Duration) -> Result<Jwks, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Jwks {
            url: url.to_owned(),
            alg,
            http,
            cache: tokio::sync::Mutex::new(Cache {
                keys: HashMap::new(),
                fetched: None,
                refresh_at: None,
                refetches: Default::default(),
            }),
        })
    }

    /// The key named `kid` (see [`Lookup`]); `Err` when the set could
    /// never be fetched (a stale set is used while the provider's is
    /// unreachable).
    pub async fn key(&self, kid: &str) -> Result<Lookup, String> {
        let mut cache = self.cache.lock().await;
        let stale = cache.refresh_at.is_none_or(|at| Instant::now() >= at);
        let mut refetch = stale;
        if !stale && !cache.keys.contains_key(kid) {
            let now = Instant::now();
            while cache
                .refetches
                .front()
                .is_some_and(|at| now.duration_since(*at) >= REFETCH_WINDOW)
            {
                cache.refetches.pop_front();
            }
            if cache.refetches.len() >= REFETCH_BURST {
                return Ok(Lookup::Deferred);
            }
            cache.refetches.push_back(now);
            refetch = true;
        }
        if refetch {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                    cache.refresh_at = Some(Instant::now() + MAX_AGE);
                }
                Err(e) if cache.fetched.is_some() => {
                    tracing::warn!(url = %self.url, error = %e, "key set not refreshed; using the last one");
                    // Ask again in a window, not on every delivery.
                    cache.refresh_at = Some(Instant::now() + REFETCH_WINDOW);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(match cache.keys.get(kid) {
            Some(key) => Lookup::Key(key.clone()),
            None => Lookup::Unknown,
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, RsaPublicKey>, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("fetching {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!(
                "fetching {}: status {}",
                self.url,
                response.status()
            ));
        }
        let raw = crate::providers::answer::read_raw(response, JWKS_BOUNDS.max_bytes).await?;
        parse(&raw, self.alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_signing_keys_of_the_algorithm_and_a_sane_size_are_kept() {
        // A 2,048-bit modulus: 256 bytes with the top bit set.
        let mut n = vec![0xC5u8; 256];
        n[255] = 0x01;
        let n = URL_SAFE_NO_PAD.encode(&n);
        let small = URL_SAFE_NO_PAD.encode([0xC5u8; 64]);
        let set = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "good", "use": "sig", "alg": "RS512", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "no-alg", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "other-alg", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "small", "n": small, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "bad-b64", "n": "***", "e": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
        ]});
        let keys = parse(set.to_string().as_bytes(), "RS512").unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["good", "no-alg"]);
        assert!(parse(b"[]", "RS512").is_err());
        let deep = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert!(parse(deep.as_bytes(), "RS512")
            .unwrap_err()
            .starts_with("key set refused"));
    }
}
