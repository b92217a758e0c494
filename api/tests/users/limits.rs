//! The rate limiter on the users routes, and the routes' OpenAPI entries.

use crate::common::{self, assert_error, test_config};
use api::ApiConfig;
use serde_json::json;

#[tokio::test]
async fn rate_limit_headers_then_429_with_retry_after() {
    let t = common::start_with(ApiConfig {
        requests_per_minute: 1,
        request_burst: 3,
        ..test_config()
    })
    .await;
    // Register and login: two of the IP's three requests.
    let (_, token, _) = t.signup("limited@example.com").await;

    // A token has its own allowance.
    for remaining in ["2", "1", "0"] {
        let (s, b, h) = t.get("/users/profile", Some(&token)).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(h["ratelimit-limit"], "3");
        assert_eq!(h["ratelimit-remaining"], remaining);
        let reset: u64 = h["ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!((1..=180).contains(&reset), "reset {reset}");
    }
    let (s, b, h) = t.get("/users/profile", Some(&token)).await;
    assert_error(s, &b, 429, "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-limit"], "3");
    assert!(h.contains_key("ratelimit-reset"));
    // Refused requests have no effect.
    let (s, _, _) = t
        .put(
            "/users/profile",
            Some(&token),
            json!({"first_name": "Nope"}),
        )
        .await;
    assert_eq!(s, 429);

    // Without a token the client is its IP, which has one request left
    // (even a 401 counts and carries the headers).
    let (s, _, h) = t.get("/users/kyc-status", None).await;
    assert_eq!(s, 401);
    assert_eq!(h["ratelimit-remaining"], "0");
    let (s, b, h) = t.get("/users/kyc-status", None).await;
    assert_error(s, &b, 429, "rate_limited");
    assert!(h.contains_key("retry-after"));

    // The OpenAPI document is not limited.
    for _ in 0..5 {
        let (s, _, h) = t.get("/openapi.json", None).await;
        assert_eq!(s, 200);
        assert!(!h.contains_key("ratelimit-limit"));
    }
}

#[tokio::test]
async fn users_routes_are_in_the_openapi_document() {
    let t = common::start().await;
    let (s, doc, _) = t.get("/openapi.json", None).await;
    assert_eq!(s, 200);
    let paths = &doc["paths"];
    for (path, method) in [
        ("/users/profile", "get"),
        ("/users/profile", "put"),
        ("/users/kyc-status", "get"),
        ("/users/kyc-documents", "post"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "missing {method} {path}");
        assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
        assert!(op["responses"]["401"].is_object(), "{method} {path}");
    }
    assert!(paths["/users/profile"]["put"]["responses"]["422"].is_object());
    assert!(paths["/users/kyc-documents"]["post"]["responses"]["202"].is_object());
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ProfileUpdate"]["properties"]["kyc_status"].is_null());
}
