//! Cognito mode: RS256 access tokens verified against a JWKS that a small
//! axum server on 127.0.0.1 serves (keys generated here with `rsa`).

use super::{common, unix_now};
use api::config::{AuthMode, CognitoConfig};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{assert_error, PASSWORD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST";
const CLIENT_ID: &str = "app-client-1";

/// One key pair for the whole file (RSA generation is slow unoptimized).
fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key"))
}

fn jwk(kid: &str) -> Value {
    let public = key().to_public_key();
    json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

/// The JWKS server: what it serves, and how often it was asked.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(kids: &[&str]) -> Jwks {
    let keys = Arc::new(Mutex::new(
        json!({"keys": kids.iter().map(|k| jwk(k)).collect::<Vec<_>>()}),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let (k, f) = (k.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(k.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks {
        url: format!("http://{addr}/.well-known/jwks.json"),
        keys,
        fetches,
    }
}

async fn start_cognito(jwks_url: &str) -> common::TestApi {
    common::start_with(api::ApiConfig {
        auth_mode: AuthMode::Cognito,
        cognito: CognitoConfig {
            jwks_url: jwks_url.to_owned(),
            issuer: ISSUER.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            jwks_cache_secs: 3600,
        },
        ..common::test_config()
    })
    .await
}

/// Claims of a Cognito access token.
fn access_claims(sub: &str) -> Value {
    let now = unix_now();
    json!({
        "sub": sub, "iss": ISSUER, "client_id": CLIENT_ID, "token_use": "access",
        "scope": "aws.cognito.signin.user.admin", "auth_time": now, "iat": now,
        "exp": now + 3600, "jti": uuid::Uuid::new_v4().to_string(), "username": sub,
    })
}

fn sign(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let pem = key().to_pkcs1_pem(LineEnding::LF).unwrap();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Authenticated routes answer; logout (a local-session route) then says
/// 403 `local_auth_disabled`, which proves the token itself was accepted.
async fn probe(t: &common::TestApi, token: &str) -> (u16, Value) {
    let (s, body, _) = t.post("/auth/logout", Some(token), json!({})).await;
    (s, body)
}

fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[key] = value;
    c
}

#[tokio::test]
async fn cognito_tokens_are_checked_against_the_jwks() {
    let jwks = serve_jwks(&["k1"]).await;
    let t = start_cognito(&jwks.url).await;
    let sub = uuid::Uuid::new_v4().to_string();
    let good = access_claims(&sub);

    let (s, body) = probe(&t, &sign(&good, Some("k1"))).await;
    assert_error(s, &body, 403, "local_auth_disabled");
    // The user record was created on first use.
    let user = t.api.store.user(&sub).await.unwrap().expect("user created");
    assert_eq!(user.email, format!("{sub}@cognito.invalid"));
    // Cached: more tokens, no more fetches.
    for _ in 0..3 {
        assert_eq!(probe(&t, &sign(&good, Some("k1"))).await.0, 403);
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
    // `aud` instead of `client_id` is accepted too.
    let by_aud = with(&good, "client_id", Value::Null);
    let by_aud = with(&by_aud, "aud", json!(CLIENT_ID));
    assert_eq!(probe(&t, &sign(&by_aud, Some("k1"))).await.0, 403);

    let now = unix_now();
    let id_token = json!({
        "sub": sub, "iss": ISSUER, "aud": CLIENT_ID, "token_use": "id",
        "email": "x@example.com", "iat": now, "exp": now + 3600,
    });
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let cases = [
        (
            sign(&with(&good, "exp", json!(now - 120)), Some("k1")),
            "token expired",
        ),
        (
            sign(
                &with(&good, "iss", json!("https://evil.example")),
                Some("k1"),
            ),
            "wrong token issuer",
        ),
        (
            sign(&with(&good, "client_id", json!("other-app")), Some("k1")),
            "wrong token audience",
        ),
        (
            sign(&with(&good, "token_use", json!("refresh")), Some("k1")),
            "not an access token",
        ),
        (sign(&id_token, Some("k1")), "not an access token"),
        (
            sign(&good, Some("unknown-kid")),
            "token signing key unknown",
        ),
        (sign(&good, None), "token signing key unknown"),
        (hs256, "token algorithm not accepted"),
    ];
    for (token, why) in cases {
        let (s, body) = probe(&t, &token).await;
        assert_error(s, &body, 401, "unauthorized");
        assert_eq!(body["error"]["message"], why, "{body}");
    }
    // A tampered payload fails the signature.
    let token = sign(&good, Some("k1"));
    let mut parts: Vec<&str> = token.split('.').collect();
    let evil = URL_SAFE_NO_PAD.encode(with(&good, "sub", json!("someone-else")).to_string());
    parts[1] = &evil;
    let (s, body) = probe(&t, &parts.join(".")).await;
    assert_error(s, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "invalid token signature");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks() {
    let jwks = serve_jwks(&["k1"]).await;
    let t = start_cognito(&jwks.url).await;
    let good = access_claims(&uuid::Uuid::new_v4().to_string());
    assert_eq!(probe(&t, &sign(&good, Some("k1"))).await.0, 403);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);

    // The pool rotates its keys; a token signed with the new kid triggers
    // one refetch and is accepted.
    *jwks.keys.lock().unwrap() = json!({"keys": [jwk("k1"), jwk("k2")]});
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(probe(&t, &sign(&good, Some("k2"))).await.0, 403);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    // Unknown kids right after a fetch do not hammer the pool.
    for _ in 0..3 {
        assert_eq!(probe(&t, &sign(&good, Some("k9"))).await.0, 401);
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn local_sign_in_routes_are_disabled_in_cognito_mode() {
    let jwks = serve_jwks(&["k1"]).await;
    let t = start_cognito(&jwks.url).await;
    let creds = json!({"email": "pat@example.com", "password": PASSWORD});
    for (path, body) in [
        ("/auth/register", creds.clone()),
        ("/auth/login", creds),
        ("/auth/refresh", json!({"refresh_token": "x.y"})),
    ] {
        let (s, body, _) = t.post(path, None, body).await;
        assert_error(s, &body, 403, "local_auth_disabled");
    }
    let token = sign(
        &access_claims(&uuid::Uuid::new_v4().to_string()),
        Some("k1"),
    );
    let (s, body, _) = t.post("/auth/mfa/setup", Some(&token), json!({})).await;
    assert_error(s, &body, 403, "local_auth_disabled");
}

#[tokio::test]
async fn unreachable_jwks_is_503() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let t = start_cognito(&url).await;
    let token = sign(&access_claims("u"), Some("k1"));
    let (s, body) = probe(&t, &token).await;
    assert_error(s, &body, 503, "auth_unavailable");
}

/// In Cognito mode too, REST requests count against the token's user, the
/// key the WebSocket order ops are charged to (`Api::charge`): one
/// allowance per user.
#[tokio::test]
async fn cognito_requests_and_socket_order_ops_share_the_user_s_allowance() {
    let jwks = serve_jwks(&["k1"]).await;
    let t = common::start_with(api::ApiConfig {
        auth_mode: AuthMode::Cognito,
        cognito: CognitoConfig {
            jwks_url: jwks.url.clone(),
            issuer: ISSUER.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            jwks_cache_secs: 3600,
        },
        requests_per_minute: 1,
        request_burst: 3,
        ..common::test_config()
    })
    .await;
    let sub = uuid::Uuid::new_v4().to_string();
    let token = sign(&access_claims(&sub), Some("k1"));
    for _ in 0..2 {
        assert_eq!(
            probe(&t, &token).await.0,
            403,
            "allowed, then refused by the route"
        );
    }
    t.api
        .charge(&sub)
        .await
        .expect("the third request of the burst");
    let refused = t.api.charge(&sub).await.expect_err("the burst is spent");
    assert_eq!(&*refused.code, "rate_limited");
    // Another user's allowance is their own.
    t.api
        .charge(&uuid::Uuid::new_v4().to_string())
        .await
        .expect("another user");
}
