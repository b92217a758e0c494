//! [`LiveSecret`]: a secret whose value may change while the service runs
//! (a Secrets Manager rotation), and [`Derived`]: what is parsed from one
//! (an RSA key, an OAuth token), made again when it changes.

use crate::secret::Secret;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a webhook verifier still accepts the previous value after a
/// change: a provider keeps signing with the old secret for a while
/// during a rotation (docs/OPERATIONS.md, "Secret rotation").
pub const ROTATION_GRACE: Duration = Duration::from_secs(3600);

/// One value and where it stands.
#[derive(Clone)]
struct Versioned {
    current: Secret,
    /// Starts at 0, one more at each change.
    version: u64,
    /// The value before the last change, and when it changed.
    previous: Option<(Secret, Instant)>,
}

/// A secret's value now. Cheap to clone (clones share the value); `Debug`
/// prints `<redacted>`. A plain value never changes; a Secrets Manager
/// reference is replaced by the refresh task ([`super::ProviderSecrets`]).
#[derive(Clone)]
pub struct LiveSecret {
    value: Arc<watch::Sender<Versioned>>,
    grace: Duration,
}

impl LiveSecret {
    /// A value that never changes.
    pub fn fixed(value: Secret) -> Self {
        Self::with_grace(value, ROTATION_GRACE)
    }

    /// A value whose previous one [`verify`](Self::verify) accepts for
    /// `grace` after a change.
    pub fn with_grace(value: Secret, grace: Duration) -> Self {
        let (value, _) = watch::channel(Versioned {
            current: value,
            version: 0,
            previous: None,
        });
        LiveSecret {
            value: Arc::new(value),
            grace,
        }
    }

    /// The value now.
    pub fn current(&self) -> Secret {
        self.value.borrow().current.clone()
    }

    /// The value now with its version (0 at start, one more per change).
    pub fn versioned(&self) -> (u64, Secret) {
        let v = self.value.borrow();
        (v.version, v.current.clone())
    }

    /// Sets a newly fetched value; returns whether it differs from the
    /// current one (the current one then becomes the previous).
    pub fn replace(&self, value: Secret) -> bool {
        self.value.send_if_modified(|v| {
            if v.current == value {
                return false;
            }
            let old = std::mem::replace(&mut v.current, value);
            v.previous = Some((old, Instant::now()));
            v.version += 1;
            true
        })
    }

    /// `check` with the current value, else with the previous one while it
    /// is within the grace period of the last change: a webhook signed
    /// with either passes. The error is the current value's.
    pub fn verify<E>(&self, check: impl Fn(&Secret) -> Result<(), E>) -> Result<(), E> {
        let v = self.value.borrow().clone();
        let first = check(&v.current);
        match (&first, &v.previous) {
            (Err(_), Some((old, at))) if at.elapsed() < self.grace => check(old).or(first),
            _ => first,
        }
    }
}

impl fmt::Debug for LiveSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A value parsed from a [`LiveSecret`], kept until the secret changes.
pub struct Derived<T> {
    kept: parking_lot::Mutex<Option<(u64, Arc<T>)>>,
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Derived {
            kept: parking_lot::Mutex::new(None),
        }
    }
}

impl<T> Derived<T> {
    /// The value made from `secret`'s current version, made with `make`
    /// when there is none yet or the secret has changed since.
    pub fn get<E>(
        &self,
        secret: &LiveSecret,
        make: impl FnOnce(&Secret) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let (version, value) = secret.versioned();
        let mut kept = self.kept.lock();
        if let Some((_, made)) = kept.as_ref().filter(|(v, _)| *v == version) {
            return Ok(made.clone());
        }
        let made = Arc::new(make(&value)?);
        *kept = Some((version, made.clone()));
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_the_previous_value_for_the_grace_only() {
        let live = LiveSecret::with_grace(Secret::new("old"), Duration::from_millis(50));
        assert_eq!(format!("{live:?}"), "<redacted>");
        let is =
            |want: &'static str| move |s: &Secret| (s.expose() == want).then_some(()).ok_or(want);
        assert_eq!(live.verify(is("old")), Ok(()));
        assert!(!live.replace(Secret::new("old")), "same value: no change");
        assert!(live.replace(Secret::new("new")));
        assert_eq!(live.versioned(), (1, Secret::new("new")));
        assert_eq!(live.verify(is("new")), Ok(()));
        assert_eq!(live.verify(is("old")), Ok(()), "within the grace");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(live.verify(is("old")), Err("old"), "after the grace");
        assert_eq!(live.verify(is("new")), Ok(()));
    }

    #[test]
    fn derived_values_are_made_again_after_a_change_only() {
        let live = LiveSecret::fixed(Secret::new("a"));
        let derived = Derived::default();
        let made = std::sync::atomic::AtomicU32::new(0);
        let make = |s: &Secret| {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, ()>(s.expose().to_uppercase())
        };
        assert_eq!(*derived.get(&live, make).unwrap(), "A");
        assert_eq!(*derived.get(&live, make).unwrap(), "A");
        live.replace(Secret::new("b"));
        assert_eq!(*derived.get(&live, make).unwrap(), "B");
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
