//! A proxy on 127.0.0.1 in front of a real `moto_server` that makes SQS
//! refuse chosen entries of a `SendMessageBatch` the way SQS reports a
//! failed entry (in the answer's `Failed` list, the others accepted), a
//! given number of times. moto never refuses an entry on its own (it
//! accepts oversized bodies and any character), so this is how a test gets
//! a transient per-entry failure. Every other request passes unchanged.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

struct Faults {
    base: String,
    http: reqwest::Client,
    /// Entries whose body contains this are refused...
    marker: String,
    /// ...this many more times.
    left: AtomicU32,
}

/// Starts the proxy in front of moto on `moto_port`: entries whose body
/// contains `marker` are refused `times` times in all. Its endpoint URL.
pub async fn start(moto_port: u16, marker: &str, times: u32) -> String {
    let faults = Arc::new(Faults {
        base: format!("http://127.0.0.1:{moto_port}"),
        http: reqwest::Client::new(),
        marker: marker.to_owned(),
        left: AtomicU32::new(times),
    });
    let app = axum::Router::new().fallback(forward).with_state(faults);
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
    State(faults): State<Arc<Faults>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let batch = headers
        .get("x-amz-target")
        .is_some_and(|t| t == "AmazonSQS.SendMessageBatch");
    let (body, refused) = if batch {
        refuse_marked(&faults, &body)
    } else {
        (body.to_vec(), Vec::new())
    };
    let empty =
        batch && serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["Entries"] == json!([]));
    let (status, answer_headers, mut answer) = if empty {
        (
            StatusCode::OK,
            HeaderMap::new(),
            json!({"Successful": []}).to_string().into_bytes(),
        )
    } else {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut request = faults
            .http
            .request(method, format!("{}{path}", faults.base))
            .body(body);
        for (name, value) in &headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        (
            status,
            headers,
            answer.bytes().await.unwrap_or_default().to_vec(),
        )
    };
    if !refused.is_empty() && status.is_success() {
        let mut v: Value = serde_json::from_slice(&answer).unwrap_or_else(|_| json!({}));
        let failed: Vec<Value> = refused
            .iter()
            .map(|id| json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected by the test"}))
            .collect();
        match v.get_mut("Failed").and_then(Value::as_array_mut) {
            Some(list) => list.extend(failed),
            None => v["Failed"] = Value::Array(failed),
        }
        answer = v.to_string().into_bytes();
    }
    let mut response = (status, answer).into_response();
    for (name, value) in &answer_headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
        .headers_mut()
        .entry("content-type")
        .or_insert_with(|| "application/x-amz-json-1.0".parse().expect("header value"));
    response
}

/// The batch without the marked entries still to refuse, and their ids.
fn refuse_marked(faults: &Faults, body: &[u8]) -> (Vec<u8>, Vec<String>) {
    let Ok(mut request) = serde_json::from_slice::<Value>(body) else {
        return (body.to_vec(), Vec::new());
    };
    let Some(entries) = request["Entries"].as_array().cloned() else {
        return (body.to_vec(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for entry in entries {
        let marked = entry["MessageBody"]
            .as_str()
            .is_some_and(|b| b.contains(&faults.marker));
        let refuse = marked
            && faults
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if refuse {
            refused.push(entry["Id"].as_str().unwrap_or_default().to_owned());
        } else {
            kept.push(entry);
        }
    }
    request["Entries"] = Value::Array(kept);
    (request.to_string().into_bytes(), refused)
}
