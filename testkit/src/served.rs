//! What the provider-shaped servers of this crate share: a listener on a
//! free port of 127.0.0.1 with its base URL, the serving task stopped when
//! the server is dropped ([`Task`]), and the delivery of a signed webhook
//! whose answer is read as text, then as JSON ([`post_webhook`]).

use axum::Router;
use serde_json::Value;
use std::time::Duration;

/// A listener on a free port of 127.0.0.1 and its `http://` base URL.
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
    let listener = listener.expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    (listener, url)
}

/// A serving task, aborted when dropped.
pub struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `app` on `listener` until the returned [`Task`] is dropped;
/// `who` names the server when serving fails.
pub fn serve(listener: tokio::net::TcpListener, app: Router, who: &'static str) -> Task {
    Task(tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .unwrap_or_else(|e| panic!("the {who} test server stopped: {e}"));
    }))
}

/// POSTs `body` with `headers` to `url` (10 s at most): the answer's
/// status and JSON (`null` when it is not JSON). Panics, naming `who`,
/// when it cannot be sent.
pub async fn post_webhook(
    who: &str,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .body(body)
        .timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let failed = |e| panic!("the {who} test server could not POST the webhook to {url}: {e}");
    let response = request.send().await.unwrap_or_else(failed);
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
