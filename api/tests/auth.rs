//! docs/API.md "Authentication" over a real socket: registration, login and its
//! throttling (clients bound to 127.0.0.1 and 127.0.0.2 act as two
//! addresses), refresh rotation and reuse detection, logout, TOTP, access
//! token verification (local HS256) and Cognito RS256 verification against
//! a JWKS served by a small local server.

use crate::common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{assert_error, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

/// A 32-byte HS256 key so tests can forge tokens.
const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Probes a protected route (TOTP setup: harmless, it replaces a pending
/// seed). Returns status and body.
async fn probe(t: &common::TestApi, token: &str) -> (u16, Value) {
    let (s, body, _) = t.post("/auth/mfa/setup", Some(token), json!({})).await;
    (s, body)
}

async fn login(t: &common::TestApi, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    t.post("/auth/login", None, body).await
}

// ---------------------------------------------------------------- register

#[tokio::test]
async fn register_creates_a_user_and_emits_user_registered() {
    let t = common::start().await;
    let (s, body, _) = t
        .post(
            "/auth/register",
            None,
            json!({"email": "  Alice@Example.COM ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let user_id = body["user_id"].as_str().expect("user_id").to_owned();
    // The email was normalized: logging in with another casing works.
    let (s, body, _) = login(
        &t,
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let mut registered = false;
    for _ in 0..100 {
        registered = t.events().iter().any(|e| {
            e.event_type == "user.registered" && e.user_id.as_deref() == Some(user_id.as_str())
        });
        if registered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered, "no user.registered event for {user_id}");
}

#[tokio::test]
async fn register_refuses_weak_passwords() {
    let t = common::start().await;
    for weak in [
        "Short-1a",
        "alllowercase-123",
        "ALLUPPERCASE-123",
        "NoDigits-Here-x",
        "NoSymbols123abc",
        &format!("Aa1!{}", "x".repeat(130)),
    ] {
        let (s, body, _) = t
            .post(
                "/auth/register",
                None,
                json!({"email": "bob@example.com", "password": weak}),
            )
            .await;
        assert_error(s, &body, 422, "weak_password");
    }
    // Nothing was created: the email is still free.
    t.signup("bob@example.com").await;
}

#[tokio::test]
async fn register_refuses_a_taken_email_whatever_its_case() {
    let t = common::start().await;
    t.signup("carol@example.com").await;
    let (s, body, _) = t
        .post(
            "/auth/register",
            None,
            json!({"email": "CAROL@example.com", "password": PASSWORD}),
        )
        .await;
    assert_error(s, &body, 409, "email_taken");
}

#[tokio::test]
async fn register_refuses_invalid_emails() {
    let t = common::start().await;
    let long = format!("{}@example.com", "a".repeat(250));
    for bad in ["", "not-an-email", "a@b", "a b@example.com", long.as_str()] {
        let (s, body, _) = t
            .post(
                "/auth/register",
                None,
                json!({"email": bad, "password": PASSWORD}),
            )
            .await;
        assert_error(s, &body, 422, "invalid_email");
    }
}

#[tokio::test]
async fn register_refuses_unknown_and_missing_fields() {
    let t = common::start().await;
    let (s, body, _) = t
        .post(
            "/auth/register",
            None,
            json!({"email": "dan@example.com", "password": PASSWORD, "is_admin": true}),
        )
        .await;
    assert_error(s, &body, 400, "unknown_field");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is_admin"));
    let (s, body, _) = t
        .post("/auth/register", None, json!({"email": "dan@example.com"}))
        .await;
    assert_error(s, &body, 422, "missing_field");
    // Neither attempt created the account.
    t.signup("dan@example.com").await;
}

// ------------------------------------------------------------------- login

#[tokio::test]
async fn login_returns_a_bearer_pair() {
    let t = common::start().await;
    t.signup("erin@example.com").await;
    let (s, body, _) = login(
        &t,
        json!({"email": "erin@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(body["refresh_token"].as_str().unwrap().len() > 40);
    assert_eq!(probe(&t, access).await.0, 200);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let t = common::start().await;
    t.signup("frank@example.com").await;
    let (s1, wrong, _) = login(
        &t,
        json!({"email": "frank@example.com", "password": "Wrong-Password-1"}),
    )
    .await;
    assert_error(s1, &wrong, 401, "invalid_credentials");
    let (s2, unknown, _) = login(
        &t,
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(s2, &unknown, 401, "invalid_credentials");
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
    let (s, body, _) = login(
        &t,
        json!({"email": "frank@example.com", "password": PASSWORD, "remember_me": true}),
    )
    .await;
    assert_error(s, &body, 400, "unknown_field");
}

// ----------------------------------------------------------------- refresh

async fn refresh(t: &common::TestApi, token: &str) -> (u16, Value) {
    let (s, body, _) = t
        .post("/auth/refresh", None, json!({"refresh_token": token}))
        .await;
    (s, body)
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let t = common::start().await;
    let (_, access1, refresh1) = t.signup("ivan@example.com").await;
    let (s, pair) = refresh(&t, &refresh1).await;
    assert_eq!(s, 200, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    let access2 = pair["access_token"].as_str().unwrap().to_owned();
    let refresh2 = pair["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(probe(&t, &access2).await.0, 200);

    // The spent token again: the family is revoked.
    let (s, body) = refresh(&t, &refresh1).await;
    assert_error(s, &body, 401, "token_reused");
    for access in [&access1, &access2] {
        let (s, body) = probe(&t, access).await;
        assert_error(s, &body, 401, "unauthorized");
        assert_eq!(body["error"]["message"], "token revoked");
    }
    let (s, body) = refresh(&t, &refresh2).await;
    assert_error(s, &body, 401, "invalid_refresh_token");

    // Other sessions of the user are untouched.
    let (s, body, _) = login(
        &t,
        json!({"email": "ivan@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        probe(&t, body["access_token"].as_str().unwrap()).await.0,
        200
    );
}

#[tokio::test]
async fn unknown_refresh_tokens_are_refused() {
    let t = common::start().await;
    let (_, _, real) = t.signup("jane@example.com").await;
    let (family, _) = real.split_once('.').unwrap();
    let unknown_family = format!(
        "00000000-0000-4000-8000-000000000000.{}",
        URL_SAFE_NO_PAD.encode([1u8; 32])
    );
    for bad in ["", "garbage", unknown_family.as_str(), &"x".repeat(500)] {
        let (s, body) = refresh(&t, bad).await;
        assert_error(s, &body, 401, "invalid_refresh_token");
    }
    // A forged secret for a real family counts as reuse.
    let forged = format!("{family}.{}", URL_SAFE_NO_PAD.encode([2u8; 32]));
    let (s, body) = refresh(&t, &forged).await;
    assert_error(s, &body, 401, "token_reused");
    let (s, body) = refresh(&t, &real).await;
    assert_error(s, &body, 401, "invalid_refresh_token");
}

// ------------------------------------------------------------------ logout

#[tokio::test]
async fn logout_stops_access_and_refresh_tokens_at_once() {
    let t = common::start().await;
    let (_, access, refresh_token) = t.signup("kate@example.com").await;
    let (_, other, _) = login(
        &t,
        json!({"email": "kate@example.com", "password": PASSWORD}),
    )
    .await;
    let other_access = other["access_token"].as_str().unwrap().to_owned();

    let (s, body, _) = t.post("/auth/logout", Some(&access), json!({})).await;
    assert_eq!(s, 204, "{body}");
    let (s, body) = probe(&t, &access).await;
    assert_error(s, &body, 401, "unauthorized");
    let (s, body) = refresh(&t, &refresh_token).await;
    assert_error(s, &body, 401, "invalid_refresh_token");
    // Only that session ended.
    assert_eq!(probe(&t, &other_access).await.0, 200);

    let (s, body, _) = t.post("/auth/logout", None, json!({})).await;
    assert_error(s, &body, 401, "unauthorized");
}

// --------------------------------------------------------------------- MFA

fn totp_code(secret: &str, at: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 secret");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .expect("totp")
        .generate(at)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn mfa_setup_and_verify_then_login_needs_totp() {
    let t = common::start().await;
    let (_, access, _) = t.signup("liam@example.com").await;
    let (s, setup) = probe(&t, &access).await;
    assert_eq!(s, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let url = setup["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");

    // Not enabled yet: login needs no code.
    let creds = json!({"email": "liam@example.com", "password": PASSWORD});
    assert_eq!(login(&t, creds.clone()).await.0, 200);

    let wrong = totp_code(&secret, unix_now() + 3600);
    let (s, body, _) = t
        .post("/auth/mfa/verify", Some(&access), json!({"code": wrong}))
        .await;
    assert_error(s, &body, 422, "invalid_totp");
    let code = totp_code(&secret, unix_now());
    let (s, body, _) = t
        .post("/auth/mfa/verify", Some(&access), json!({"code": code}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, json!({"mfa_enabled": true}));
    let (s, profile, _) = t.get("/users/profile", Some(&access)).await;
    assert_eq!(
        (s, &profile["mfa_enabled"]),
        (200, &json!(true)),
        "{profile}"
    );

    let (s, body, _) = login(&t, creds).await;
    assert_error(s, &body, 401, "mfa_required");
    let (s, body, _) = login(
        &t,
        json!({"email": "liam@example.com", "password": PASSWORD, "totp": wrong}),
    )
    .await;
    assert_error(s, &body, 401, "invalid_totp");
    // The code that enabled MFA is spent; the next step's code signs in.
    let with_code = json!({"email": "liam@example.com", "password": PASSWORD, "totp": totp_code(&secret, unix_now() + 30)});
    let (s, body, _) = login(&t, with_code.clone()).await;
    assert_eq!(s, 200, "{body}");
    // The same code cannot sign in twice.
    let (s, body, _) = login(&t, with_code).await;
    assert_error(s, &body, 401, "invalid_totp");
    // A wrong password still says only that.
    let (s, body, _) = login(
        &t,
        json!({"email": "liam@example.com", "password": "Wrong-Password-1"}),
    )
    .await;
    assert_error(s, &body, 401, "invalid_credentials");

    let (s, body) = probe(&t, &access).await;
    assert_error(s, &body, 409, "mfa_already_enabled");
}

#[tokio::test]
async fn the_code_that_enabled_mfa_cannot_sign_in() {
    let t = common::start().await;
    let (_, access, _) = t.signup("rosa@example.com").await;
    let (s, setup) = probe(&t, &access).await;
    assert_eq!(s, 200, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let code = totp_code(&secret, unix_now());
    let (s, body, _) = t
        .post("/auth/mfa/verify", Some(&access), json!({"code": code}))
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = login(
        &t,
        json!({"email": "rosa@example.com", "password": PASSWORD, "totp": code}),
    )
    .await;
    assert_error(s, &body, 401, "invalid_totp");
}

#[tokio::test]
async fn mfa_verify_without_setup_is_a_conflict() {
    let t = common::start().await;
    let (_, access, _) = t.signup("mona@example.com").await;
    let (s, body, _) = t
        .post("/auth/mfa/verify", Some(&access), json!({"code": "123456"}))
        .await;
    assert_error(s, &body, 409, "mfa_not_set_up");
}

// ------------------------------------------------------- local JWT checks

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign_hs256(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[key] = value;
    c
}

#[tokio::test]
async fn access_tokens_failing_a_check_are_401_naming_it() {
    let t = common::start_with(api::ApiConfig {
        jwt_secret: Some(api::secret::Secret::new(JWT_SECRET)),
        ..common::test_config()
    })
    .await;
    let (_, access, _) = t.signup("nina@example.com").await;
    let claims = claims_of(&access);
    let key = JWT_SECRET.as_bytes();
    // Control: a token we sign ourselves with the right claims works.
    assert_eq!(probe(&t, &sign_hs256(&claims, key)).await.0, 200);

    let now = unix_now();
    let expired = with(
        &with(&claims, "exp", json!(now - 120)),
        "iat",
        json!(now - 1020),
    );
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap();
    let cases = [
        (sign_hs256(&expired, key), "token expired"),
        (
            sign_hs256(&claims, b"another-secret-another-secret-12345"),
            "invalid token signature",
        ),
        (none_token, "token algorithm not accepted"),
        (hs512, "token algorithm not accepted"),
        (
            sign_hs256(&with(&claims, "iss", json!("evil")), key),
            "wrong token issuer",
        ),
        (
            sign_hs256(&with(&claims, "aud", json!("other-api")), key),
            "wrong token audience",
        ),
        (
            sign_hs256(&with(&claims, "token_use", json!("refresh")), key),
            "not an access token",
        ),
        (
            sign_hs256(&with(&claims, "fid", json!("no-such-family")), key),
            "token revoked",
        ),
        ("not.a.jwt".to_owned(), "malformed token"),
    ];
    for (token, why) in cases {
        let (s, body) = probe(&t, &token).await;
        assert_error(s, &body, 401, "unauthorized");
        assert_eq!(body["error"]["message"], why, "{body}");
        assert!(!body.to_string().contains(&token), "token echoed");
    }

    // Revoked: after logout even a freshly signed token of that family fails.
    let (s, _, _) = t.post("/auth/logout", Some(&access), json!({})).await;
    assert_eq!(s, 204);
    let (s, body) = probe(&t, &sign_hs256(&claims, key)).await;
    assert_error(s, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "token revoked");
}

/// Tokens signed with the real key but not valid yet (`nbf`) or issued
/// in the future (`iat`), beyond the 5 s leeway, are refused.
#[tokio::test]
async fn access_tokens_from_the_future_are_refused() {
    let t = common::start_with(api::ApiConfig {
        jwt_secret: Some(api::secret::Secret::new(JWT_SECRET)),
        ..common::test_config()
    })
    .await;
    let (_, access, _) = t.signup("sven@example.com").await;
    let claims = claims_of(&access);
    let key = JWT_SECRET.as_bytes();
    let now = unix_now();
    let day = 24 * 3600;
    let long_lived = with(&claims, "exp", json!(now + 2 * day));
    // Controls: a past `nbf` and an `iat` within the leeway are fine.
    for fine in [
        with(&long_lived, "nbf", json!(now - 60)),
        with(&long_lived, "iat", json!(now + 1)),
    ] {
        let (s, body) = probe(&t, &sign_hs256(&fine, key)).await;
        assert_eq!(s, 200, "{body}");
    }
    let cases = [
        (
            with(&long_lived, "nbf", json!(now + day)),
            "token not yet valid",
        ),
        (
            with(&long_lived, "iat", json!(now + day)),
            "token issued in the future",
        ),
    ];
    for (claims, why) in cases {
        let (s, body) = probe(&t, &sign_hs256(&claims, key)).await;
        assert_error(s, &body, 401, "unauthorized");
        assert_eq!(body["error"]["message"], why, "{body}");
    }
}

/// The generated key is read back from `<data_dir>/keys/jwt.key`: a
/// server started with a copy of it accepts the first server's signatures
/// (the token then fails only on its session, which that store lacks),
/// while one with a fresh key refuses the signature.
#[tokio::test]
async fn generated_signing_key_is_kept_in_the_data_dir() {
    let t = common::start().await;
    let (_, access, _) = t.signup("olga@example.com").await;
    let key_file = t.dir.path().join("keys").join("jwt.key");
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(copy.path().join("keys")).unwrap();
    std::fs::copy(&key_file, copy.path().join("keys").join("jwt.key")).unwrap();

    let same_key = common::start_in(common::test_config(), copy).await;
    let (s, body) = probe(&same_key, &access).await;
    assert_error(s, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "token revoked");

    let fresh_key = common::start().await;
    let (s, body) = probe(&fresh_key, &access).await;
    assert_error(s, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "invalid token signature");
    assert_ne!(
        std::fs::read(&key_file).unwrap(),
        std::fs::read(fresh_key.dir.path().join("keys").join("jwt.key")).unwrap()
    );
}

#[tokio::test]
async fn openapi_lists_every_auth_route() {
    let t = common::start().await;
    let (_, doc, _) = t.get("/openapi.json", None).await;
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/mfa/setup",
        "/auth/mfa/verify",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/auth/logout"]["post"]["security"].is_array());
}

/// Login throttling: failures per (account, address), per address, and
/// successes.
mod throttle;

/// Cognito mode (RS256 against a JWKS).
mod cognito;
