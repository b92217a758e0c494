//! The keys of [`super::FireblocksServer`]: the check of a request's API
//! key and RS256 JWT (Fireblocks, "Signing a request: JWT structure",
//! developers.fireblocks.com/reference/signing-a-request-jwt-structure), the
//! webhook key set (JWKS) and the webhook signatures, v2 (a detached JWS,
//! RS512) and v1 (base64 RSA-SHA512 of the raw body), as "Validating
//! webhooks" (developers.fireblocks.com/reference/validating-webhooks)
//! describes them. Verified by hand with the `rsa` crate: testkit needs no
//! JWT library.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use super::{IAT_TOLERANCE_SECS, MAX_TOKEN_LIFETIME_SECS};

/// A refused request: Fireblocks' code (see [`message`]) and why, in
/// testkit's words (for [`super::LoggedRequest::why`], never sent).
pub(super) type Refusal = (i64, String);

/// Fireblocks' message for an authentication error code. -1 … -7: the
/// table of developers.fireblocks.com/reference/api-responses (-1 and -7
/// worded as support.fireblocks.io articles 8928210868380 and 10570293455388
/// quote the bodies); -10 and -12: articles 8927972341020 and 8928497562268.
pub(super) fn message(code: i64) -> &'static str {
    match code {
        -1 => "invalid signature",
        -2 => "Missing API Key in the JWT",
        -3 => "The entire JWT is missing",
        -4 => "Wrong URL in the JWT",
        -5 => "Unauthorized: Invalid token format",
        -6 => "Wrong User in the JWT",
        -10 => "The request has expired.",
        -12 => "The request is with a future issuance timestamp (iat).",
        _ => "Unauthorized: Token was not accepted.",
    }
}

/// An RSA private key from a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA
/// PRIVATE KEY`) PEM; panics on anything else.
pub(super) fn private_key(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .expect("an RSA private key PEM (PKCS#8 or PKCS#1)")
}

/// An RSA public key from an SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC
/// KEY`) PEM; panics on anything else.
pub(super) fn public_key(pem: &str) -> RsaPublicKey {
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .expect("an RSA public key PEM (SPKI or PKCS#1)")
}

/// Checks the `X-API-Key` and `Authorization: Bearer {jwt}` of a request
/// for `target` (path and query) with `body`, at `now` (s): the token's
/// canonical nonce, for the caller to check and keep, or the refusal.
///
/// In order: the key header (-7: missing or not `api_key`; Fireblocks says
/// -7 "typically means an incorrect API key"), the token (-3 missing, -5
/// not three base64url parts of JSON objects, `alg` other than `RS256`, a
/// claim missing or mistyped), the RS256 signature over `header.payload`
/// (-1), `sub` (-2 missing, -6 not the API key), `uri` (-4), `bodyHash`
/// (-1: lowercase or uppercase hex SHA-256 of the exact body, the empty
/// string's for a bodyless request), the times (-10 expired or `iat` over
/// [`IAT_TOLERANCE_SECS`] old, -12 `iat` over that in the future, -7 `exp -
/// iat` over [`MAX_TOKEN_LIFETIME_SECS`] or not positive). Which code
/// Fireblocks gives for a body or lifetime mismatch is not documented.
pub(super) fn check(
    api_key: &str,
    key: &VerifyingKey<Sha256>,
    headers: &HeaderMap,
    target: &str,
    body: &[u8],
    now: i64,
) -> Result<String, Refusal> {
    let refuse = |code: i64, why: &str| Err((code, why.to_owned()));
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match text(header::HeaderName::from_static("x-api-key")) {
        None => return refuse(-7, "no X-API-Key header"),
        Some(given) if given != api_key => return refuse(-7, "X-API-Key is not the API key"),
        Some(_) => {}
    }
    let bearer = text(header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer "));
    let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
        return refuse(-3, "no `Authorization: Bearer {jwt}` header");
    };
    let [head, payload, signature] = token.split('.').collect::<Vec<_>>()[..] else {
        return refuse(-5, "the token is not three dot-separated parts");
    };
    let object = |part: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
    };
    let signed = &token[..head.len() + 1 + payload.len()];
    let (Some(alg), Some(claims)) = (object(head).map(|h| h["alg"].clone()), object(payload))
    else {
        return refuse(-5, "the header or payload is not base64url JSON");
    };
    if alg != "RS256" {
        return refuse(-5, "the header's alg is not RS256");
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok();
    let signature = signature.and_then(|s| Signature::try_from(&s[..]).ok());
    let Some(signature) = signature else {
        return refuse(-5, "the signature is not base64url");
    };
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return refuse(
            -1,
            "the RS256 signature does not verify with the API user's key",
        );
    }
    match claims.get("sub").and_then(Value::as_str) {
        None | Some("") => return refuse(-2, "no sub claim"),
        Some(sub) if sub != api_key => return refuse(-6, "sub is not the API key"),
        Some(_) => {}
    }
    if claims.get("uri").and_then(Value::as_str) != Some(target) {
        return refuse(-4, &format!("uri is not {target}"));
    }
    let Some(hash) = claims.get("bodyHash").and_then(Value::as_str) else {
        return refuse(-5, "no bodyHash claim");
    };
    if !hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
        return refuse(-1, "bodyHash is not the SHA-256 of the body");
    }
    let time = |name| claims.get(name).and_then(Value::as_f64);
    let (Some(iat), Some(exp)) = (time("iat"), time("exp")) else {
        return refuse(-5, "iat or exp is missing or not a number");
    };
    let now = now as f64;
    if now >= exp || iat < now - IAT_TOLERANCE_SECS as f64 {
        return refuse(-10, "the token has expired");
    }
    if iat > now + IAT_TOLERANCE_SECS as f64 {
        return refuse(-12, "iat is in the future");
    }
    if exp <= iat || exp - iat > MAX_TOKEN_LIFETIME_SECS as f64 {
        return refuse(-7, "exp - iat is not within 1..=55 s");
    }
    match claims.get("nonce") {
        Some(Value::String(nonce)) if !nonce.is_empty() => Ok(nonce.clone()),
        Some(Value::Number(nonce)) => Ok(nonce.to_string()),
        _ => refuse(-5, "nonce is missing, empty, or not a string or number"),
    }
}

/// The key set `{"keys":[…]}`: one RS512 signing JWK a key, `n` and `e`
/// base64url (no padding) big-endian, as in Fireblocks' documented example.
pub(super) fn jwks(keys: &[(&str, &RsaPrivateKey)]) -> Value {
    let b64 = |n: &rsa::BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
    let jwk = |(kid, key): &(&str, &RsaPrivateKey)| {
        json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS512",
                "n": b64(key.n()), "e": b64(key.e()) })
    };
    json!({ "keys": keys.iter().map(jwk).collect::<Vec<_>>() })
}

/// A `Fireblocks-Webhook-Signature` value: `{b64url(header)}..{b64url(sig)}`,
/// header `{"alg":"RS512","kid":kid}`, the signature RSASSA-PKCS1-v1_5 with
/// SHA-512 over `b64url(header) + "." + b64url(body)` (the detached payload
/// base64url-encoded, as all of Fireblocks' verification samples rebuild it).
pub(super) fn sign_v2(kid: &str, key: &RsaPrivateKey, body: &[u8]) -> String {
    let head = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS512", "kid": kid }).to_string());
    let input = format!("{head}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = SigningKey::<Sha512>::new(key.clone()).sign(input.as_bytes());
    format!("{head}..{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A `Fireblocks-Signature` value: standard base64 (padded) of the
/// RSASSA-PKCS1-v1_5 SHA-512 signature of the raw body.
pub(super) fn sign_v1(key: &RsaPrivateKey, body: &[u8]) -> String {
    let signature = SigningKey::<Sha512>::new(key.clone()).sign(body);
    STANDARD.encode(signature.to_bytes())
}
