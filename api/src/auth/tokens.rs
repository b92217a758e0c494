//! Local access tokens: HS256 JWTs this service signs at login and
//! refresh, and verifies on every protected request.
//!
//! Claims: `sub` (user id), `iat`, `exp`, `iss`, `aud`, `jti`, `fid` (the
//! refresh family, so revoking the family stops the token) and
//! `token_use: "access"`. Only the configured algorithm is accepted (no
//! `none`, no algorithm switching). Time claims are checked with
//! [`LEEWAY_SECS`] of clock skew: `exp` must not be past, an `nbf` (we
//! issue none, but a token carrying one is held to it) and `iat` must not
//! be in the future. The key is `config.jwt_secret`, or 32
//! random bytes generated once into `<data_dir>/keys/jwt.key` (mode 0600)
//! so tokens survive restarts.

use super::rejection::{header_alg, Rejection};
use crate::config::ApiConfig;
use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The only algorithm local tokens use.
pub const ALGORITHM: Algorithm = Algorithm::HS256;
/// Shortest accepted `jwt_secret`, in bytes (HS256 wants 256 bits).
pub const MIN_SECRET_LEN: usize = 32;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// `token_use` of access tokens.
pub const ACCESS_USE: &str = "access";
/// Tokens remembered after they verified, at most (see
/// [`AccessTokens::verify`]); when full the memory is emptied.
const REMEMBERED: usize = 10_000;

/// The claims of a local access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    /// Not before (seconds since the epoch); absent in tokens we issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    /// Refresh family id.
    pub fid: String,
    pub token_use: String,
}

/// Signs and verifies local access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Lifetime of an access token, seconds.
    pub ttl_secs: u64,
    /// Tokens that verified, by their exact text, with their claims.
    remembered: dashmap::DashMap<Box<str>, AccessClaims>,
}

/// The signing key could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("jwt_secret must be at least {MIN_SECRET_LEN} bytes")]
    TooShort,
    #[error("jwt key file {0}: {1}")]
    File(String, std::io::Error),
    #[error("jwt key file {0} is not {MIN_SECRET_LEN}+ bytes of base64url")]
    Corrupt(String),
}

impl AccessTokens {
    /// Uses `config.jwt_secret`, else the key file in `data_dir` (created
    /// on first start).
    pub fn new(config: &ApiConfig, data_dir: &Path) -> Result<Self, KeyError> {
        let key = match &config.jwt_secret {
            Some(secret) if secret.expose().len() < MIN_SECRET_LEN => {
                return Err(KeyError::TooShort)
            }
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => load_or_create_key(&data_dir.join("keys").join("jwt.key"))?,
        };
        Ok(Self::from_key(&key, config))
    }

    fn from_key(key: &[u8], config: &ApiConfig) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        AccessTokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_secs: config.access_token_ttl_secs,
            remembered: dashmap::DashMap::new(),
        }
    }

    /// A signed access token for `user_id` in refresh family `family_id`,
    /// valid `ttl_secs` from now.
    pub fn issue(
        &self,
        user_id: &str,
        family_id: &str,
    ) -> Result<Secret, jsonwebtoken::errors::Error> {
        let now = unix_now();
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            nbf: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            fid: family_id.to_owned(),
            token_use: ACCESS_USE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding).map(Secret::new)
    }

    /// Checks algorithm, signature, expiry, `nbf`, `iat`, issuer,
    /// audience and `token_use` (not the family: that needs the store).
    ///
    /// A token that verified is remembered by its exact text (at most
    /// [`REMEMBERED`]): the next request with it skips the HMAC and the
    /// two JSON decodes (2.6 % of the hub's profile at 2,000 orders/s;
    /// docs/BENCHMARKS.md, "Verified tokens remembered"), and only what
    /// depends on the clock ([`check_time`]) is checked again. A token
    /// that differs by one byte is not the remembered one.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, Rejection> {
        if let Some(claims) = self.remembered.get(token) {
            check_time(&claims, unix_now())?;
            return Ok(claims.clone());
        }
        let alg = header_alg(token)?;
        if alg != "HS256" {
            return Err(Rejection::Algorithm);
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| Rejection::from_jwt(e.kind()))?;
        if data.claims.iat > unix_now().saturating_add(LEEWAY_SECS) {
            return Err(Rejection::IssuedInFuture);
        }
        if data.claims.token_use != ACCESS_USE {
            return Err(Rejection::TokenUse);
        }
        if self.remembered.len() >= REMEMBERED {
            self.remembered.clear();
        }
        self.remembered.insert(token.into(), data.claims.clone());
        Ok(data.claims)
    }
}

/// The checks [`AccessTokens::verify`] makes of a remembered token's
/// claims, at `now`: those that depend on the clock, as a fresh token
/// gets them: `exp` and `nbf` as `jsonwebtoken` checks them (expired when
/// `exp` is more than [`LEEWAY_SECS`] past, not yet valid when `nbf` is
/// more than that ahead), and `iat` not more than that ahead (the tests
/// compare the two).
fn check_time(claims: &AccessClaims, now: u64) -> Result<(), Rejection> {
    if claims.exp < now.saturating_sub(LEEWAY_SECS) {
        return Err(Rejection::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(Rejection::NotYetValid);
    }
    if claims.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(Rejection::IssuedInFuture);
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Reads the key file, or creates it with 32 random bytes (mode 0600,
/// first writer wins: see [`crate::owner_only::create_once`]).
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let shown = path.display().to_string();
    let io = |e| KeyError::File(shown.clone(), e);
    if let Some(dir) = path.parent() {
        crate::owner_only::dir(dir).map_err(io)?;
    }
    let text = match crate::owner_only::read(path).map_err(io)? {
        Some(text) => text,
        None => {
            let key: [u8; 32] = rand::random();
            crate::owner_only::create_once(path, &URL_SAFE_NO_PAD.encode(key)).map_err(io)?
        }
    };
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() >= MIN_SECRET_LEN)
        .ok_or_else(|| KeyError::Corrupt(shown.clone()))
}

#[cfg(test)]
mod tests;
