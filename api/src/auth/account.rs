//! Account operations on the user record: registration, TOTP setup and
//! confirmation, and the minimal record a Cognito user gets on first use.

use super::cognito::CognitoClaims;
use super::password::{check_password_policy, normalize_valid_email};
use super::{totp, Auth};
use crate::error::ApiError;
use crate::events::{now, Event, EventType};
use crate::secret::Secret;
use crate::store::{Conflict, KycStatus, StoreError, User, Write};
use serde_json::json;

/// Attempts of a read-modify-write on a user before giving up (409).
const UPDATE_ATTEMPTS: usize = 3;

/// What `mfa/setup` hands the client once.
pub struct MfaSetup {
    /// Base32 seed.
    pub secret: Secret,
    pub otpauth_url: Secret,
}

impl Auth {
    /// Creates a user with an argon2id hash of `password` and emits
    /// `user.registered` in the same commit (which wakes the outbox relay);
    /// returns the new user id. 422 `invalid_email` / `weak_password`, 409
    /// `email_taken` (decided by the store's unique email, so concurrent
    /// registrations cannot both win).
    pub async fn register(&self, email: &str, password: Secret) -> Result<String, ApiError> {
        self.local_only()?;
        let email = normalize_valid_email(email)
            .map_err(|e| ApiError::unprocessable("invalid_email", format!("email: {e}")))?;
        check_password_policy(password.expose())
            .map_err(|e| ApiError::unprocessable("weak_password", format!("password: {e}")))?;
        let hash = self.passwords.hash(password.expose().to_owned()).await?;
        let user = new_user(uuid::Uuid::new_v4().to_string(), email, Secret::new(hash));
        let event = Event::new(
            EventType::UserRegistered,
            Some(&user.user_id),
            json!({"user_id": user.user_id, "email": user.email}),
        );
        let user_id = user.user_id.clone();
        match self
            .store
            .commit(vec![Write::CreateUser(user), Write::Emit(event)])
            .await
        {
            Ok(()) => Ok(user_id),
            Err(StoreError::Conflict(Conflict::EmailTaken)) => Err(ApiError::conflict(
                "email_taken",
                "an account with this email exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new TOTP seed on the user (not yet enabled) and returns it
    /// with its `otpauth://` URL. Calling it again replaces the pending
    /// seed; once MFA is enabled: 409 `mfa_already_enabled`.
    pub async fn mfa_setup(&self, user_id: &str) -> Result<MfaSetup, ApiError> {
        self.local_only()?;
        let seed = totp::new_seed();
        let user = self
            .update_user(user_id, |user| {
                if user.mfa_enabled {
                    return Err(ApiError::conflict(
                        "mfa_already_enabled",
                        "two-factor authentication is already enabled",
                    ));
                }
                user.mfa_secret = Some(Secret::new(seed.clone()));
                Ok(())
            })
            .await?;
        Ok(MfaSetup {
            otpauth_url: Secret::new(totp::otpauth_url(&seed, &user.email)),
            secret: Secret::new(seed),
        })
    }

    /// Enables MFA when `code` is the current code of the pending seed
    /// (idempotent once enabled). The code's time step is claimed in the
    /// login replay guard, so the same code cannot then sign in. 422
    /// `invalid_totp` for a wrong code (or, before MFA is enabled, one
    /// already used), 409 `mfa_not_set_up` without a seed; wrong codes
    /// count towards the login throttle of the key `mfa:<user_id>` (429
    /// once exhausted).
    pub async fn mfa_verify(&self, user_id: &str, code: &str) -> Result<(), ApiError> {
        self.local_only()?;
        let throttle_key = format!("mfa:{user_id}");
        self.throttle_check(&throttle_key, None).await?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
        let seed = user.mfa_secret.as_ref().ok_or_else(|| {
            ApiError::conflict("mfa_not_set_up", "call POST /auth/mfa/setup first")
        })?;
        let Some(step) = totp::matching_step(seed.expose(), code, super::tokens::unix_now()) else {
            self.throttle_failure(&throttle_key, None).await;
            return Err(ApiError::unprocessable(
                "invalid_totp",
                "code: not the current code of the authenticator",
            ));
        };
        // The code is spent here as at login (same replay guard, on every
        // node), so it cannot sign in afterwards.
        let fresh = self.claim_totp_step(user_id, step).await;
        if user.mfa_enabled {
            return Ok(());
        }
        if !fresh {
            return Err(ApiError::unprocessable(
                "invalid_totp",
                "code: already used; wait for the next code",
            ));
        }
        let pending = seed.clone();
        self.update_user(user_id, |user| {
            if user.mfa_secret.as_ref() != Some(&pending) {
                return Err(ApiError::conflict(
                    "mfa_setup_changed",
                    "the seed was replaced meanwhile; verify a code of the new one",
                ));
            }
            user.mfa_enabled = true;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Reads, changes with `change` and writes back the user, retrying on
    /// a concurrent update. 401 if the user does not exist.
    async fn update_user(
        &self,
        user_id: &str,
        change: impl Fn(&mut User) -> Result<(), ApiError>,
    ) -> Result<User, ApiError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let stored = self
                .store
                .user(user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
            let mut user = stored.clone();
            change(&mut user)?;
            user.version = stored.version + 1;
            user.updated_at = now();
            let write = Write::UpdateUser {
                user: user.clone(),
                expected_version: stored.version,
            };
            match self.store.commit(vec![write]).await {
                Ok(()) => return Ok(user),
                Err(StoreError::Conflict(Conflict::VersionMismatch(_))) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "the account changed concurrently; retry",
        ))
    }

    /// Makes sure a Cognito user has a user record: on first use, a
    /// minimal one (no local password; email from the token's `email` claim
    /// when it is a valid unused address, else `<sub>@cognito.invalid`)
    /// and a `user.registered` event (its commit wakes the outbox relay).
    /// Racing first requests are fine: the loser's conflict means the
    /// record exists.
    pub(super) async fn ensure_cognito_user(&self, claims: &CognitoClaims) -> Result<(), ApiError> {
        if self.cognito_users.contains(&claims.sub) {
            return Ok(());
        }
        if self.store.user(&claims.sub).await?.is_none() {
            let placeholder = format!("{}@cognito.invalid", claims.sub.to_lowercase());
            let claimed = claims
                .email
                .as_deref()
                .and_then(|e| normalize_valid_email(e).ok());
            for email in claimed.into_iter().chain([placeholder]) {
                match self.create_cognito_user(&claims.sub, email).await {
                    Ok(()) | Err(StoreError::Conflict(Conflict::AlreadyExists(_))) => break,
                    Err(StoreError::Conflict(Conflict::EmailTaken)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Email conflicts with a racing request of the same user end
            // here too; only a record that really exists is remembered.
            if self.store.user(&claims.sub).await?.is_none() {
                return Err(ApiError::conflict(
                    "email_taken",
                    "another account uses this token's email",
                ));
            }
        }
        self.cognito_users.insert(claims.sub.clone());
        Ok(())
    }

    async fn create_cognito_user(&self, sub: &str, email: String) -> Result<(), StoreError> {
        let event = Event::new(
            EventType::UserRegistered,
            Some(sub),
            json!({"user_id": sub, "email": email, "source": "cognito"}),
        );
        let user = new_user(sub.to_owned(), email, Secret::default());
        self.store
            .commit(vec![Write::CreateUser(user), Write::Emit(event)])
            .await
    }
}

/// A new account's record: no profile, KYC `NONE`, MFA off, version 1.
fn new_user(user_id: String, email: String, password_hash: Secret) -> User {
    let at = now();
    User {
        user_id,
        email,
        password_hash,
        first_name: None,
        last_name: None,
        phone: None,
        country: None,
        kyc_status: KycStatus::None,
        kyc_updated_at: at,
        mfa_secret: None,
        mfa_enabled: false,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}
