//! The HTTP side of `/graphql`: the bearer-token gate every request except
//! a WebSocket upgrade passes, queries and mutations POSTed as JSON, and
//! GraphQL-shaped error bodies for what fails before GraphQL runs.

use crate::schema::ErrorCode;
use crate::server::App;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `{"errors": [{"message", "extensions": {"code"}}]}` with `status`.
pub fn error_response(status: StatusCode, code: Option<ErrorCode>, message: &str) -> Response {
    let mut error = json!({ "message": message });
    if let Some(code) = code {
        error["extensions"] = json!({ "code": code.as_str() });
    }
    (status, Json(json!({ "errors": [error] }))).into_response()
}

/// 401 with `UNAUTHENTICATED` and a `WWW-Authenticate: Bearer` challenge.
pub fn unauthenticated() -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        Some(ErrorCode::Unauthenticated),
        "missing or invalid bearer token",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Lets a request through only with the server's bearer token, checked
/// before its body is read. A WebSocket upgrade passes: its client
/// authenticates in `connection_init` (browsers cannot set headers there).
pub async fn require_bearer(State(app): State<App>, request: Request, next: Next) -> Response {
    if is_websocket_upgrade(request.method(), request.headers()) {
        return next.run(request).await;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !app.token.accepts(credentials) {
        return unauthenticated();
    }
    next.run(request).await
}

fn is_websocket_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `POST /graphql` with `{"query", "variables", "operationName"}`: runs the
/// operation and answers 200 with the GraphQL response (errors included).
/// A body that is not such a JSON object, or nests too deep or holds too
/// many values to be parsed (`ServerLimits::json_bounds`), is 400; one
/// over the size limit, 413.
pub async fn graphql_post(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error_response(rejection.status(), None, &rejection.body_text());
        }
    };
    if let Err(e) = app
        .limits
        .json_bounds(app.limits.max_body_bytes)
        .check(&body)
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            None,
            &format!("the body was refused before parsing: {e}"),
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                None,
                &format!("the body must be a GraphQL request as JSON: {err}"),
            );
        }
    };
    Json(app.schema.execute(request).await).into_response()
}
