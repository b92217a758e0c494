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
    pub fn verify(&self, token: &str) -> Result<AccessClaims, Rejection> {
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
        Ok(data.claims)
    }
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
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::from_key(&[7u8; 32], &ApiConfig::default())
    }

    #[test]
    fn issued_tokens_verify() {
        let t = tokens();
        let token = t.issue("u1", "f1").unwrap();
        let claims = t.verify(token.expose()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.fid.as_str()), ("u1", "f1"));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.token_use, "access");
    }

    #[test]
    fn another_key_is_a_bad_signature() {
        let token = tokens().issue("u1", "f1").unwrap();
        let other = AccessTokens::from_key(&[8u8; 32], &ApiConfig::default());
        assert_eq!(other.verify(token.expose()), Err(Rejection::Signature));
    }

    #[test]
    fn wrong_issuer_and_audience_are_named() {
        let token = tokens().issue("u1", "f1").unwrap();
        let config = ApiConfig {
            jwt_issuer: "other".into(),
            ..ApiConfig::default()
        };
        let t = AccessTokens::from_key(&[7u8; 32], &config);
        assert_eq!(t.verify(token.expose()), Err(Rejection::Issuer));
        let config = ApiConfig {
            jwt_audience: "other".into(),
            ..ApiConfig::default()
        };
        let t = AccessTokens::from_key(&[7u8; 32], &config);
        assert_eq!(t.verify(token.expose()), Err(Rejection::Audience));
    }

    fn signed(t: &AccessTokens, edit: impl FnOnce(&mut AccessClaims)) -> String {
        let mut claims = t.verify(t.issue("u1", "f1").unwrap().expose()).unwrap();
        edit(&mut claims);
        jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &t.encoding).unwrap()
    }

    #[test]
    fn future_nbf_and_iat_are_refused_beyond_the_leeway() {
        let t = tokens();
        let now = unix_now();
        let day = 24 * 3600;
        let cases = [
            (Some(now + day), now, Err(Rejection::NotYetValid)),
            (Some(now - 60), now, Ok(())),
            (None, now + day, Err(Rejection::IssuedInFuture)),
            (None, now + 1, Ok(())),
        ];
        for (nbf, iat, want) in cases {
            let token = signed(&t, |c| {
                c.exp = now + day + 900;
                c.nbf = nbf;
                c.iat = iat;
            });
            assert_eq!(t.verify(&token).map(drop), want, "nbf {nbf:?} iat {iat}");
        }
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("jwt.key");
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn short_configured_secret_is_refused() {
        let config = ApiConfig {
            jwt_secret: Some(Secret::new("short")),
            ..ApiConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            AccessTokens::new(&config, dir.path()),
            Err(KeyError::TooShort)
        ));
    }
}
