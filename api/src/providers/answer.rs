//! Reading a provider's HTTP answer: the body is read in chunks and
//! refused past a size before it is kept, then checked against
//! [`JsonBounds`] before it is parsed (docs/SECURITY.md, "Input bounds").
//! Shared by the adapters that call a provider's JSON API.

use inbound::JsonBounds;
use serde_json::Value;

/// The status and the bounded, parsed body of `response`.
pub async fn read(
    mut response: reqwest::Response,
    bounds: &JsonBounds,
) -> Result<(u16, Value), String> {
    let status = response.status().as_u16();
    let max = bounds.max_bytes;
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("answer over {max} bytes"));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if raw.len() + chunk.len() > max {
            return Err(format!("answer over {max} bytes"));
        }
        raw.extend_from_slice(&chunk);
    }
    Ok((status, parse(&raw, bounds)?))
}

/// An answer's body, parsed once within `bounds` (empty: `null`).
pub fn parse(raw: &[u8], bounds: &JsonBounds) -> Result<Value, String> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    bounds
        .check(raw)
        .map_err(|e| format!("answer refused: {e}"))?;
    serde_json::from_slice(raw).map_err(|e| format!("answer not JSON: {e}"))
}

/// The string at `pointer` in `body` when it is a plausible provider id
/// or word: 1 to 2,048 characters, no control characters.
pub fn text_at(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 2048 && !s.chars().any(char::is_control))
        .map(str::to_owned)
}
