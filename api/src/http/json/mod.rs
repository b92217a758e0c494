//! Strict request decoding: JSON bodies with unknown fields rejected
//! (400 `unknown_field`), missing or mistyped fields named (422
//! `missing_field` / `invalid_field`), malformed JSON (400 `bad_request`),
//! bodies over [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) (413); and query
//! strings with the same error shapes.
//!
//! Request types opt into strictness with `#[serde(deny_unknown_fields)]`.
//!
//! A body is checked against [`BODY_BOUNDS`] before serde sees it (see
//! docs/SECURITY.md, "Input bounds"), and an error message echoes at most
//! [`ECHO_MAX`] characters of any one piece of the client's input.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use inbound::{BoundsError, JsonBounds};
use serde::de::DeserializeOwned;

mod bodies;
mod errors;
mod params;

pub use bodies::{BodyCheck, REQUEST_BODIES};
pub use errors::{clip, ECHO_MAX};
pub use params::{ApiPath, ApiQuery};

/// Bounds of a JSON request body, checked before it is parsed. Every body
/// the routes take is one flat object (depth 1) of at most 8 members;
/// the limits leave room for a mistyped field to be named by the parser
/// rather than refused, and keep what a body of [`MAX_BODY_BYTES`]
/// (already enforced while it is read) can make serde allocate small.
///
/// [`MAX_BODY_BYTES`]: super::MAX_BODY_BYTES
pub const BODY_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: super::MAX_BODY_BYTES,
    max_depth: 8,
    max_elements: 1024,
};
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
/// A body over [`BODY_BOUNDS`] is refused before it is parsed: 413 when
/// it is too large, else 400 `bad_request` naming the limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    BODY_BOUNDS.check(bytes).map_err(refused)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        errors::classify(&path, &inner.to_string(), inner.classify())
    })?;
    // Anything but whitespace after the value is malformed JSON.
    de.end().map_err(|e| {
        let msg = e.to_string();
        let plain = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        ApiError::bad_request("bad_request", format!("malformed JSON: {plain}"))
    })?;
    Ok(value)
}

/// The answer to a body over [`BODY_BOUNDS`].
fn refused(e: BoundsError) -> ApiError {
    match e {
        BoundsError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is over 64 KiB",
        ),
        _ => ApiError::bad_request("bad_request", format!("body refused: {e}")),
    }
}

#[cfg(test)]
mod tests;
