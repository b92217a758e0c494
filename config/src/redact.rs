//! The configuration as one log line of `key=value` pairs with secrets
//! masked ([`Config::redacted`]).

use std::fmt::Write as _;
use std::path::Path;

use super::Config;

impl Config {
    /// The whole configuration on one line of `key=value` pairs (dotted TOML
    /// paths) for the start-up log. Values of keys that look secret (their
    /// name contains `token`, `secret`, `password` or `key`) are shown as
    /// `***`.
    pub fn redacted(&self) -> String {
        let value = match serde_json::to_value(self) {
            Ok(value) => value,
            // Unreachable: every field is a number, a string or an enum.
            Err(e) => return format!("<configuration not renderable: {e}>"),
        };
        let mut line = String::new();
        write_flattened(&mut line, "", &value);
        line
    }
}

/// Serializes a path even if it is not UTF-8, so rendering never fails.
pub(super) fn serialize_path_lossy<S: serde::Serializer>(
    path: &Path,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// [`serialize_path_lossy`] for an optional path.
pub(super) fn serialize_opt_path_lossy<S: serde::Serializer>(
    path: &Option<std::path::PathBuf>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serialize_path_lossy(path, s),
        None => s.serialize_none(),
    }
}

/// Appends `prefix.key=value` pairs, space-separated, redacting secrets.
pub(super) fn write_flattened(out: &mut String, prefix: &str, value: &serde_json::Value) {
    // A list of sections (`[[venues]]`): `prefix.0.key=value`, ...
    if let serde_json::Value::Array(items) = value {
        if !items.is_empty() && items.iter().all(serde_json::Value::is_object) {
            for (i, item) in items.iter().enumerate() {
                write_flattened(out, &format!("{prefix}.{i}"), item);
            }
            return;
        }
    }
    let serde_json::Value::Object(fields) = value else {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{prefix}={value}");
        return;
    };
    for (key, field) in fields {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if looks_secret(key) {
            write_flattened(out, &path, &serde_json::Value::from("***"));
        } else {
            write_flattened(out, &path, field);
        }
    }
}

/// Settings about secrets that are not secrets themselves (how often
/// Secrets Manager is read, and where).
const ABOUT_SECRETS: &[&str] = &["secrets_ttl_ms", "secrets_endpoint", "secrets_region"];

/// Whether a key's value must not appear in logs.
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if ABOUT_SECRETS.contains(&key.as_str()) {
        return false;
    }
    ["token", "secret", "password", "key"]
        .iter()
        .any(|word| key.contains(word))
}
