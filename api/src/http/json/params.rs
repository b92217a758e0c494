//! Path parameters and query strings decoded with the same error shapes
//! as bodies (404 for an undecodable path, 422 naming a parameter).

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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
