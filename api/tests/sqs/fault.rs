//! A proxy on 127.0.0.1 in front of a real `moto_server` that makes SQS
//! refuse chosen entries of a `SendMessageBatch` the way SQS reports a
//! failed entry (in the answer's `Failed` list, the others accepted), a
//! given number of times. moto never refuses an entry on its own (it
//! accepts oversized bodies and any character), so this is how a test gets
//! a transient per-entry failure. Every other request passes unchanged
//! (the forwarding is `testkit`'s HTTP proxy).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use testkit::{Rewrite, Step};

struct Faults {
    /// Entries whose body contains this are refused...
    marker: String,
    /// ...this many more times.
    left: AtomicU32,
}

/// Starts the proxy in front of moto on `moto_port`: entries whose body
/// contains `marker` are refused `times` times in all. Its endpoint URL.
pub async fn start(moto_port: u16, marker: &str, times: u32) -> String {
    let faults = Faults {
        marker: marker.to_owned(),
        left: AtomicU32::new(times),
    };
    testkit::start_http_proxy(&format!("http://127.0.0.1:{moto_port}"), false, faults).await
}

impl Rewrite for Faults {
    /// The ids of the entries refused.
    type Note = Vec<String>;

    fn request(&self, headers: &HeaderMap, body: Vec<u8>) -> Step<Vec<String>> {
        let batch = headers
            .get("x-amz-target")
            .is_some_and(|t| t == "AmazonSQS.SendMessageBatch");
        if !batch {
            return Step::Forward(body, Vec::new());
        }
        let (body, refused) = self.refuse_marked(body);
        if serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["Entries"] == json!([])) {
            // Nothing left to send: answer as SQS would, with the refused
            // entries failed.
            let answer = self.answer(
                refused,
                StatusCode::OK,
                json!({"Successful": []}).to_string().into_bytes(),
            );
            return Step::Answer(StatusCode::OK, answer, "application/x-amz-json-1.0");
        }
        Step::Forward(body, refused)
    }

    fn answer(&self, refused: Vec<String>, status: StatusCode, body: Vec<u8>) -> Vec<u8> {
        if refused.is_empty() || !status.is_success() {
            return body;
        }
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
        let failed: Vec<Value> = refused
            .iter()
            .map(|id| json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected by the test"}))
            .collect();
        match v.get_mut("Failed").and_then(Value::as_array_mut) {
            Some(list) => list.extend(failed),
            None => v["Failed"] = Value::Array(failed),
        }
        v.to_string().into_bytes()
    }
}

impl Faults {
    /// The batch without the marked entries still to refuse, and their ids.
    fn refuse_marked(&self, body: Vec<u8>) -> (Vec<u8>, Vec<String>) {
        let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
            return (body, Vec::new());
        };
        let Some(entries) = request["Entries"].as_array().cloned() else {
            return (body, Vec::new());
        };
        let mut kept = Vec::new();
        let mut refused = Vec::new();
        for entry in entries {
            let marked = entry["MessageBody"]
                .as_str()
                .is_some_and(|b| b.contains(&self.marker));
            let refuse = marked
                && self
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
}
