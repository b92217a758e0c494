//! `x-request-id` on every response: the request's own `x-request-id` or
//! `x-correlation-id` when given (and sane), else a new one. The id is
//! also available to any code running for the request through
//! [`current`], so error bodies and log lines carry it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Response (and accepted request) header.
pub const HEADER: &str = "x-request-id";
/// Accepted alternative request header.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// Longest client-supplied id echoed; longer ones are replaced.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, or `""` outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// A client id is echoed when it is short printable ASCII (no header
/// injection, no log forging).
fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

/// Middleware: assigns the id, runs the request inside its scope, sets the
/// response header.
pub async fn middleware(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let id = headers
        .get(HEADER)
        .and_then(acceptable)
        .or_else(|| headers.get(CORRELATION_HEADER).and_then(acceptable))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
