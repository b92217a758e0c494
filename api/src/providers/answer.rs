//! Reading a provider's HTTP answer: the body is read in chunks and
//! refused past a size before it is kept, then checked against
//! [`JsonBounds`] before it is parsed (docs/SECURITY.md, "Input bounds").
//! Shared by the adapters that call a provider's JSON API.

use inbound::JsonBounds;
use serde_json::Value;

/// The status and the bounded, parsed body of `response`.
pub async fn read(
    response: reqwest::Response,
    bounds: &JsonBounds,
) -> Result<(u16, Value), String> {
    let status = response.status().as_u16();
    let raw = read_raw(response, bounds.max_bytes).await?;
    Ok((status, parse(&raw, bounds)?))
}

/// The body of `response`, refused past `max` bytes before more is read.
pub async fn read_raw(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
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
    Ok(raw)
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
