//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps,
//! one step of clock skew either way): seed generation, the `otpauth://`
//! URL authenticator apps import, code checks, and a guard that refuses a
//! code already used (same or earlier step) for the same user, whether it
//! was used to sign in or to enable MFA (`mfa/verify`).

use dashmap::DashMap;
use totp_rs::{Algorithm, TOTP};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either side of now.
pub const SKEW_STEPS: u8 = 1;
/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "NA-X Stream";
/// Seed length, bytes (160 bits, RFC 4226's recommendation).
const SEED_BYTES: usize = 20;
/// Replay-guard entries kept before old ones are swept.
const GUARD_SWEEP_AT: usize = 100_000;

/// A new random seed, base32 (no padding), as stored and shown.
pub fn new_seed() -> String {
    let bytes: [u8; SEED_BYTES] = rand::random();
    base32(&bytes)
}

fn base32(bytes: &[u8]) -> String {
    match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(s) => s,
        totp_rs::Secret::Raw(_) => unreachable!("to_encoded always encodes"),
    }
}

/// The `otpauth://totp/...` URL for `seed`, labelled with `account`.
pub fn otpauth_url(seed: &str, account: &str) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={seed}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        issuer = percent_encode(ISSUER),
        account = percent_encode(account),
    )
}

/// The step whose code `code` is, within the skew around `unix_secs`;
/// `None` when it matches none (or the seed is unusable).
pub fn matching_step(seed: &str, code: &str, unix_secs: u64) -> Option<u64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp_for(seed)?;
    let now_step = unix_secs / STEP_SECS;
    let skew = u64::from(SKEW_STEPS);
    (now_step.saturating_sub(skew)..=now_step + skew).find(|step| {
        let expected = totp.generate(step * STEP_SECS);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into()
    })
}

fn totp_for(seed: &str) -> Option<TOTP> {
    let bytes = totp_rs::Secret::Encoded(seed.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, SKEW_STEPS, STEP_SECS, bytes).ok()
}

/// Remembers the last step each user logged in or enabled MFA with, so a
/// code (or an older one) cannot be used twice on this node; with Redis,
/// the session cache keeps the same for every node.
#[derive(Default)]
pub struct ReplayGuard {
    last_step: DashMap<String, u64>,
}

impl ReplayGuard {
    /// Records `step` for `user_id`; false if that step or a later one was
    /// already used.
    pub fn claim(&self, user_id: &str, step: u64) -> bool {
        if self.last_step.len() >= GUARD_SWEEP_AT {
            let oldest_useful = step.saturating_sub(2 * u64::from(SKEW_STEPS) + 1);
            self.last_step.retain(|_, s| *s >= oldest_useful);
        }
        let mut entry = self.last_step.entry(user_id.to_owned()).or_insert(0);
        if *entry >= step {
            return false;
        }
        *entry = step;
        true
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1, seed "12345678901234567890", 8 digits
    /// truncated to 6 (the low 6 digits of the 8-digit codes).
    #[test]
    fn rfc6238_vectors() {
        let seed = base32(b"12345678901234567890");
        assert_eq!(seed, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        for (t, code8) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (2000000000, "69279037"),
        ] {
            let code = &code8[2..];
            assert_eq!(matching_step(&seed, code, t), Some(t / 30), "t={t}");
        }
    }

    #[test]
    fn skew_is_one_step_either_way() {
        let seed = new_seed();
        let totp = totp_for(&seed).unwrap();
        let t = 1_700_000_000;
        let code = totp.generate(t);
        assert_eq!(matching_step(&seed, &code, t + 30), Some(t / 30));
        assert_eq!(matching_step(&seed, &code, t - 30), Some(t / 30));
        assert_eq!(matching_step(&seed, &code, t + 90), None);
        assert_eq!(matching_step(&seed, "12345", t), None);
        assert_eq!(matching_step(&seed, "abcdef", t), None);
    }

    #[test]
    fn a_step_is_claimed_once_per_user() {
        let guard = ReplayGuard::default();
        assert!(guard.claim("u", 10));
        assert!(!guard.claim("u", 10));
        assert!(!guard.claim("u", 9));
        assert!(guard.claim("u", 11));
        assert!(guard.claim("v", 10));
    }

    #[test]
    fn url_names_issuer_account_and_parameters() {
        let url = otpauth_url("ABC", "a+b@example.com");
        assert_eq!(
            url,
            "otpauth://totp/NA-X%20Stream:a%2Bb%40example.com?secret=ABC&issuer=NA-X%20Stream&algorithm=SHA1&digits=6&period=30"
        );
    }
}
