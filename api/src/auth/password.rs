//! Credentials: the email and password policies of `POST /auth/register`
//! and argon2id hashing.
//!
//! Hashing is deliberately slow and memory-hungry (argon2id, the crate's
//! OWASP defaults: 19 MiB, 2 passes), so it runs on a fixed pool of
//! threads, each reusing one buffer ([`super::hash_pool`]): memory is
//! `argon2_threads` × 19 MiB whatever the load, and a burst of
//! logins queues. Logins for unknown emails verify against a dummy hash so
//! they take as long as real ones.

use super::hash_pool::{self, HashPool};
use thiserror::Error;

pub use super::hash_pool::HashError;

/// Longest email accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Password length bounds, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 128;

/// Why an email was refused (422 `invalid_email`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    #[error("email is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("email must look like name@example.com")]
    Malformed,
}

/// Why a password was refused (422 `weak_password`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_LEN} characters")]
    TooLong,
    #[error(
        "password must contain an upper-case letter, a lower-case letter, a digit and a symbol"
    )]
    MissingClass,
    #[error("password must not contain control characters")]
    ControlCharacter,
}

/// Validates and normalizes (trimmed, lower-case) an email address.
/// ASCII only; one `@`; a dotted domain of letters, digits and hyphens.
pub fn normalize_valid_email(email: &str) -> Result<String, EmailError> {
    let email = crate::store::normalize_email(email);
    if email.len() > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = email.split_once('@').ok_or(EmailError::Malformed)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err(EmailError::Malformed)
    }
}

/// Checks the password policy (docs/API.md): 12..=128 characters with an
/// upper-case letter, a lower-case letter, a digit and a symbol.
pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacter);
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    let symbol = |c: &char| !c.is_alphanumeric() && !c.is_whitespace();
    if has(|c| c.is_uppercase())
        && has(|c| c.is_lowercase())
        && has(|c| c.is_numeric())
        && has(symbol)
    {
        Ok(())
    } else {
        Err(PasswordError::MissingClass)
    }
}

/// Hashes and verifies passwords on the [`HashPool`]: a fixed number of
/// threads with one preallocated argon2 buffer each (its module doc has
/// the memory budget).
pub struct Passwords {
    pool: HashPool,
    /// A real hash of a random password: unknown emails verify against it.
    dummy_hash: String,
}

impl Passwords {
    /// Starts `threads` hashing threads and prepares the dummy hash (one
    /// argon2 run).
    pub async fn new(threads: usize) -> Result<Self, HashError> {
        let mut passwords = Passwords {
            pool: HashPool::new(threads)?,
            dummy_hash: String::new(),
        };
        let random: [u8; 16] = rand::random();
        passwords.dummy_hash = passwords.hash(hex::encode(random)).await?;
        Ok(passwords)
    }

    /// Hashing threads (each holds [`hash_pool::HASH_MEMORY_BYTES`]).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// An argon2id PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let salt: [u8; 16] = rand::random();
        self.pool
            .run(move |buffer| hash_pool::hash_in(buffer, password.as_bytes(), &salt))
            .await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user, or
    /// an account without a local password) it spends the same time on the
    /// dummy hash and answers false. A stored hash that is malformed or
    /// asks for more than the pool's buffer never matches (logged).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let checked = self
            .pool
            .run(move |buffer| hash_pool::verify_in(buffer, password.as_bytes(), &hash))
            .await?;
        match checked {
            Ok(matches) => Ok(real && matches),
            Err(why) => {
                tracing::warn!(reason = %why, "stored password hash not verified");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_valid_email("  Alice.B+x@Example.COM ").unwrap(),
            "alice.b+x@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a@b@example.com",
            "al ice@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            ".alice@example.com",
            "alice..b@example.com",
            "ålice@example.com",
        ] {
            assert_eq!(
                normalize_valid_email(bad),
                Err(EmailError::Malformed),
                "{bad}"
            );
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert_eq!(normalize_valid_email(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn password_policy() {
        assert_eq!(check_password_policy("Correct-Horse-9-Battery"), Ok(()));
        assert_eq!(check_password_policy("Aa1!"), Err(PasswordError::TooShort));
        assert_eq!(
            check_password_policy(&format!("Aa1!{}", "x".repeat(125))),
            Err(PasswordError::TooLong)
        );
        for missing in [
            "correct-horse-9-battery",
            "CORRECT-HORSE-9-BATTERY",
            "Correct-Horse-N-Battery",
            "CorrectHorse9Battery",
            "Correct Horse 9 Battery",
        ] {
            assert_eq!(
                check_password_policy(missing),
                Err(PasswordError::MissingClass),
                "{missing}"
            );
        }
        assert_eq!(
            check_password_policy("Correct-Horse-9\u{7}Battery"),
            Err(PasswordError::ControlCharacter)
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let p = Passwords::new(1).await.unwrap();
        let hash = p.hash("Correct-Horse-9-Battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(p
            .verify("Correct-Horse-9-Battery".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!p.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
        assert!(!p
            .verify("anything".into(), Some("not a hash".into()))
            .await
            .unwrap());
    }
}
