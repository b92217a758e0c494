//! HTTP plumbing shared by every route: request ids, the client's
//! address, strict JSON bodies, query strings, the authenticated-user
//! extractor and pagination.

pub mod access;
pub mod client_ip;
pub mod json;
pub mod page;
pub mod ratelimit;
pub mod request_id;

pub use client_ip::{ClientIp, TrustedProxies};
pub use json::{ApiJson, ApiPath, ApiQuery, RawBody};
pub use page::{Cursor, Limit};

use axum::http::{header, HeaderName, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body accepted (docs/API.md: over 64 KiB gets 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Wraps a whole application (the hub's routes and the API's) in what
/// every response needs: the docs/API.md error body for unknown routes (404
/// `not_found`) and methods (405 `method_not_allowed`), and
/// `x-request-id`, and each request's span, access-log line and metrics
/// ([`access`]). Call once, on the outermost router.
pub fn layers(router: axum::Router) -> axum::Router {
    use axum::http::StatusCode;
    let router = router
        .fallback(|| async { crate::ApiError::not_found("not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            crate::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(access::middleware))
        .layer(axum::middleware::from_fn(request_id::middleware));
    SECURITY_HEADERS
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                name,
                HeaderValue::from_static(value),
            ))
        })
}

/// Headers every response carries unless a handler set them: JSON is not
/// sniffed into HTML, no page frames ours, no URL leaks in `Referer`, and
/// no shared cache keeps a user's data (docs/SECURITY.md, API8).
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];
