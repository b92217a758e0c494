//! The `aws-sm:<secret-id>[#<json-key>]` syntax of a setting that names a
//! Secrets Manager secret instead of holding its value.

use thiserror::Error;

/// What starts a reference.
pub const PREFIX: &str = "aws-sm:";
/// Longest secret id (a full ARN with its suffix fits).
const MAX_ID: usize = 2048;
/// Longest JSON key.
const MAX_KEY: usize = 256;

/// A Secrets Manager secret, and the key of its JSON `SecretString` whose
/// value is the setting's (`None`: the whole string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// A name or ARN, as `GetSecretValue` takes it.
    pub secret_id: String,
    pub json_key: Option<String>,
}

/// Why a value starting with [`PREFIX`] is not a reference.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceError {
    #[error("aws-sm: reference without a secret id (aws-sm:<secret-id>[#<json-key>])")]
    NoId,
    #[error("aws-sm: secret id is not 1 to {MAX_ID} of A-Z a-z 0-9 / _ + = . @ - :")]
    BadId,
    #[error("aws-sm: JSON key after # is not 1 to {MAX_KEY} printable characters")]
    BadKey,
}

impl Reference {
    /// `None` for a plain value (not starting with [`PREFIX`]); else the
    /// reference, or why it is malformed. The error never quotes the
    /// value.
    pub fn parse(value: &str) -> Option<Result<Reference, ReferenceError>> {
        let rest = value.strip_prefix(PREFIX)?;
        let (id, key) = match rest.split_once('#') {
            Some((id, key)) => (id, Some(key)),
            None => (rest, None),
        };
        let id_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c);
        Some(if id.is_empty() {
            Err(ReferenceError::NoId)
        } else if id.len() > MAX_ID || !id.chars().all(id_char) {
            Err(ReferenceError::BadId)
        } else if key
            .is_some_and(|k| k.is_empty() || k.len() > MAX_KEY || k.contains(char::is_control))
        {
            Err(ReferenceError::BadKey)
        } else {
            Ok(Reference {
                secret_id: id.to_owned(),
                json_key: key.map(str::to_owned),
            })
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", self.secret_id)?;
        match &self.json_key {
            Some(key) => write!(f, "#{key}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_plain_values() {
        assert_eq!(Reference::parse("sk_live_x"), None);
        assert_eq!(Reference::parse("aws-sm-ish"), None);
        let whole = Reference::parse("aws-sm:nax/prod/stripe").unwrap().unwrap();
        assert_eq!(whole.secret_id, "nax/prod/stripe");
        assert_eq!(whole.json_key, None);
        let arn =
            "aws-sm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:nax/x-AbCdEf#api_key";
        let keyed = Reference::parse(arn).unwrap().unwrap();
        assert_eq!(keyed.json_key.as_deref(), Some("api_key"));
        assert_eq!(keyed.to_string(), arn);
        for (bad, why) in [
            ("aws-sm:", ReferenceError::NoId),
            ("aws-sm:#k", ReferenceError::NoId),
            ("aws-sm:has space", ReferenceError::BadId),
            ("aws-sm:id#", ReferenceError::BadKey),
            ("aws-sm:id#a\nb", ReferenceError::BadKey),
        ] {
            assert_eq!(Reference::parse(bad), Some(Err(why)), "{bad}");
        }
    }
}
