//! The wire of the BCB-shaped server ([`super`]): answers and the two error
//! shapes (the API's, invented; the token endpoint's, Auth0 / RFC 6749-like),
//! amounts, timestamps, form bodies, and the invented details of deposits.

use super::*;
use axum::http::{header, request::Parts, StatusCode};
use axum::response::IntoResponse;
use serde_json::Map;

/// A refusal: status, code, message.
pub(super) type Refusal = (u16, &'static str, String);

/// A JSON answer.
pub(super) fn reply(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let json = [(header::CONTENT_TYPE, "application/json")];
    (status, json, body.to_string()).into_response()
}

/// An API error (invented shape): `{"statusCode", "code", "message"}`.
pub(super) fn error((status, code, message): Refusal) -> Response {
    let body = json!({ "statusCode": status, "code": code, "message": message });
    reply(status, &body)
}

/// A token endpoint error: `{"error", "error_description"}`.
pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    reply(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as BCB writes times.
pub(super) fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The JSON number of `text`, a positive decimal with at most `decimals`
/// decimals (`"10"`, `"10.5"`, `"10.50"`), or `None`.
pub(super) fn amount_value(text: &str, decimals: usize) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let shaped = digits(whole) && digits(fraction) && fraction.len() <= decimals;
    let value = text
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite());
    value.filter(|_| shaped && whole.len() <= 15)
}

/// The payment scheme BCB reports for a payment (invented for `AUTO`).
pub(super) fn network(ccy: &str, scheme: &str) -> &'static str {
    match (scheme, ccy) {
        ("BLINC", _) => "BLINC",
        ("INTERNAL", _) => "INTERNAL",
        (_, "GBP") => "FPS",
        (_, "EUR") => "SEPA",
        _ => "SWIFT",
    }
}

/// The bank account a deposit comes from (invented; `""`: not available).
pub(super) struct Sender {
    pub bank_name: &'static str,
    pub country: &'static str,
    pub bic: &'static str,
    pub iban: &'static str,
    pub sort_code: &'static str,
    pub account_number: &'static str,
}

/// Who sends deposits in `ccy`.
pub(super) fn sender(ccy: &str) -> Sender {
    match ccy {
        "GBP" => Sender {
            bank_name: "National Westminster Bank",
            country: "GB",
            bic: "NWBKGB2L",
            iban: "GB29NWBK60161331926819",
            sort_code: "601613",
            account_number: "31926819",
        },
        "EUR" => Sender {
            bank_name: "Commerzbank",
            country: "DE",
            bic: "COBADEFFXXX",
            iban: "DE89370400440532013000",
            sort_code: "",
            account_number: "",
        },
        _ => Sender {
            bank_name: "JPMorgan Chase Bank",
            country: "US",
            bic: "CHASUS33",
            iban: "",
            sort_code: "",
            account_number: "123456789",
        },
    }
}

/// The essence of the `Content-Type` (`application/json`), lowercase.
pub(super) fn content_type(parts: &Parts) -> String {
    let value = parts.headers.get(header::CONTENT_TYPE);
    let value = value.and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default();
    essence.trim().to_ascii_lowercase()
}

/// The string fields of a token request, JSON or form-encoded; `None`
/// when the body is neither (JSON values that are not strings are left out).
pub(super) fn token_fields(parts: &Parts, body: &[u8]) -> Option<Map<String, Value>> {
    match content_type(parts).as_str() {
        "application/json" => match serde_json::from_slice(body) {
            Ok(Value::Object(mut fields)) => {
                fields.retain(|_, v| v.is_string());
                Some(fields)
            }
            _ => None,
        },
        "application/x-www-form-urlencoded" => {
            let mut fields = Map::new();
            for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
                let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
                let value = pair.get(at + 1..).unwrap_or_default();
                let (name, value) = decode(&pair[..at]).zip(decode(value))?;
                fields.insert(name, json!(value));
            }
            Some(fields)
        }
        _ => None,
    }
}

/// The decoded `name=value` pairs of a query string.
pub(super) fn query_pairs(query: &str) -> Vec<(String, String)> {
    let pairs = query.split('&').filter(|p| !p.is_empty());
    let pair = |p: &str| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        decode(name.as_bytes()).zip(decode(value.as_bytes()))
    };
    pairs.filter_map(pair).collect()
}

/// `+` as space, `%XX` as a byte; `None` unless that makes UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let (mut out, mut i) = (Vec::with_capacity(raw.len()), 0);
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(*hex::decode(raw.get(i + 1..i + 3)?).ok()?.first()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
