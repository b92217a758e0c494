//! [`Secret`]: a string that never prints. Passwords hashes, token
//! secrets, TOTP seeds and webhook keys are held in it so `Debug`, logs and
//! the start-up config line show `<redacted>` instead.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A secret string. `Debug` and `Display` print `<redacted>`; serializing
/// for storage keeps the value (see [`Secret::redacted_serialize`] for
/// printing configs).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (hashing, signing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `serialize_with` helper for printable configs: writes `<redacted>`.
    pub fn redacted_serialize<S: Serializer>(_: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }

    /// `serialize_with` helper for optional secrets in printable configs.
    pub fn redacted_serialize_opt<S: Serializer>(
        v: &Option<Secret>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_str("<redacted>"),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"");
    }
}
