//! `GET /users/profile` and `PUT /users/profile`: the caller's own profile.
//!
//! Only `first_name`, `last_name`, `phone` and `country` can be set. The
//! request type rejects every other field (400 `unknown_field`), so
//! fields the user does not own (`kyc_status`, `email`, `user_id`, the
//! password hash, MFA settings) can never be assigned through this route.
//! An update is a conditional write on the user's version (retried once
//! against a concurrent writer) committed together with its
//! `user.profile_updated` event.

use super::{load_user, UsersState, USER_CONFLICT_ATTEMPTS};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::{self, Event, EventType, Timestamp};
use crate::http::ApiJson;
use crate::store::{Conflict, KycStatus, Store, StoreError, User, Write};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A user's profile as the API shows it. Unset fields are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub user_id: String,
    /// Normalized (trimmed, lowercase); fixed at registration.
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164 (`+14155550123`).
    pub phone: Option<String>,
    /// ISO 3166-1 alpha-2 (`US`).
    pub country: Option<String>,
    /// Set only by the KYC flow.
    pub kyc_status: KycStatus,
    /// Whether sign-in needs a TOTP code (`POST /auth/mfa/verify` turned
    /// it on).
    pub mfa_enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<&User> for Profile {
    fn from(u: &User) -> Self {
        Profile {
            user_id: u.user_id.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            phone: u.phone.clone(),
            country: u.country.clone(),
            kyc_status: u.kyc_status,
            mfa_enabled: u.mfa_enabled,
            created_at: u.created_at,
        }
    }
}

/// Body of `PUT /users/profile`. A field that is absent (or `null`) is
/// left as it is. Any other field, including `kyc_status`, `email` and
/// `user_id`, is rejected with 400 `unknown_field` and nothing changes.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1 to 100 characters, no control characters (trimmed).
    pub first_name: Option<String>,
    /// 1 to 100 characters, no control characters (trimmed).
    pub last_name: Option<String>,
    /// E.164: `+` and 8 to 15 digits.
    pub phone: Option<String>,
    /// ISO 3166-1 alpha-2 code in uppercase.
    pub country: Option<String>,
}

/// A [`ProfileUpdate`] whose every field passed validation.
struct ValidUpdate {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    country: Option<String>,
}

impl ProfileUpdate {
    /// What `PATCH /users/profile` checks of a body before it reads any
    /// state, for [`crate::http::json::REQUEST_BODIES`].
    pub(crate) fn check_body(bytes: &[u8]) -> ApiResult<()> {
        crate::http::json::decode::<ProfileUpdate>(bytes)?
            .validate()
            .map(drop)
    }

    /// Checks every field before anything is read or written; the first
    /// bad field is the error.
    fn validate(self) -> ApiResult<ValidUpdate> {
        use super::fields;
        Ok(ValidUpdate {
            first_name: self
                .first_name
                .map(|v| fields::name("first_name", &v))
                .transpose()?,
            last_name: self
                .last_name
                .map(|v| fields::name("last_name", &v))
                .transpose()?,
            phone: self.phone.map(|v| fields::phone(&v)).transpose()?,
            country: self.country.map(|v| fields::country(&v)).transpose()?,
        })
    }
}

impl ValidUpdate {
    /// Applies the update to a copy of `user`; returns the names of the
    /// fields whose value changed (empty: nothing to write).
    fn apply_to(&self, user: &mut User) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let targets = [
            ("first_name", &self.first_name, &mut user.first_name),
            ("last_name", &self.last_name, &mut user.last_name),
            ("phone", &self.phone, &mut user.phone),
            ("country", &self.country, &mut user.country),
        ];
        for (name, new, slot) in targets {
            if let Some(new) = new {
                if slot.as_deref() != Some(new.as_str()) {
                    *slot = Some(new.clone());
                    changed.push(name);
                }
            }
        }
        changed
    }
}

/// Validates and applies `update` to `user_id`'s profile. Nothing is
/// written when a field is invalid (422 naming it) or nothing changes.
/// A change is one commit: the user at `version + 1` and a
/// `user.profile_updated` event naming the changed fields (not their
/// values, which are personal data). A concurrent write to the same user
/// makes it re-read and try once more, then 409 `concurrent_update`.
pub async fn update_profile(
    store: &dyn Store,
    user_id: &str,
    update: ProfileUpdate,
) -> ApiResult<Profile> {
    let update = update.validate()?;
    for _ in 0..USER_CONFLICT_ATTEMPTS {
        let stored = load_user(store, user_id).await?;
        let mut user = stored.clone();
        let changed = update.apply_to(&mut user);
        if changed.is_empty() {
            return Ok(Profile::from(&stored));
        }
        user.updated_at = events::now();
        user.version = stored.version + 1;
        let event = Event::new(
            EventType::UserProfileUpdated,
            Some(user_id),
            json!({ "fields": changed }),
        );
        let writes = vec![
            Write::UpdateUser {
                user: user.clone(),
                expected_version: stored.version,
            },
            Write::Emit(event),
        ];
        match store.commit(writes).await {
            Ok(()) => return Ok(Profile::from(&user)),
            Err(StoreError::Conflict(Conflict::VersionMismatch(_))) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the profile changed concurrently; try again",
    ))
}

/// The caller's profile.
#[utoipa::path(
    get,
    path = "/users/profile",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = Profile),
        (status = 401, description = "`unauthorized`: missing or invalid bearer token", body = ErrorBody),
        (status = 404, description = "`user_not_found`: the token's user no longer exists", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
    )
)]
pub async fn get_profile(
    State(users): State<UsersState>,
    caller: AuthUser,
) -> ApiResult<Json<Profile>> {
    let user = load_user(users.store.as_ref(), &caller.user_id).await?;
    Ok(Json(Profile::from(&user)))
}

/// Updates the caller's own profile fields and returns the profile.
#[utoipa::path(
    put,
    path = "/users/profile",
    tag = "users",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 400, description = "`unknown_field`: a field the user may not set (`kyc_status`, `email`, `user_id`, ...); `bad_request`: malformed JSON. Nothing changes.", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`concurrent_update`: the profile kept changing; retry", body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the field (name length or characters, phone not E.164, country not ISO 3166-1 alpha-2). Nothing changes.", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody),
    )
)]
pub async fn put_profile(
    State(users): State<UsersState>,
    caller: AuthUser,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<Profile>> {
    update_profile(users.store.as_ref(), &caller.user_id, update)
        .await
        .map(Json)
}
