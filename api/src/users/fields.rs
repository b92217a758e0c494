//! Validation of the profile fields a user may set. Each check names the
//! field in its error (422 `invalid_field`), so a client knows what to fix,
//! and returns the value as it will be stored.

use super::countries::is_country_code;
use crate::error::ApiError;

/// Longest first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Digits an E.164 number may have after the `+` (ITU-T E.164 allows at
/// most 15; fewer than 8 is no reachable number).
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// A first or last name: surrounding whitespace is dropped; what remains
/// is 1..=100 characters without control characters.
pub fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format_args!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0
/// (`+14155550123`). No spaces, dashes or brackets.
pub fn phone(raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "phone",
            "must be E.164: '+' followed by 8 to 15 digits, e.g. +14155550123",
        )
    };
    let digits = raw.strip_prefix('+').ok_or_else(bad)?;
    let well_formed = PHONE_DIGITS.contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if well_formed {
        Ok(raw.to_owned())
    } else {
        Err(bad())
    }
}

/// A country as its ISO 3166-1 alpha-2 code in uppercase (`US`, `GB`).
pub fn country(raw: &str) -> Result<String, ApiError> {
    if is_country_code(raw) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid_field(
            "country",
            "must be an ISO 3166-1 alpha-2 code in uppercase, e.g. US",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(r: Result<String, ApiError>, field: &str) {
        let e = r.expect_err("should be rejected");
        assert_eq!((e.status.as_u16(), &*e.code), (422, "invalid_field"));
        assert!(e.message.starts_with(&format!("{field}:")), "{}", e.message);
    }

    #[test]
    fn names() {
        assert_eq!(name("first_name", "  Ada ").unwrap(), "Ada");
        assert_eq!(name("first_name", "Zoë").unwrap(), "Zoë");
        assert_eq!(
            name("last_name", &"é".repeat(100)).unwrap().chars().count(),
            100
        );
        rejected(name("last_name", &"é".repeat(101)), "last_name");
        rejected(name("first_name", ""), "first_name");
        rejected(name("first_name", "   "), "first_name");
        rejected(name("first_name", "Ada\nLovelace"), "first_name");
        rejected(name("first_name", "Ada\u{0}"), "first_name");
        rejected(name("first_name", "Ada\u{7f}"), "first_name");
    }

    #[test]
    fn phones() {
        assert_eq!(phone("+14155550123").unwrap(), "+14155550123");
        assert!(phone("+12345678").is_ok());
        assert!(phone("+123456789012345").is_ok());
        for bad in [
            "14155550123",
            "+1234567",
            "+1234567890123456",
            "+1 415 555 0123",
            "+1-415-555-0123",
            "+04155550123",
            "+",
            "",
            "+１２３４５６７８９",
        ] {
            rejected(phone(bad), "phone");
        }
    }

    #[test]
    fn countries() {
        assert_eq!(country("US").unwrap(), "US");
        for bad in ["us", "XX", "USA", "", "U", "1A"] {
            rejected(country(bad), "country");
        }
    }
}
