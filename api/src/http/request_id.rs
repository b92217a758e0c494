//! `x-request-id` on every response: the request's own `x-request-id` or
//! `x-correlation-id` when given and safe (at most [`MAX_LEN`] characters
//! of `[A-Za-z0-9._:-]`, so it can be echoed into headers, bodies and logs
//! as it is), else a new UUID. The id is
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
pub const MAX_LEN: usize = 64;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, or `""` outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// A client id is echoed when it is 1 to [`MAX_LEN`] characters of
/// `[A-Za-z0-9._:-]` (no markup, quotes, spaces or control characters: no
/// header injection, no log forging, nothing a page could render).
fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    (!s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(safe)).then(|| s.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(s: &[u8]) -> bool {
        acceptable(&HeaderValue::from_bytes(s).unwrap()).is_some()
    }

    #[test]
    fn safe_ids_are_kept() {
        for id in [
            "abc-123",
            "corr-9",
            "a.b_c:d-E",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert!(accepted(id.as_bytes()), "{id}");
        }
        assert!(accepted("x".repeat(MAX_LEN).as_bytes()));
    }

    #[test]
    fn unsafe_ids_are_replaced() {
        for id in [
            &b"\"><script>"[..],
            b"a b",
            b"a\tb",
            b"id;drop",
            b"<x>",
            b"a/b",
            b"\xc3\xa9",
            b"",
        ] {
            assert!(!accepted(id), "{id:?}");
        }
        assert!(!accepted("x".repeat(MAX_LEN + 1).as_bytes()));
    }
}
