//! Login throttling: failed logins counted per account (normalized email,
//! known or not, so the answer reveals nothing) and per client IP. Once an
//! account has `allowed` failures inside its window (which starts at its
//! first failure and lasts `lockout`), or an IP [`IP_ALLOWANCE_FACTOR`]
//! times that many (many users share an address behind NAT, and one
//! locked account must not lock out its neighbours), further attempts are
//! refused with 429 and `Retry-After` until the window ends. Attempts
//! refused this way are not counted. A successful login clears its
//! account's count, not its IP's.
//!
//! This struct counts in process; with Redis, `Auth` also counts in Redis
//! ([`crate::cluster::sessions`]) so every node sees every failure. Memory
//! is bounded:
//! past [`MAX_KEYS`] keys, expired windows are swept, and if none expired
//! the new key is not tracked.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Keys tracked at most.
pub const MAX_KEYS: usize = 100_000;
/// An IP may fail this many times more often than one account.
pub const IP_ALLOWANCE_FACTOR: u32 = 5;

/// Failure counts per account and per IP.
pub struct LoginThrottle {
    allowed: u32,
    lockout: Duration,
    failures: DashMap<ThrottleKey, Window>,
}

/// What a failure count belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    Account(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl LoginThrottle {
    /// `allowed` failures per account (and `IP_ALLOWANCE_FACTOR` times
    /// that per IP) within `lockout`, then refusal until the window ends.
    pub fn new(allowed: u32, lockout: Duration) -> Self {
        LoginThrottle {
            allowed,
            lockout,
            failures: DashMap::new(),
        }
    }

    /// Each key this attempt counts against, with the failures it allows,
    /// as named in Redis (the account hashed: no emails in key names).
    pub fn shared_keys(&self, account: &str, ip: Option<IpAddr>) -> Vec<(String, u32)> {
        use sha2::{Digest as _, Sha256};
        keys(account, ip)
            .map(|key| {
                let allowed = self.allowed_for(&key);
                let name = match key {
                    ThrottleKey::Account(a) => {
                        format!("a:{}", hex::encode(&Sha256::digest(a.as_bytes())[..16]))
                    }
                    ThrottleKey::Ip(ip) => format!("ip:{ip}"),
                };
                (name, allowed)
            })
            .collect()
    }

    /// How long a window lasts.
    pub fn lockout(&self) -> Duration {
        self.lockout
    }

    /// `Err(seconds to wait)` when the account or the IP is locked out.
    pub fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let wait = keys(account, ip)
            .filter_map(|key| {
                let window = *self.failures.get(&key)?;
                let ends = window.started + self.lockout;
                (window.failures >= self.allowed_for(&key) && ends > now).then(|| ends - now)
            })
            .max();
        match wait {
            Some(wait) => Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
            None => Ok(()),
        }
    }

    fn allowed_for(&self, key: &ThrottleKey) -> u32 {
        match key {
            ThrottleKey::Account(_) => self.allowed,
            ThrottleKey::Ip(_) => self.allowed.saturating_mul(IP_ALLOWANCE_FACTOR),
        }
    }

    /// Counts a failed login for the account and the IP.
    pub fn record_failure(&self, account: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        if self.failures.len() >= MAX_KEYS {
            self.failures.retain(|_, w| w.started + self.lockout > now);
        }
        for key in keys(account, ip) {
            if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(&key) {
                continue;
            }
            let mut window = self.failures.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if window.started + self.lockout <= now {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }

    /// Forgets the account's failures (after a successful login).
    pub fn clear_account(&self, account: &str) {
        self.failures
            .remove(&ThrottleKey::Account(account.to_owned()));
    }
}

fn keys(account: &str, ip: Option<IpAddr>) -> impl Iterator<Item = ThrottleKey> {
    std::iter::once(ThrottleKey::Account(account.to_owned())).chain(ip.map(ThrottleKey::Ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn account_locks_after_allowed_failures() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(t.check("a", None), Ok(()));
            t.record_failure("a", None);
        }
        let wait = t.check("a", None).unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(t.check("b", None), Ok(()));
    }

    #[test]
    fn ip_locks_across_accounts_at_a_higher_count() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        for i in 0..2 * IP_ALLOWANCE_FACTOR {
            assert_eq!(t.check("c", IP), Ok(()), "after {i}");
            t.record_failure(&format!("guess{i}"), IP);
        }
        assert!(t.check("c", IP).is_err());
        assert_eq!(t.check("c", None), Ok(()));
    }

    #[test]
    fn a_locked_account_does_not_lock_its_ip() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        t.record_failure("a", IP);
        t.record_failure("a", IP);
        assert!(t.check("a", IP).is_err());
        assert_eq!(t.check("b", IP), Ok(()));
    }

    #[test]
    fn success_clears_the_account_only() {
        let t = LoginThrottle::new(1, Duration::from_secs(60));
        for i in 0..IP_ALLOWANCE_FACTOR {
            t.record_failure(if i == 0 { "a" } else { "b" }, IP);
        }
        t.clear_account("a");
        assert_eq!(t.check("a", None), Ok(()));
        assert!(t.check("a", IP).is_err());
    }

    #[test]
    fn window_expires() {
        let t = LoginThrottle::new(1, Duration::from_millis(20));
        t.record_failure("a", None);
        assert!(t.check("a", None).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(t.check("a", None), Ok(()));
        t.record_failure("a", None);
        assert!(t.check("a", None).is_err());
    }
}
