//! The nodes' way to the shared moto's DynamoDB: a proxy on 127.0.0.1
//! that forwards one request at a time.
//!
//! Why: moto 5.2's `TransactWriteItems` is not isolated. It deep-copies
//! each table it touches, applies the items one by one without a lock and,
//! when a condition fails, puts the copy back, erasing a transaction that
//! committed meanwhile (two Python threads racing conditional transactions
//! on moto lose a committed one in a few rounds of 60). DynamoDB itself
//! serializes conflicting transactions; one request at a time gives moto
//! that isolation, so what these tests race is the API's check-then-act
//! between requests, which is what they are about.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

struct Upstream {
    base: String,
    http: reqwest::Client,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// Starts the proxy in front of `moto` (`http://127.0.0.1:PORT`); its URL.
pub async fn start(moto: &str) -> String {
    let upstream = Arc::new(Upstream {
        base: moto.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        one_at_a_time: tokio::sync::Mutex::new(()),
    });
    let app = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("proxy serves");
    });
    format!("http://{addr}")
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = upstream
        .http
        .request(method, format!("{}{path}", upstream.base))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let _turn = upstream.one_at_a_time.lock().await;
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = (status, body).into_response();
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
