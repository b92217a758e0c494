//! Secrets sealed at rest: the store never holds a TOTP seed or a
//! password hash in the clear.
//!
//! - **What**: `User.mfa_secret` and `User.password_hash`, sealed by
//!   [`Sealing`], a layer ([`crate::store::layered`]) in front of
//!   either store, so the auth code reads and writes plaintext and never
//!   knows (see `store.rs`).
//! - **Format**: `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`,
//!   XChaCha20-Poly1305 with a random 192-bit nonce (random nonces are
//!   safe at any volume). The key id names the data key (a fingerprint of
//!   it), so a value sealed under another key is reported as such, and
//!   keys can be rotated. A value without the `sealed:` prefix is a legacy
//!   plaintext (base32 seeds and `$argon2id$...` hashes never start so):
//!   it is read as it is and sealed by the next write of its record.
//! - **Associated data**: the format, the key id and a context naming the
//!   record and field (`users/<user id>/mfa_secret`), so a ciphertext
//!   copied into another user's record, or into another field, does not
//!   open.
//! - **Keys** (`source.rs`): one data key per deployment, from KMS
//!   (`kms_key_id`: generated once, kept wrapped in the store, unwrapped
//!   by every node at start) or from `<data_dir>/keys/data.key` (mode
//!   0600, generated on first start).

mod kms;
mod source;
mod store;

pub use kms::{client as kms_client, create_key as create_kms_key};
pub use source::{keyring, KeyringError, CHECKPOINT_SERVICE, DATA_KEY_FILE};
pub use store::Sealing;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:";
/// The format this code writes.
pub const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a stored value did not open. None of them carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    #[error("sealed with format {0}, which this version does not read")]
    UnsupportedVersion(String),
    #[error("sealed with data key {0}, which this node does not have")]
    UnknownKey(String),
    #[error("not a well-formed sealed value")]
    Malformed,
    /// Wrong key, tampered bytes, or a ciphertext moved from another
    /// record or field.
    #[error(
        "does not open with data key {0} for this record (tampered, or moved from another record)"
    )]
    Rejected(String),
}

/// A 256-bit data key. Never printed: `Debug` shows its id only.
pub struct DataKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl DataKey {
    pub fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"nax data key id\0")
            .chain_update(bytes)
            .finalize();
        DataKey {
            id: hex::encode(&digest[..8]),
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }

    /// A fingerprint of the key (16 hex digits), written into every value
    /// it seals.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

/// The key new values are sealed with, and every key values may be
/// opened with (the sealing one, plus older ones during a move from a
/// local key file to KMS).
#[derive(Debug)]
pub struct Keyring {
    sealing: DataKey,
    older: Vec<DataKey>,
}

impl Keyring {
    pub fn new(sealing: DataKey) -> Self {
        Keyring {
            sealing,
            older: Vec::new(),
        }
    }

    /// Also opens values sealed with `key` (never seals with it).
    pub fn also_opening(mut self, key: DataKey) -> Self {
        if key.id != self.sealing.id && self.older.iter().all(|k| k.id != key.id) {
            self.older.push(key);
        }
        self
    }

    /// The id of the key new values are sealed with.
    pub fn sealing_key_id(&self) -> &str {
        &self.sealing.id
    }

    /// Whether `stored` is a sealed value (else a legacy plaintext).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Seals `plaintext` for `context` (the record and field it belongs
    /// to). Every call draws a new nonce, so sealing one value twice gives
    /// two different strings.
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = associated_data(&self.sealing.id, context);
        let sealed = self
            .sealing
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("invariant: XChaCha20-Poly1305 seals any value under 256 GiB");
        let mut body = nonce.to_vec();
        body.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{VERSION}:{}:{}",
            self.sealing.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// The plaintext of `stored` sealed for `context`; a legacy plaintext
    /// (no `sealed:` prefix) is returned as it is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        if version != VERSION {
            return Err(SealError::UnsupportedVersion(version.to_owned()));
        }
        let key = std::iter::once(&self.sealing)
            .chain(&self.older)
            .find(|k| k.id == key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let aad = associated_data(key_id, context);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Rejected(key_id.to_owned()))?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }
}

/// What a ciphertext is bound to: its format, key and place.
fn associated_data(key_id: &str, context: &str) -> String {
    format!("{SEALED_PREFIX}{VERSION}:{key_id}:{context}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> Keyring {
        Keyring::new(DataKey::new(&[byte; 32]))
    }

    #[test]
    fn sealed_values_open_only_in_their_own_context() {
        let keys = ring(1);
        let sealed = keys.seal("JBSWY3DPEHPK3PXP", "users/a/mfa_secret");
        assert!(Keyring::is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert!(sealed.starts_with(&format!("sealed:v1:{}:", keys.sealing_key_id())));
        assert_eq!(
            keys.open(&sealed, "users/a/mfa_secret").unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        let id = keys.sealing_key_id().to_owned();
        assert_eq!(
            keys.open(&sealed, "users/b/mfa_secret"),
            Err(SealError::Rejected(id.clone()))
        );
        assert_eq!(
            keys.open(&sealed, "users/a/password_hash"),
            Err(SealError::Rejected(id))
        );
    }

    #[test]
    fn each_seal_draws_a_new_nonce() {
        let keys = ring(1);
        assert_ne!(keys.seal("x", "c"), keys.seal("x", "c"));
    }

    #[test]
    fn legacy_plaintext_is_read_as_it_is() {
        let keys = ring(1);
        assert_eq!(
            keys.open("JBSWY3DPEHPK3PXP", "c").unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        assert_eq!(keys.open(hash, "c").unwrap(), hash);
    }

    #[test]
    fn another_key_tampering_and_bad_formats_are_named() {
        let sealed = ring(1).seal("seed", "c");
        let other = ring(2);
        let id = ring(1).sealing_key_id().to_owned();
        assert_eq!(
            other.open(&sealed, "c"),
            Err(SealError::UnknownKey(id.clone()))
        );
        // The same key id with other key bytes cannot be forged: the id is
        // a fingerprint, and the tag is checked.
        // One character of the ciphertext (past the 32 of the nonce).
        let at = sealed.rfind(':').unwrap() + 1 + 34;
        let mut tampered = sealed.clone();
        let flipped = if &sealed[at..=at] == "A" { "B" } else { "A" };
        tampered.replace_range(at..=at, flipped);
        assert_eq!(
            ring(1).open(&tampered, "c"),
            Err(SealError::Rejected(id.clone()))
        );
        assert_eq!(
            ring(1).open("sealed:v9:x:y", "c"),
            Err(SealError::UnsupportedVersion("v9".into()))
        );
        assert_eq!(ring(1).open("sealed:v1", "c"), Err(SealError::Malformed));
        let short = format!("sealed:v1:{id}:AAAA");
        assert_eq!(ring(1).open(&short, "c"), Err(SealError::Malformed));
    }

    #[test]
    fn an_older_key_still_opens_what_it_sealed() {
        let old = ring(1).seal("seed", "c");
        let keys = Keyring::new(DataKey::new(&[2; 32])).also_opening(DataKey::new(&[1; 32]));
        assert_eq!(keys.open(&old, "c").unwrap(), "seed");
        assert!(keys
            .seal("seed", "c")
            .contains(&format!(":{}:", keys.sealing_key_id())));
        assert_eq!(format!("{keys:?}").matches("DataKey(").count(), 2);
    }
}
