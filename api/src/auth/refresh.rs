//! Refresh tokens: opaque `<family_id>.<secret>` strings (the secret is 32
//! random bytes, base64url). The store keeps only the SHA-256 of the
//! family's current token ([`RefreshFamily::current_hash`]), never the
//! token; spending one replaces the hash (generation + 1), so any other
//! token of the family is spent or forged, and presenting it revokes the
//! family (reuse detection).

use crate::events::{now, Timestamp};
use crate::secret::Secret;
use crate::store::RefreshFamily;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Longest refresh token looked at (family uuid + '.' + 43 chars).
pub const MAX_REFRESH_TOKEN_LEN: usize = 128;

/// A freshly minted refresh token and the hash the store keeps.
pub struct MintedRefresh {
    pub token: Secret,
    pub hash: String,
}

/// A new refresh token for `family_id`.
pub fn mint(family_id: &str) -> MintedRefresh {
    let secret: [u8; 32] = rand::random();
    let token = format!("{family_id}.{}", URL_SAFE_NO_PAD.encode(secret));
    MintedRefresh {
        hash: hash(&token),
        token: Secret::new(token),
    }
}

/// SHA-256 (hex) of a refresh token, as stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The family id of a well-formed refresh token, `None` otherwise.
pub fn family_of(token: &str) -> Option<&str> {
    if token.len() > MAX_REFRESH_TOKEN_LEN {
        return None;
    }
    let (family, secret) = token.split_once('.')?;
    let well_formed = !family.is_empty()
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && URL_SAFE_NO_PAD
            .decode(secret)
            .is_ok_and(|bytes| bytes.len() == 32);
    well_formed.then_some(family)
}

/// Whether `token` is the family's current one (constant-time).
pub fn is_current(family: &RefreshFamily, token: &str) -> bool {
    hash(token)
        .as_bytes()
        .ct_eq(family.current_hash.as_bytes())
        .into()
}

/// Whether the family can still be used: not revoked, not expired.
pub fn is_live(family: &RefreshFamily, at: Timestamp) -> bool {
    !family.revoked && family.expires_at > at
}

/// The record of a new family (a login).
pub fn new_family(family_id: &str, user_id: &str, hash: String, ttl_secs: u64) -> RefreshFamily {
    RefreshFamily {
        family_id: family_id.to_owned(),
        user_id: user_id.to_owned(),
        current_hash: hash,
        generation: 1,
        revoked: false,
        expires_at: expiry(ttl_secs),
        version: 1,
    }
}

/// The family after spending its current token for a new one with `hash`:
/// the new token is valid `ttl_secs` from now.
pub fn rotated(family: &RefreshFamily, hash: String, ttl_secs: u64) -> RefreshFamily {
    RefreshFamily {
        current_hash: hash,
        generation: family.generation + 1,
        expires_at: expiry(ttl_secs),
        version: family.version + 1,
        ..family.clone()
    }
}

/// The family revoked (logout or reuse).
pub fn revoked(family: &RefreshFamily) -> RefreshFamily {
    RefreshFamily {
        revoked: true,
        version: family.version + 1,
        ..family.clone()
    }
}

fn expiry(ttl_secs: u64) -> Timestamp {
    let ttl = chrono::TimeDelta::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000));
    now() + ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_and_match_their_hash() {
        let m = mint("0190a0b1-aaaa-7bbb-8ccc-0123456789ab");
        assert_eq!(
            family_of(m.token.expose()),
            Some("0190a0b1-aaaa-7bbb-8ccc-0123456789ab")
        );
        let family = new_family("f", "u", m.hash.clone(), 60);
        assert!(is_current(&family, m.token.expose()));
        assert!(!is_current(&family, mint("f").token.expose()));
        assert!(is_live(&family, now()));
        assert!(!is_live(&revoked(&family), now()));
    }

    #[test]
    fn malformed_tokens_have_no_family() {
        for bad in ["", "abc", ".xyz", "f.short", "f/x.AAAA", &"a".repeat(200)] {
            assert_eq!(family_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn rotation_bumps_generation_and_version() {
        let family = new_family("f", "u", "h1".into(), 60);
        let next = rotated(&family, "h2".into(), 60);
        assert_eq!((next.generation, next.version), (2, 2));
        assert_eq!(next.current_hash, "h2");
        let gone = revoked(&next);
        assert!(gone.revoked);
        assert_eq!(gone.version, 3);
    }
}
