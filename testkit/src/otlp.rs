//! An OTLP/HTTP trace receiver of the tests' own (JSON encoding, the
//! `POST /v1/traces` of the OpenTelemetry protocol specification): it
//! keeps every span it is sent, flattened with its service's name, so a
//! test can look a trace up by id.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::Value;

/// The largest export request accepted (the OpenTelemetry collector's
/// OTLP/HTTP receiver's default, 20 MiB).
const MAX_BODY: usize = 20 << 20;

/// One received span: the OTLP JSON span object plus `service` (its
/// resource's `service.name`).
pub type Span = Value;

/// A running receiver on 127.0.0.1; stops with the test's runtime.
#[derive(Clone)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl OtlpReceiver {
    /// Binds a free port on 127.0.0.1 and serves `POST /v1/traces`.
    pub async fn start() -> OtlpReceiver {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                post(move |headers: HeaderMap, body: String| {
                    let kept = kept.clone();
                    async move { receive(&kept, &headers, &body) }
                }),
            )
            // The OpenTelemetry collector's default limit (axum's own, 2 MiB,
            // refuses a full batch of spans at `debug`).
            .layer(DefaultBodyLimit::max(MAX_BODY));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        OtlpReceiver { addr, spans }
    }

    /// The base URL to configure as the OTLP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().clone()
    }

    /// The spans of trace `trace_id` (32 hex digits).
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans
            .lock()
            .iter()
            .filter(|s| s["traceId"] == trace_id)
            .cloned()
            .collect()
    }
}

/// Checks the request as the specification has it (JSON content type, an
/// `ExportTraceServiceRequest` object) and keeps its spans.
fn receive(kept: &Mutex<Vec<Span>>, headers: &HeaderMap, body: &str) -> (StatusCode, String) {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}".into());
    }
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "{}".into());
    };
    let Some(resource_spans) = request["resourceSpans"].as_array() else {
        return (StatusCode::BAD_REQUEST, "{}".into());
    };
    let mut spans = Vec::new();
    for resource in resource_spans {
        let service = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| a["value"]["stringValue"].clone())
            .unwrap_or(Value::Null);
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let mut span = span.clone();
                span["service"] = service.clone();
                spans.push(span);
            }
        }
    }
    kept.lock().extend(spans);
    (StatusCode::OK, "{}".into())
}
