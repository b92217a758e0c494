//! Authentication (docs/API.md "Authentication"): registration, login with optional TOTP,
//! rotating refresh tokens with reuse detection, logout, and the bearer
//! extractor [`AuthUser`] every protected route uses.
//!
//! Two modes (`config.auth_mode`):
//! - `local` (default): this service issues HS256 access tokens
//!   ([`tokens`]) tied to a refresh family ([`refresh`]) in the store;
//!   revoking the family (logout, refresh-token reuse) stops its access
//!   tokens at once, because every verification reads the family (from
//!   Redis when configured, shared by every node: [`crate::cluster::sessions`]).
//! - `cognito`: access tokens come from AWS Cognito and are verified
//!   against the pool's JWKS ([`cognito`]); the local sign-in routes answer
//!   403 `local_auth_disabled`. A user record is created on a token's first
//!   use so the `/users` routes work.
//!
//! Files: [`password`] (policies), [`hash_pool`] (argon2id on a fixed
//! pool of threads and buffers: the memory budget), [`tokens`],
//! [`refresh`], [`totp`], [`throttle`] (the login throttle's policy and
//! in-process counts), `login_guard` (the throttle applied, with Redis),
//! [`rejection`] (why a token was refused), `account` (register, MFA,
//! Cognito users), `session` (login, refresh, logout), `routes` (the
//! handlers).

mod account;
pub mod cognito;
mod families;
pub mod hash_pool;
mod login_guard;
pub mod password;
pub mod refresh;
pub mod rejection;
mod routes;
pub(crate) use routes::{LoginRequest, MfaVerifyRequest, RefreshRequest, RegisterRequest};
mod session;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use routes::routes;
pub use session::TokenPair;

use crate::cluster::login_counts::LoginCounts;
use crate::cluster::sessions::{CachedFamily, SessionCache};
use crate::cluster::RedisLink;
use crate::config::{ApiConfig, AuthMode, StoreKind};
use crate::error::ApiError;
use crate::store::Store;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use cognito::{CognitoError, CognitoVerifier};
use dashmap::DashSet;
use password::Passwords;
use rejection::Rejection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use throttle::{LocalCounts, ThrottlePolicy};
use tokens::AccessTokens;
use totp::ReplayGuard;

/// Issues and verifies tokens; owns the login throttle and TOTP replay
/// guard (in-process state).
pub struct Auth {
    store: Arc<dyn Store>,
    access: AccessTokens,
    refresh_ttl_secs: u64,
    passwords: Passwords,
    throttle_policy: ThrottlePolicy,
    /// The login throttle's counts on this node.
    throttle: LocalCounts,
    /// The login throttle's counts in Redis, when configured.
    login_counts: Option<LoginCounts>,
    totp_replay: ReplayGuard,
    /// Set in Cognito mode.
    cognito: Option<CognitoVerifier>,
    /// Cognito users known to have a user record (skips a store read).
    cognito_users: DashSet<String>,
    /// Family state shared through Redis, when configured.
    sessions: Option<SessionCache>,
    /// Family state cached in process: with the embedded store and no
    /// Redis, where this node is the only one.
    local_families: Option<families::LocalFamilies>,
}

impl Auth {
    /// Loads or creates the signing key (`<data_dir>/keys/jwt.key` unless
    /// `jwt_secret` is set), prepares the password hasher and, in Cognito
    /// mode, the JWKS client. Fails on a `jwt_secret` under 32 bytes, an
    /// unreadable key file, `argon2_threads` outside 1 to 64 or a
    /// login success limit of 0.
    pub async fn new(
        config: &ApiConfig,
        data_dir: &Path,
        store: Arc<dyn Store>,
        redis: Option<Arc<RedisLink>>,
    ) -> anyhow::Result<Self> {
        check_limits(config)?;
        let cognito = match config.auth_mode {
            AuthMode::Local => None,
            AuthMode::Cognito => Some(CognitoVerifier::new(
                &config.cognito,
                Duration::from_millis(config.upstream_timeout_ms.max(1)),
            )?),
        };
        Ok(Auth {
            store,
            access: AccessTokens::new(config, data_dir)?,
            refresh_ttl_secs: config.refresh_token_ttl_secs,
            passwords: Passwords::new(config.argon2_threads).await?,
            throttle_policy: ThrottlePolicy::new(config),
            throttle: LocalCounts::default(),
            login_counts: redis.clone().map(LoginCounts::new),
            totp_replay: ReplayGuard::default(),
            cognito,
            cognito_users: DashSet::new(),
            local_families: (redis.is_none() && config.store == StoreKind::Embedded)
                .then(families::LocalFamilies::default),
            sessions: redis.map(|link| {
                SessionCache::new(link, Duration::from_secs(config.access_token_ttl_secs))
            }),
        })
    }

    /// Verifies an access token and names its user.
    ///
    /// Local mode: algorithm (HS256 only), signature, expiry, issuer,
    /// audience, `token_use`, and that its refresh family exists, belongs
    /// to the user and is neither revoked nor expired (one store read).
    /// Cognito mode: see [`cognito`]; creates the user record on first use.
    /// Every refusal is 401 `unauthorized` saying which check failed.
    pub async fn verify_access(&self, token: &str) -> Result<AuthUser, ApiError> {
        let signed = match &self.cognito {
            Some(cognito) => Signed::Cognito(cognito.verify(token).await.map_err(|e| match e {
                CognitoError::Rejected(r) => ApiError::from(r),
                CognitoError::KeysUnavailable(_) => {
                    ApiError::unavailable("auth_unavailable", "token keys cannot be fetched", 5)
                }
            })?),
            None => Signed::Local(self.access.verify(token)?),
        };
        self.admit(signed).await
    }

    /// The checks of [`Auth::verify_access`] that come after the
    /// signature's: the refresh family's (local mode), the user record's
    /// (Cognito mode).
    async fn admit(&self, signed: Signed) -> Result<AuthUser, ApiError> {
        match signed {
            Signed::Cognito(claims) => {
                self.ensure_cognito_user(&claims).await?;
                Ok(AuthUser {
                    user_id: claims.sub,
                    family_id: None,
                })
            }
            Signed::Local(claims) => {
                if self.family_is_live(&claims.fid, &claims.sub).await? {
                    Ok(AuthUser {
                        user_id: claims.sub,
                        family_id: Some(claims.fid),
                    })
                } else {
                    Err(Rejection::Revoked.into())
                }
            }
        }
    }

    /// Whether `family_id` belongs to `user_id` and is neither revoked nor
    /// expired: from Redis when it knows, else from the store (and then
    /// cached in Redis).
    async fn family_is_live(&self, family_id: &str, user_id: &str) -> Result<bool, ApiError> {
        let now = crate::events::now();
        if let Some(local) = &self.local_families {
            match local.get(family_id) {
                Some(live) if live.expires_at > now => return Ok(live.user_id == user_id),
                _ => {}
            }
        }
        let ticket = self.local_families.as_ref().map(|l| l.ticket());
        if let Some(sessions) = &self.sessions {
            match sessions.get(family_id).await {
                Some(CachedFamily::Revoked) => return Ok(false),
                Some(CachedFamily::Live {
                    user_id: owner,
                    expires_at,
                }) if expires_at > now => return Ok(owner == user_id),
                _ => {}
            }
        }
        let Some(family) = self.store.refresh_family(family_id).await? else {
            return Ok(false);
        };
        let live = refresh::is_live(&family, now);
        if live {
            if let Some(sessions) = &self.sessions {
                sessions.put_live(&family).await;
            }
            if let (Some(local), Some(ticket)) = (&self.local_families, ticket) {
                local.put_live(&family, ticket);
            }
        }
        Ok(live && family.user_id == user_id)
    }

    /// A token's verified claims, checked without the store (signature,
    /// expiry, issuer, audience; not revocation): cheap enough
    /// for the rate limiter to count requests per user, so made-up tokens
    /// cannot buy fresh allowances. In Cognito mode the Cognito checks
    /// (with the cached keys; a key not cached is fetched as for
    /// [`Auth::verify_access`]). `None` for any token that does not
    /// verify. Its subject is the user id [`Auth::verify_access`] answers.
    pub(crate) async fn signed(&self, token: &str) -> Option<Signed> {
        match &self.cognito {
            Some(cognito) => cognito.verify(token).await.ok().map(Signed::Cognito),
            None => self.access.verify(token).ok().map(Signed::Local),
        }
    }

    /// 403 `local_auth_disabled` in Cognito mode (sign-in happens there).
    fn local_only(&self) -> Result<(), ApiError> {
        match self.cognito {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "local_auth_disabled",
                "sign-in is handled by Cognito in this deployment",
            )),
        }
    }
}

/// Refuses `[api]` auth settings outside their documented ranges.
fn check_limits(config: &ApiConfig) -> anyhow::Result<()> {
    if !(1..=hash_pool::MAX_THREADS).contains(&config.argon2_threads) {
        anyhow::bail!(
            "api.argon2_threads = {}: must be 1 to {}",
            config.argon2_threads,
            hash_pool::MAX_THREADS
        );
    }
    for (key, value) in [
        (
            "login_successes_per_account_per_minute",
            config.login_successes_per_account_per_minute,
        ),
        (
            "login_successes_per_address_per_minute",
            config.login_successes_per_address_per_minute,
        ),
    ] {
        if value == 0 {
            anyhow::bail!("api.{key} = 0: must be at least 1");
        }
    }
    Ok(())
}

/// A bearer token whose signature, expiry and claims have been checked
/// (the checks of [`Auth::verify_access`] before the family's or the
/// user record's). The rate limiter, which verifies a request's token to
/// key its allowance, leaves it in the request's extensions so that
/// [`AuthUser`] does not verify the same token again. Crate-private:
/// only a verification makes one.
#[derive(Debug, Clone)]
pub(crate) enum Signed {
    Local(tokens::AccessClaims),
    Cognito(cognito::CognitoClaims),
}

impl Signed {
    /// The token's user.
    pub(crate) fn subject(&self) -> &str {
        match self {
            Signed::Local(claims) => &claims.sub,
            Signed::Cognito(claims) => &claims.sub,
        }
    }
}

/// The authenticated caller of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: String,
    /// Refresh family of the token (local mode), for logout.
    pub family_id: Option<String>,
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Any state the [`Auth`] can be had from (the application's, a
/// feature's) authenticates requests.
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Auth>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Auth>::from_ref(state);
        // The rate limiter verified this request's token already.
        let user = match parts.extensions.remove::<Signed>() {
            Some(signed) => auth.admit(signed).await?,
            None => {
                let token =
                    bearer(parts).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
                auth.verify_access(token).await?
            }
        };
        crate::http::access::record_user(&user.user_id);
        Ok(user)
    }
}
