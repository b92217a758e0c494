//! The `/auth/*` handlers (docs/API.md "Authentication"): decode, call [`Auth`], encode.
//!
//! In Cognito mode (`auth_mode = "cognito"`) every route here answers 403
//! `local_auth_disabled`: users sign in, refresh, sign out and manage MFA
//! with Cognito, and send its access tokens as `Bearer`.

use super::Auth;
use super::{AuthUser, TokenPair};
use crate::error::{ApiError, ErrorBody};
use crate::http::{ApiJson, ClientIp};
use crate::secret::Secret;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

/// `/auth/*` routes, on any state the [`Auth`] can be had from.
pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Auth>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(register))
        .routes(utoipa_axum::routes!(login))
        .routes(utoipa_axum::routes!(refresh))
        .routes(utoipa_axum::routes!(logout))
        .routes(utoipa_axum::routes!(mfa_setup))
        .routes(utoipa_axum::routes!(mfa_verify))
}

/// `POST /auth/register` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// At most 254 characters; stored trimmed and lower-case.
    #[schema(example = "alice@example.com", max_length = 254)]
    email: String,
    /// 12 to 128 characters with an upper-case letter, a lower-case
    /// letter, a digit and a symbol.
    #[schema(format = Password, min_length = 12, max_length = 128)]
    password: String,
}

/// The new account.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    user_id: String,
}

/// `POST /auth/login` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(format = Password)]
    password: String,
    /// The current 6-digit TOTP code; required once MFA is enabled.
    #[schema(example = "123456")]
    totp: Option<String>,
}

/// A token pair (login and refresh).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// HS256 JWT (`sub`, `exp`, `iss`, `aud`, `jti`, `fid`, `token_use`).
    access_token: String,
    /// Opaque; single use (spend it with `POST /auth/refresh`).
    refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires (900).
    #[schema(example = 900)]
    expires_in: u64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        TokenResponse {
            access_token: pair.access_token.expose().to_owned(),
            refresh_token: pair.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: pair.expires_in,
        }
    }
}

/// `POST /auth/refresh` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// A new TOTP seed, shown once.
#[derive(Serialize, ToSchema)]
pub struct MfaSetupResponse {
    /// Base32 seed (HMAC-SHA1, 6 digits, 30-second period).
    secret: String,
    /// `otpauth://totp/...` for authenticator apps (QR code).
    otpauth_url: String,
}

/// `POST /auth/mfa/verify` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The current 6-digit code of the seed from `mfa/setup`.
    #[schema(example = "123456")]
    code: String,
}

/// MFA state after verification.
#[derive(Serialize, ToSchema)]
pub struct MfaVerifyResponse {
    mfa_enabled: bool,
}

/// Creates an account.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; emits `user.registered`", body = RegisterResponse),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode)", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_email`, `weak_password`, `missing_field`", body = ErrorBody),
        (status = 503, description = "`auth_busy`: the password-hashing queue is full; see `Retry-After`", body = ErrorBody),
    ))]
async fn register(
    State(auth): State<Arc<Auth>>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let user_id = auth
        .register(&body.email, Secret::new(body.password))
        .await?;
    Ok((StatusCode::CREATED, Json(RegisterResponse { user_id })))
}

/// Signs in: a 15-minute access token and a 7-day single-use refresh
/// token. Throttled (429 with `Retry-After`): from the
/// `login_failures_allowed`-th failure (default 5) of an account from one
/// client address ([`ClientIp`]: behind a trusted proxy, the forwarded
/// address), that address waits 1 s, 2 s, 4 s, ... (at most
/// `login_lockout_secs`, default 300) before trying that account again;
/// 5 times that many failures from one address over any accounts lock the
/// address for `login_lockout_secs`; successful logins are limited per
/// account (default 10 a minute) and per address (default 60 a minute).
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials` (also for an unknown email), `mfa_required`, `invalid_totp` (wrong or reused code)", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode)", body = ErrorBody),
        (status = 422, description = "`missing_field`, `invalid_field`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failures of the account from this address, failures from this address, or logins of the account or from this address; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`auth_busy`: the password-hashing queue is full; see `Retry-After`", body = ErrorBody),
    ))]
async fn login(
    State(auth): State<Arc<Auth>>,
    client: Option<ClientIp>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let attempt = super::session::LoginAttempt {
        email: body.email,
        password: Secret::new(body.password),
        totp: body.totp,
        ip: client.map(|ClientIp(ip)| ip),
    };
    Ok(Json(auth.login(attempt).await?.into()))
}

/// Spends a refresh token for a new pair. Presenting a spent token again
/// revokes its whole session (every refresh and access token of it).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New pair; the presented token is spent", body = TokenResponse),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`invalid_refresh_token` (unknown, expired, revoked), `token_reused` (session revoked)", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode)", body = ErrorBody),
        (status = 422, description = "`missing_field`", body = ErrorBody),
    ))]
async fn refresh(
    State(auth): State<Arc<Auth>>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(auth.refresh(&body.refresh_token).await?.into()))
}

/// Ends the session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session revoked"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode: sign out with Cognito)", body = ErrorBody),
    ))]
async fn logout(State(auth): State<Arc<Auth>>, user: AuthUser) -> Result<StatusCode, ApiError> {
    auth.logout(user.family_id.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts TOTP setup: a new seed, stored but not enabled until
/// `mfa/verify` confirms a code. Calling it again replaces a pending seed.
#[utoipa::path(post, path = "/auth/mfa/setup", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Seed to enrol in an authenticator", body = MfaSetupResponse),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode)", body = ErrorBody),
        (status = 409, description = "`mfa_already_enabled`", body = ErrorBody),
    ))]
async fn mfa_setup(
    State(auth): State<Arc<Auth>>,
    user: AuthUser,
) -> Result<Json<MfaSetupResponse>, ApiError> {
    let setup = auth.mfa_setup(&user.user_id).await?;
    Ok(Json(MfaSetupResponse {
        secret: setup.secret.expose().to_owned(),
        otpauth_url: setup.otpauth_url.expose().to_owned(),
    }))
}

/// Enables TOTP with a code of the pending seed; from then on login needs
/// `totp`. The code is spent: it cannot also sign in. A wrong (or already
/// used) code is 422 `invalid_totp` (the caller is signed in; the code is
/// bad input, not a failed sign-in). Idempotent once enabled.
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "auth",
    security(("bearer" = [])),
    request_body = MfaVerifyRequest,
    responses(
        (status = 200, description = "MFA enabled", body = MfaVerifyResponse),
        (status = 400, description = "`unknown_field`, `bad_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`local_auth_disabled` (Cognito mode)", body = ErrorBody),
        (status = 409, description = "`mfa_not_set_up`, `mfa_setup_changed`", body = ErrorBody),
        (status = 422, description = "`invalid_totp`, `missing_field`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many wrong codes", body = ErrorBody),
    ))]
async fn mfa_verify(
    State(auth): State<Arc<Auth>>,
    user: AuthUser,
    ApiJson(body): ApiJson<MfaVerifyRequest>,
) -> Result<Json<MfaVerifyResponse>, ApiError> {
    auth.mfa_verify(&user.user_id, &body.code).await?;
    Ok(Json(MfaVerifyResponse { mfa_enabled: true }))
}
