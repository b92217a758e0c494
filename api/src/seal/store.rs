//! [`Sealing`]: seals the secret fields of the records a [`Store`]
//! holds on their way in and opens them on their way out, in front of
//! either store.
//!
//! Why at the store boundary and not in the auth code: one place covers
//! both stores and every caller (registration, MFA set-up and verify,
//! login, profile and KYC updates all write users), so no path can write
//! a secret in the clear by forgetting to seal it, and the auth code
//! keeps handling plaintext. The cost is that this file must know which
//! fields are secret: [`SEALED_USER_FIELDS`].
//!
//! What is sealed, and what is not:
//! - `User.mfa_secret` (the TOTP seed: whoever reads it can make codes);
//! - `User.password_hash` (argon2id is slow to attack, not impossible;
//!   sealed, a stolen store or backup cannot be attacked offline without
//!   the data key);
//! - not `RefreshFamily.current_hash` (SHA-256 of a random 256-bit token:
//!   it cannot be reversed, and it is compared on every refresh);
//! - not `IdempotencyRecord.fingerprint` (a digest of a request body);
//! - not emails, names, phones (personal data, not secrets: the email is
//!   the unique lookup key; they rely on the store's own encryption at
//!   rest: DynamoDB with the KMS key, the data directory's 0700);
//! - not transactions (amounts, addresses, statuses are queried and
//!   indexed), checkpoints, receipts, the outbox (events carry no secret).

use super::Keyring;
use crate::secret::Secret;
use crate::store::layered::{LayeredStore, StoreLayer};
use crate::store::*;
use std::sync::Arc;

/// The fields of `User` stored sealed.
pub const SEALED_USER_FIELDS: [&str; 2] = ["mfa_secret", "password_hash"];

/// The [`StoreLayer`] that seals users' secret fields at rest (see the
/// module docs). Reads return plaintext (legacy plaintext values as they
/// are); writes seal, so a legacy value is sealed by its record's next
/// write. A sealed value that does not open (another key, tampered, moved
/// from another record) makes the read fail with
/// [`StoreError::Corrupt`] naming the user and field, never the value.
pub struct Sealing {
    keys: Arc<Keyring>,
}

impl Sealing {
    /// `inner` with users' secrets sealed under `keys`.
    pub fn store(inner: Arc<dyn Store>, keys: Keyring) -> LayeredStore {
        LayeredStore::new(
            inner,
            Sealing {
                keys: Arc::new(keys),
            },
        )
    }

    fn seal_user(&self, mut user: User) -> User {
        let context = |field: &str| context(&user.user_id, field);
        let password = self
            .keys
            .seal(user.password_hash.expose(), &context(SEALED_USER_FIELDS[1]));
        let mfa = user.mfa_secret.as_ref().map(|seed| {
            self.keys
                .seal(seed.expose(), &context(SEALED_USER_FIELDS[0]))
        });
        user.password_hash = Secret::new(password);
        user.mfa_secret = mfa.map(Secret::new);
        user
    }
}

/// The associated data of a user's field: its record and name.
fn context(user_id: &str, field: &str) -> String {
    format!("users/{user_id}/{field}")
}

impl StoreLayer for Sealing {
    fn on_commit(&self, writes: Vec<Write>) -> Vec<Write> {
        writes
            .into_iter()
            .map(|write| match write {
                Write::CreateUser(user) => Write::CreateUser(self.seal_user(user)),
                Write::UpdateUser {
                    user,
                    expected_version,
                } => Write::UpdateUser {
                    user: self.seal_user(user),
                    expected_version,
                },
                other => other,
            })
            .collect()
    }

    fn on_user(&self, mut user: User) -> Result<User, StoreError> {
        let open = |value: &Secret, field: &str| {
            self.keys
                .open(value.expose(), &context(&user.user_id, field))
                .map(Secret::new)
                .map_err(|e| {
                    tracing::error!(user_id = %user.user_id, field, error = %e, "a sealed field does not open");
                    StoreError::Corrupt(format!("user {}: {field}: {e}", user.user_id))
                })
        };
        let password = open(&user.password_hash, SEALED_USER_FIELDS[1])?;
        let mfa = user
            .mfa_secret
            .as_ref()
            .map(|seed| open(seed, SEALED_USER_FIELDS[0]))
            .transpose()?;
        user.password_hash = password;
        user.mfa_secret = mfa;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::super::DataKey;
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    fn user(id: &str, seed: Option<&str>) -> User {
        let at = crate::events::now();
        User {
            user_id: id.into(),
            email: format!("{id}@example.com"),
            password_hash: Secret::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            first_name: None,
            last_name: None,
            phone: None,
            country: None,
            kyc_status: KycStatus::None,
            kyc_updated_at: at,
            mfa_secret: seed.map(Secret::new),
            mfa_enabled: seed.is_some(),
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    fn stores() -> (tempfile::TempDir, Arc<dyn Store>, LayeredStore) {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let sealed = Sealing::store(raw.clone(), Keyring::new(DataKey::new(&[9; 32])));
        (dir, raw, sealed)
    }

    #[tokio::test]
    async fn secrets_are_sealed_in_the_inner_store_and_plain_through_this_one() {
        let (_dir, raw, sealed) = stores();
        let u = user("u1", Some("JBSWY3DPEHPK3PXP"));
        sealed
            .commit(vec![Write::CreateUser(u.clone())])
            .await
            .unwrap();
        assert_eq!(sealed.user("u1").await.unwrap(), Some(u.clone()));
        assert_eq!(
            sealed.user_by_email("u1@example.com").await.unwrap(),
            Some(u.clone())
        );
        let stored = raw.user("u1").await.unwrap().unwrap();
        for value in [
            stored.mfa_secret.as_ref().unwrap().expose(),
            stored.password_hash.expose(),
        ] {
            assert!(Keyring::is_sealed(value), "{value}");
        }
        assert!(!stored.mfa_secret.unwrap().expose().contains("JBSWY3DP"));
    }

    #[tokio::test]
    async fn a_seed_moved_to_another_user_does_not_open() {
        let (_dir, raw, sealed) = stores();
        sealed
            .commit(vec![
                Write::CreateUser(user("a", Some("JBSWY3DPEHPK3PXP"))),
                Write::CreateUser(user("b", None)),
            ])
            .await
            .unwrap();
        let a = raw.user("a").await.unwrap().unwrap();
        let mut b = raw.user("b").await.unwrap().unwrap();
        b.mfa_secret = a.mfa_secret.clone();
        b.version = 2;
        raw.commit(vec![Write::UpdateUser {
            user: b,
            expected_version: 1,
        }])
        .await
        .unwrap();
        let err = sealed.user("b").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("user b: mfa_secret") && !m.contains("JBSW")),
            "{err:?}"
        );
        assert!(sealed.user("a").await.unwrap().is_some());
        // The KYC check reads the status alone: it opens no sealed field,
        // so it answers for a record whose secrets do not open.
        assert_eq!(sealed.kyc_status("b").await.unwrap(), Some(KycStatus::None));
        assert_eq!(sealed.kyc_status("nobody").await.unwrap(), None);
    }

    #[tokio::test]
    async fn legacy_plaintext_is_read_and_sealed_by_the_next_write() {
        let (_dir, raw, sealed) = stores();
        let legacy = user("old", Some("JBSWY3DPEHPK3PXP"));
        raw.commit(vec![Write::CreateUser(legacy.clone())])
            .await
            .unwrap();
        let read = sealed.user("old").await.unwrap().unwrap();
        assert_eq!(read, legacy);
        let mut next = read;
        next.first_name = Some("Ada".into());
        next.version = 2;
        sealed
            .commit(vec![Write::UpdateUser {
                user: next.clone(),
                expected_version: 1,
            }])
            .await
            .unwrap();
        let stored = raw.user("old").await.unwrap().unwrap();
        assert!(Keyring::is_sealed(stored.mfa_secret.unwrap().expose()));
        assert!(Keyring::is_sealed(stored.password_hash.expose()));
        assert_eq!(sealed.user("old").await.unwrap(), Some(next));
    }
}
