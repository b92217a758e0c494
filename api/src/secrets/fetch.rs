//! One read of a Secrets Manager secret (`GetSecretValue`), bounded: the
//! `SecretString` is refused over [`MAX_SECRET_BYTES`], and a JSON one is
//! parsed only within [`JSON_BOUNDS`] (docs/SECURITY.md, "Input bounds").
//! Errors say what was wrong with the secret, never its value.

use super::Reference;
use crate::secret::Secret;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use inbound::JsonBounds;
use thiserror::Error;

/// Largest `SecretString` used (Secrets Manager's own limit is 64 KiB).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Bounds of a JSON `SecretString` (a flat object of a few keys).
const JSON_BOUNDS: JsonBounds = JsonBounds {
    max_bytes: MAX_SECRET_BYTES,
    max_depth: 4,
    max_elements: 1024,
};

/// Why a referenced secret has no value to use; at start, the API does
/// not start. Names the settings and the secret id, never a value.
#[derive(Debug, Error)]
#[error("{settings}: secret {secret_id} of Secrets Manager: {reason}")]
pub struct SecretError {
    /// The settings referring to it, comma-separated.
    pub settings: String,
    pub secret_id: String,
    pub reason: String,
}

/// The `SecretString` of `secret_id` now, whole; `Err` holds why not (no
/// value in it). [`select`] takes a setting's value out of it.
pub(super) async fn read(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Secret, String> {
    let answer = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| format!("cannot be read: {}", DisplayErrorContext(e)))?;
    let text = answer
        .secret_string()
        .ok_or("has no SecretString (binary secrets are not read)")?;
    Ok(Secret::new(text))
}

/// The value `reference` names in `read`, the answer of [`read`] for its
/// secret: one read serves every setting naming a key of that secret, so
/// the settings of one secret version change together.
pub(super) fn value(
    read: &Result<Secret, String>,
    reference: &Reference,
) -> Result<Secret, String> {
    let text = read.as_ref().map_err(Clone::clone)?;
    select(text.expose(), reference.json_key.as_deref()).map(Secret::new)
}

/// The whole `text`, or the string at `key` of the JSON object it holds.
pub(super) fn select(text: &str, key: Option<&str>) -> Result<String, String> {
    if text.len() > MAX_SECRET_BYTES {
        return Err(format!("its SecretString is over {MAX_SECRET_BYTES} bytes"));
    }
    let Some(key) = key else {
        // A JSON object holds several values (AWS rotation templates store
        // a credential set so): sending all of it as one credential would
        // hand every other one to that provider.
        let object = text.trim_start().starts_with('{')
            && JSON_BOUNDS.check(text.as_bytes()).is_ok()
            && serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object());
        if object {
            return Err("its SecretString is a JSON object: name the key (aws-sm:ID#KEY)".into());
        }
        return Ok(text.to_owned());
    };
    JSON_BOUNDS
        .check(text.as_bytes())
        .map_err(|e| format!("its SecretString is not JSON within bounds: {e}"))?;
    // The parser's message is not quoted: it may hold part of the text.
    let object: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "its SecretString is not JSON".to_owned())?;
    match object.get(key) {
        Some(serde_json::Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(format!("its JSON key {key:?} is not a string")),
        None => Err(format!("its JSON has no key {key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_key_is_read_within_bounds_and_errors_hold_no_value() {
        let json = r#"{"api_key":"sk_live_1","n":3}"#;
        let whole = select(json, None).unwrap_err();
        assert!(
            whole.contains("name the key") && !whole.contains("sk_live_1"),
            "{whole}"
        );
        assert_eq!(select("sk_live_plain", None).unwrap(), "sk_live_plain");
        assert_eq!(select(json, Some("api_key")).unwrap(), "sk_live_1");
        for (text, key) in [
            (json, "missing"),
            (json, "n"),
            (r#"{"api_key":"sk_live_1""#, "api_key"),
            (r#"sk_live_1 not json"#, "api_key"),
        ] {
            let e = select(text, Some(key)).unwrap_err();
            assert!(!e.contains("sk_live_1"), "{e}");
        }
        let deep = format!("{}{}", "[".repeat(10), "]".repeat(10));
        assert!(select(&deep, Some("k")).unwrap_err().contains("bounds"));
        let huge = "x".repeat(MAX_SECRET_BYTES + 1);
        assert!(select(&huge, None).is_err());
    }

    proptest::proptest! {
        /// A fetched `SecretString` is outside input: whatever it holds,
        /// reading it never panics, and a refusal never quotes a value of
        /// it (here a marker put inside an arbitrary JSON-ish text).
        #[test]
        fn any_secret_string_is_read_or_refused_without_its_value(
            prefix in "[ -~]{0,64}",
            suffix in "[ -~]{0,64}",
            key in proptest::option::of("[a-z_]{1,8}"),
        ) {
            let marker = "SECRETMARKER9";
            for text in [
                format!("{prefix}{marker}{suffix}"),
                format!("{{\"{}\":\"{marker}\"{suffix}", key.clone().unwrap_or_default()),
            ] {
                if let Err(e) = select(&text, key.as_deref()) {
                    proptest::prop_assert!(!e.contains(marker), "{e}");
                }
            }
        }
    }
}
