//! Sessions: login (password, optional TOTP, throttled), refresh-token
//! rotation with reuse detection, and logout. A session is a refresh
//! family in the store; its access tokens name it, so revoking it ends the
//! session everywhere at once.

use super::password::MAX_PASSWORD_LEN;
use super::{refresh, totp, Auth};
use crate::error::ApiError;
use crate::events::now;
use crate::secret::Secret;
use crate::store::{normalize_email, StoreError, Write};
use axum::http::StatusCode;
use std::net::IpAddr;

/// Attempts of a revocation racing other writers of the family.
const REVOKE_ATTEMPTS: usize = 5;

/// What login and refresh hand out.
pub struct TokenPair {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Seconds the access token is valid.
    pub expires_in: u64,
}

/// A login request.
pub struct LoginAttempt {
    pub email: String,
    pub password: Secret,
    pub totp: Option<String>,
    /// The client's address (per-IP throttling), when known.
    pub ip: Option<IpAddr>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "email or password is wrong",
    )
}

fn invalid_refresh_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
        "refresh token is unknown, expired or revoked",
    )
}

impl Auth {
    /// Checks the credentials (and TOTP when enabled) and starts a session.
    ///
    /// 429 while the login throttle refuses the account from this address
    /// (see [`super::throttle`]: failures of the pair, failures of the
    /// address, successes of the account or of the address), checked
    /// before any hashing; 401 `invalid_credentials` for a wrong password
    /// or unknown email (same body, and the same argon2 work, so the two
    /// cannot be told apart); 401 `mfa_required` when MFA is on and `totp`
    /// is missing, 401 `invalid_totp` when it is wrong or already used
    /// (by a login or by `mfa/verify`); 503 `auth_busy` when the hashing
    /// queue is full. Wrong passwords and codes count as failures; a
    /// success counts towards the success limits and clears the pair's
    /// failures.
    pub async fn login(&self, attempt: LoginAttempt) -> Result<TokenPair, ApiError> {
        self.local_only()?;
        let account = normalize_email(&attempt.email);
        self.throttle_check(&account, attempt.ip).await?;
        let user = if account.len() <= super::password::MAX_EMAIL_LEN {
            self.store.user_by_email(&account).await?
        } else {
            None
        };
        let password = attempt.password.expose();
        let matches = password.chars().count() <= MAX_PASSWORD_LEN
            && self
                .passwords
                .verify(
                    password.to_owned(),
                    user.as_ref()
                        .map(|u| u.password_hash.expose().to_owned())
                        .filter(|h| !h.is_empty()),
                )
                .await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.throttle_failure(&account, attempt.ip).await;
                return Err(invalid_credentials());
            }
        };
        if user.mfa_enabled {
            let code = attempt.totp.as_deref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "mfa_required",
                    "this account needs a totp code",
                )
            })?;
            let step = user.mfa_secret.as_ref().and_then(|seed| {
                totp::matching_step(seed.expose(), code, super::tokens::unix_now())
            });
            let claimed = match step {
                None => false,
                Some(step) => self.claim_totp_step(&user.user_id, step).await,
            };
            if !claimed {
                self.throttle_failure(&account, attempt.ip).await;
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_totp",
                    "totp: wrong, expired or already used code",
                ));
            }
        }
        self.throttle_success(&account, attempt.ip).await;
        self.start_session(&user.user_id).await
    }

    /// Claims a TOTP step on this node and, with Redis, on every node
    /// (Redis down: this node's guard alone).
    pub(super) async fn claim_totp_step(&self, user_id: &str, step: u64) -> bool {
        let here = self.totp_replay.claim(user_id, step);
        let everywhere = match &self.sessions {
            Some(sessions) => match sessions.claim_totp_step(user_id, step).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "totp replay guard: redis unavailable; this node's guard only");
                    true
                }
            },
            None => true,
        };
        here && everywhere
    }

    /// A new refresh family for `user_id` and its first token pair.
    async fn start_session(&self, user_id: &str) -> Result<TokenPair, ApiError> {
        let family_id = uuid::Uuid::new_v4().to_string();
        let minted = refresh::mint(&family_id);
        let family = refresh::new_family(&family_id, user_id, minted.hash, self.refresh_ttl_secs);
        self.store
            .commit(vec![Write::PutRefreshFamily {
                family,
                expected_version: None,
            }])
            .await?;
        self.pair(user_id, &family_id, minted.token)
    }

    fn pair(
        &self,
        user_id: &str,
        family_id: &str,
        refresh_token: Secret,
    ) -> Result<TokenPair, ApiError> {
        Ok(TokenPair {
            access_token: self
                .access
                .issue(user_id, family_id)
                .map_err(ApiError::internal)?,
            refresh_token,
            expires_in: self.access.ttl_secs,
        })
    }

    /// Spends `token` for a new pair. A token that is not the family's
    /// current one (spent before, or lost a race to spend it) revokes the
    /// family: 401 `token_reused`, and its access tokens stop working.
    /// Unknown, malformed, expired or revoked: 401 `invalid_refresh_token`.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, ApiError> {
        self.local_only()?;
        let family_id = refresh::family_of(token).ok_or_else(invalid_refresh_token)?;
        let family = self
            .store
            .refresh_family(family_id)
            .await?
            .filter(|f| refresh::is_live(f, now()))
            .ok_or_else(invalid_refresh_token)?;
        let reused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_reused",
                "refresh token was already used; the session is revoked",
            )
        };
        if !refresh::is_current(&family, token) {
            tracing::warn!(family_id, user_id = %family.user_id, "refresh token reuse; revoking family");
            self.revoke_family(family_id).await?;
            return Err(reused());
        }
        let minted = refresh::mint(family_id);
        let next = refresh::rotated(&family, minted.hash, self.refresh_ttl_secs);
        let write = Write::PutRefreshFamily {
            family: next,
            expected_version: Some(family.version),
        };
        match self.store.commit(vec![write]).await {
            Ok(()) => self.pair(&family.user_id, family_id, minted.token),
            Err(StoreError::Conflict(_)) => {
                tracing::warn!(
                    family_id,
                    "concurrent refresh with one token; revoking family"
                );
                self.revoke_family(family_id).await?;
                Err(reused())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends the session of `family_id` (logout).
    pub async fn logout(&self, family_id: Option<&str>) -> Result<(), ApiError> {
        self.local_only()?;
        let family_id = family_id.ok_or_else(|| ApiError::unauthorized("token has no session"))?;
        self.revoke_family(family_id).await
    }

    /// Marks the family revoked in the store, retrying while other writers
    /// race (a missing or already revoked family is done), then tells every
    /// node through Redis when configured, or drops it from this node's
    /// cache.
    async fn revoke_family(&self, family_id: &str) -> Result<(), ApiError> {
        let revoked = self.revoke_in_store(family_id).await;
        // Even after an error: the store may hold the revocation.
        if let Some(local) = &self.local_families {
            local.revoked(family_id);
        }
        revoked?;
        if let Some(sessions) = &self.sessions {
            if let Err(e) = sessions.put_revoked(family_id).await {
                // Other nodes may trust a cached `live` for up to LIVE_TTL.
                tracing::warn!(error = %e, family_id, "session revoked in the store but not in redis");
            }
        }
        Ok(())
    }

    async fn revoke_in_store(&self, family_id: &str) -> Result<(), ApiError> {
        for _ in 0..REVOKE_ATTEMPTS {
            let Some(family) = self.store.refresh_family(family_id).await? else {
                return Ok(());
            };
            if family.revoked {
                return Ok(());
            }
            let write = Write::PutRefreshFamily {
                family: refresh::revoked(&family),
                expected_version: Some(family.version),
            };
            match self.store.commit(vec![write]).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::internal(format!(
            "could not revoke refresh family {family_id}"
        )))
    }
}
