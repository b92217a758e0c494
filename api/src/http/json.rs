//! Strict request decoding: JSON bodies with unknown fields rejected
//! (400 `unknown_field`), missing or mistyped fields named (422
//! `missing_field` / `invalid_field`), malformed JSON (400 `bad_request`),
//! bodies over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) (413); and query
//! strings with the same error shapes.
//!
//! Request types opt into strictness with `#[serde(deny_unknown_fields)]`.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body decoded strictly into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// The raw body, size-limited, for routes that verify signatures over the
/// exact bytes (webhooks).
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is over 64 KiB",
        )
    } else {
        ApiError::bad_request(
            "bad_request",
            format!("could not read the body: {rejection}"),
        )
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_error)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "request bodies are application/json",
                ));
            }
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes `bytes` as `T`, mapping every failure to the API's error codes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&path, &inner.to_string(), inner.classify())
    })?;
    // Anything but whitespace after the value is malformed JSON.
    de.end().map_err(|e| {
        let msg = e.to_string();
        let plain = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        ApiError::bad_request("bad_request", format!("malformed JSON: {plain}"))
    })?;
    Ok(value)
}

/// Maps a serde error to (status, code) naming the field.
fn classify(path: &str, message: &str, category: serde_json::error::Category) -> ApiError {
    use serde_json::error::Category;
    // serde's messages: "unknown field `x`, expected ...", "missing field `x`".
    let quoted = |msg: &str| msg.split('`').nth(1).map(str::to_owned);
    // serde_path_to_error's path already ends at an unknown field, and
    // stops at the parent of a missing one.
    let at = |field: Option<String>| -> String {
        let root = path.is_empty() || path == ".";
        match field {
            Some(f) if root => f,
            Some(f) if path == f || path.ends_with(&format!(".{f}")) => path.to_owned(),
            Some(f) => format!("{path}.{f}"),
            None => path.to_owned(),
        }
    };
    // Strip serde's " at line 1 column 9" suffix: positions mean nothing to clients.
    let plain = message.split(" at line ").next().unwrap_or(message);
    match category {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("bad_request", format!("malformed JSON: {plain}"))
        }
        Category::Data if plain.starts_with("unknown field") => {
            let field = at(quoted(plain));
            ApiError::bad_request("unknown_field", format!("unknown field: {field}"))
        }
        Category::Data if plain.starts_with("missing field") => {
            let field = at(quoted(plain));
            ApiError::unprocessable("missing_field", format!("missing field: {field}"))
        }
        Category::Data => {
            let field = if path.is_empty() || path == "." {
                "body".to_owned()
            } else {
                path.to_owned()
            };
            ApiError::invalid_field(&field, plain)
        }
    }
}

/// A path parameter; one that cannot be decoded (e.g. invalid UTF-8) is
/// 404 `not_found`: no resource has that name.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::not_found("not_found", format!("no such resource: {}", e.body_text()))
            })
    }
}

/// A query string decoded into `T`; malformed values are 422 naming the
/// parameter. Unknown parameters are ignored (they are not a body).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                if msg.starts_with("missing field") {
                    let field = msg.split('`').nth(1).unwrap_or(&path).to_owned();
                    ApiError::unprocessable(
                        "missing_field",
                        format!("missing query parameter: {field}"),
                    )
                } else {
                    ApiError::invalid_field(&path, msg)
                }
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        email: String,
        qty: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        a: String,
    }

    fn err(body: &str) -> ApiError {
        decode::<Req>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn unknown_field_is_400_naming_it() {
        let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "unknown_field"));
        assert!(e.message.contains("is_admin"), "{}", e.message);
    }

    #[test]
    fn nested_unknown_field_names_its_path() {
        let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
        assert_eq!(&*e.code, "unknown_field");
        assert!(e.message.contains("nested.b"), "{}", e.message);
    }

    #[test]
    fn missing_field_is_422_naming_it() {
        let e = err(r#"{"email":"a"}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (422, "missing_field"));
        assert!(e.message.contains("qty"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_422_naming_the_field() {
        let e = err(r#"{"email":"a","qty":1.5}"#);
        assert_eq!((e.status.as_u16(), &*e.code), (422, "invalid_field"));
        assert!(e.message.starts_with("qty:"), "{}", e.message);
    }

    #[test]
    fn unknown_field_is_named_once() {
        let e = err(r#"{"email":"a","qty":"1","is_admin":true}"#);
        assert_eq!(e.message, "unknown field: is_admin");
        let e = err(r#"{"email":"a","qty":"1","nested":{"a":"x","b":1}}"#);
        assert_eq!(e.message, "unknown field: nested.b");
        let e = err(r#"{"email":"a","nested":{"a":"x"}}"#);
        assert_eq!(e.message, "missing field: qty");
    }

    #[test]
    fn trailing_garbage_is_400() {
        let e = err(r#"{"email":"a","qty":"1"} xx"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        assert!(decode::<Req>(b"{\"email\":\"a\",\"qty\":\"1\"}\n ").is_ok());
    }

    #[test]
    fn malformed_json_is_400() {
        let e = err(r#"{"email":"#);
        assert_eq!((e.status.as_u16(), &*e.code), (400, "bad_request"));
        let e = err("");
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn good_body_decodes() {
        let r = decode::<Req>(br#"{"email":"a","qty":"1"}"#).unwrap();
        assert_eq!(r.qty, "1");
    }
}
