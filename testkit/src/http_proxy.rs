//! [`start_http_proxy`]: an HTTP proxy of a test's own on 127.0.0.1 in
//! front of a server (moto, in practice) that forwards every request,
//! optionally one at a time, and lets the test change chosen exchanges
//! through a [`Rewrite`] (answer a request itself, change the body sent
//! on, change the answer).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the proxy does with one request (see [`Rewrite::request`]).
pub enum Step<N> {
    /// Send this body upstream (with the request's method, path and
    /// headers); `N` goes to [`Rewrite::answer`] with the upstream's answer.
    Forward(Vec<u8>, N),
    /// Answer at once with this status, body and `Content-Type`, without
    /// calling the upstream.
    Answer(StatusCode, Vec<u8>, &'static str),
}

/// How a test changes what passes through the proxy.
pub trait Rewrite: Send + Sync + 'static {
    /// What [`Rewrite::request`] hands to [`Rewrite::answer`] about a
    /// forwarded request.
    type Note: Send;

    /// Decides about a request from its headers and body.
    fn request(&self, headers: &HeaderMap, body: Vec<u8>) -> Step<Self::Note>;

    /// The answer body the client gets for a forwarded request, from the
    /// upstream's status and body.
    fn answer(&self, note: Self::Note, status: StatusCode, body: Vec<u8>) -> Vec<u8>;
}

/// Changes nothing: every request goes upstream as it is.
pub struct Unchanged;

impl Rewrite for Unchanged {
    type Note = ();

    fn request(&self, _: &HeaderMap, body: Vec<u8>) -> Step<()> {
        Step::Forward(body, ())
    }

    fn answer(&self, _: (), _: StatusCode, body: Vec<u8>) -> Vec<u8> {
        body
    }
}

struct Upstream<R> {
    base: String,
    http: reqwest::Client,
    /// Held while a request is upstream when requests go one at a time.
    turn: Option<tokio::sync::Mutex<()>>,
    rewrite: R,
}

/// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`) that
/// changes exchanges as `rewrite` says and, when `one_at_a_time`, has at
/// most one request upstream at once. Returns its URL. It serves until
/// the test's runtime ends (nodes under test keep its URL in their
/// configuration).
pub async fn start_http_proxy<R: Rewrite>(
    upstream: &str,
    one_at_a_time: bool,
    rewrite: R,
) -> String {
    let upstream = Arc::new(Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        turn: one_at_a_time.then(|| tokio::sync::Mutex::new(())),
        rewrite,
    });
    let app = axum::Router::new()
        .fallback(forward::<R>)
        .with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("proxy serves");
    });
    format!("http://{addr}")
}

async fn forward<R: Rewrite>(
    State(upstream): State<Arc<Upstream<R>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, note) = match upstream.rewrite.request(&headers, body.to_vec()) {
        Step::Forward(body, note) => (body, note),
        Step::Answer(status, body, content_type) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            return response;
        }
    };
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
    let _turn = match &upstream.turn {
        Some(turn) => Some(turn.lock().await),
        None => None,
    };
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default().to_vec();
    let body = upstream.rewrite.answer(note, status, body);
    let mut response = (status, body).into_response();
    for (name, value) in &answer_headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
