//! Login throttling: the policy, and its counts in this process.
//!
//! The policy (`[api]` keys in parentheses), checked before any password
//! is hashed; a refused attempt is 429 `rate_limited` with `Retry-After`
//! and is not counted:
//! - **Failures per (account, client address)**: the first
//!   `login_failures_allowed` − 1 failures cost nothing; the
//!   `login_failures_allowed`-th and each later one make that pair wait
//!   1 s, 2 s, 4 s, ... (doubling, at most `login_lockout_secs`). The
//!   count is forgotten `login_lockout_secs` after the pair's last wait
//!   ends, or at once when the pair logs in. Failures from another address
//!   never delay the owner's pair: a stranger cannot lock anyone out.
//! - **Failures per client address, any account**: [`IP_ALLOWANCE_FACTOR`]
//!   × `login_failures_allowed` failures within `login_lockout_secs` (from
//!   the first) lock the address, for every account, until that window
//!   ends. Successes do not clear it.
//! - **Successes**: `login_successes_per_account_per_minute` per account
//!   and `login_successes_per_address_per_minute` per address, each within
//!   a minute from the first; past them, logins of that account or from
//!   that address wait until the minute ends.
//!
//! The account is the normalized email, known or not (the answer reveals
//! nothing). A client address is an IPv4 address or an IPv6 /64 (the
//! block one host usually holds; IPv4-mapped addresses count as IPv4).
//!
//! [`LocalCounts`] keeps the counts in this process; with Redis, `Auth`
//! also keeps them there ([`crate::cluster::login_counts`], the account
//! hashed in key names) and refuses when either says so, so the policy
//! holds across nodes (Redis down: each node's own counts). Memory is
//! bounded: past [`MAX_KEYS`] keys, expired entries are swept, and if none
//! expired new keys are not tracked.

use crate::config::ApiConfig;
use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Keys tracked at most.
pub const MAX_KEYS: usize = 100_000;
/// An address may fail this many times more often than one account.
pub const IP_ALLOWANCE_FACTOR: u32 = 5;
/// The first wait of a pair that used up its failures.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The window of success counts.
pub const SUCCESS_WINDOW: Duration = Duration::from_secs(60);

/// What a count belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Failures of an account from an address (`None`: address unknown).
    Pair(String, Option<IpAddr>),
    /// Failures from an address, any account.
    AddressFailures(IpAddr),
    /// Successful logins of an account.
    AccountSuccesses(String),
    /// Successful logins from an address, any account.
    AddressSuccesses(IpAddr),
}

impl Counter {
    /// The counter's name in Redis: the account as the first 16 bytes of
    /// its SHA-256 (no emails in key names).
    pub fn shared_name(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let hashed = |a: &str| hex::encode(&Sha256::digest(a.as_bytes())[..16]);
        match self {
            Counter::Pair(a, Some(ip)) => format!("p:{}:{ip}", hashed(a)),
            Counter::Pair(a, None) => format!("p:{}:-", hashed(a)),
            Counter::AddressFailures(ip) => format!("ip:{ip}"),
            Counter::AccountSuccesses(a) => format!("ok:a:{}", hashed(a)),
            Counter::AddressSuccesses(ip) => format!("ok:ip:{ip}"),
        }
    }
}

/// How a counter refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max` events within `window` (from the first) refuse until the
    /// window ends.
    Window { max: u32, window: Duration },
    /// The `allowed`-th event and each later one refuse for
    /// [`backoff`]; the count lives `cap` past the end of the last wait.
    Backoff { allowed: u32, cap: Duration },
}

impl Limit {
    /// How long a counter refuses, from its state in Redis (`count`, and
    /// `ttl_ms` as `PTTL` reports it; see `cluster::login_counts`).
    pub fn shared_wait(&self, count: u64, ttl_ms: i64) -> Option<Duration> {
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).ok().filter(|t| *t > 0)?);
        match *self {
            Limit::Window { max, .. } => (count >= u64::from(max)).then_some(ttl),
            Limit::Backoff { allowed, cap } => (count >= u64::from(allowed.max(1)))
                .then(|| ttl.checked_sub(cap))
                .flatten()
                .filter(|w| !w.is_zero()),
        }
    }
}

/// How long a pair waits after its `count`-th failure: nothing below
/// `allowed`, then [`FIRST_DELAY`] doubling per further failure, at most
/// `cap`. Never overflows.
pub fn backoff(count: u32, allowed: u32, cap: Duration) -> Duration {
    let allowed = allowed.max(1);
    if count < allowed {
        return Duration::ZERO;
    }
    let doublings = (count - allowed).min(31);
    (FIRST_DELAY * (1u32 << doublings)).min(cap)
}

/// A counter with its limit.
pub type Rule = (Counter, Limit);

/// Which counters an attempt is checked against and counts towards.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    failures_allowed: u32,
    lockout: Duration,
    successes_per_account: u32,
    successes_per_address: u32,
}

impl ThrottlePolicy {
    /// The policy of `config` (module doc).
    pub fn new(config: &ApiConfig) -> Self {
        ThrottlePolicy {
            failures_allowed: config.login_failures_allowed,
            lockout: Duration::from_secs(config.login_lockout_secs),
            successes_per_account: config.login_successes_per_account_per_minute,
            successes_per_address: config.login_successes_per_address_per_minute,
        }
    }

    /// The rules a failed attempt counts towards (none with a zero
    /// `login_lockout_secs`).
    pub fn failure_rules(&self, account: &str, ip: Option<IpAddr>) -> Vec<Rule> {
        if self.lockout.is_zero() {
            return Vec::new();
        }
        let ip = ip.map(client_address);
        let pair = Limit::Backoff {
            allowed: self.failures_allowed,
            cap: self.lockout,
        };
        let address = Limit::Window {
            max: self
                .failures_allowed
                .max(1)
                .saturating_mul(IP_ALLOWANCE_FACTOR),
            window: self.lockout,
        };
        std::iter::once((Counter::Pair(account.to_owned(), ip), pair))
            .chain(ip.map(|ip| (Counter::AddressFailures(ip), address)))
            .collect()
    }

    /// The rules a successful login counts towards.
    pub fn success_rules(&self, account: &str, ip: Option<IpAddr>) -> Vec<Rule> {
        let window = |max: u32| Limit::Window {
            max: max.max(1),
            window: SUCCESS_WINDOW,
        };
        std::iter::once((
            Counter::AccountSuccesses(account.to_owned()),
            window(self.successes_per_account),
        ))
        .chain(ip.map(|ip| {
            (
                Counter::AddressSuccesses(client_address(ip)),
                window(self.successes_per_address),
            )
        }))
        .collect()
    }

    /// Every rule an attempt is checked against.
    pub fn checked_rules(&self, account: &str, ip: Option<IpAddr>) -> Vec<Rule> {
        let mut rules = self.failure_rules(account, ip);
        rules.extend(self.success_rules(account, ip));
        rules
    }

    /// The count a successful login clears: its pair's failures.
    pub fn cleared_on_success(&self, account: &str, ip: Option<IpAddr>) -> Counter {
        Counter::Pair(account.to_owned(), ip.map(client_address))
    }
}

/// The address a client is counted as: IPv4 as is (IPv4-mapped IPv6
/// too), IPv6 by its /64.
pub fn client_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// Seconds of `Retry-After` for `wait` (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// One counter's state.
#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    /// Backoff: refused until then.
    blocked_until: Instant,
    /// Forgotten from then on.
    expires: Instant,
}

/// The counts of this process.
#[derive(Default)]
pub struct LocalCounts {
    entries: DashMap<Counter, Entry>,
}

impl LocalCounts {
    /// How long the longest-refusing of `rules` refuses; `None` if none
    /// refuses.
    pub fn wait(&self, rules: &[Rule]) -> Option<Duration> {
        let now = Instant::now();
        rules
            .iter()
            .filter_map(|(counter, limit)| {
                let e = *self.entries.get(counter)?;
                if e.expires <= now {
                    return None;
                }
                let until = match *limit {
                    Limit::Window { max, .. } => (e.count >= max).then_some(e.expires)?,
                    Limit::Backoff { .. } => e.blocked_until,
                };
                (until > now).then(|| until - now)
            })
            .max()
    }

    /// Counts one event against each of `rules`.
    pub fn record(&self, rules: &[Rule]) {
        let now = Instant::now();
        if self.entries.len() >= MAX_KEYS {
            self.entries.retain(|_, e| e.expires > now);
        }
        for (counter, limit) in rules {
            if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(counter) {
                continue;
            }
            let fresh = Entry {
                count: 0,
                blocked_until: now,
                expires: match *limit {
                    Limit::Window { window, .. } => now + window,
                    Limit::Backoff { .. } => now,
                },
            };
            let mut e = self.entries.entry(counter.clone()).or_insert(fresh);
            if e.expires <= now {
                *e = fresh;
            }
            e.count = e.count.saturating_add(1);
            if let Limit::Backoff { allowed, cap } = *limit {
                e.blocked_until = now + backoff(e.count, allowed, cap);
                e.expires = e.blocked_until + cap;
            }
        }
    }

    /// Forgets `counter`.
    pub fn clear(&self, counter: &Counter) {
        self.entries.remove(counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const OWNER: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
    const STRANGER: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));

    fn policy(allowed: u32, lockout_secs: u64) -> ThrottlePolicy {
        ThrottlePolicy::new(&ApiConfig {
            login_failures_allowed: allowed,
            login_lockout_secs: lockout_secs,
            login_successes_per_account_per_minute: 3,
            login_successes_per_address_per_minute: 4,
            ..ApiConfig::default()
        })
    }

    fn fail(p: &ThrottlePolicy, c: &LocalCounts, account: &str, ip: Option<IpAddr>) {
        c.record(&p.failure_rules(account, ip));
    }

    fn wait(p: &ThrottlePolicy, c: &LocalCounts, account: &str, ip: Option<IpAddr>) -> u64 {
        c.wait(&p.checked_rules(account, ip))
            .map_or(0, retry_after_secs)
    }

    #[test]
    fn backoff_doubles_from_the_allowed_failure_up_to_the_cap() {
        let cap = Duration::from_secs(300);
        let secs: Vec<u64> = (1..=15).map(|n| backoff(n, 5, cap).as_secs()).collect();
        assert_eq!(
            secs,
            [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        );
        assert_eq!(backoff(u32::MAX, 5, cap), cap);
        assert_eq!(backoff(1, 0, cap), FIRST_DELAY);
    }

    #[test]
    fn a_pair_waits_longer_after_each_failure_past_the_allowance() {
        let (p, c) = (policy(3, 300), LocalCounts::default());
        for _ in 0..2 {
            fail(&p, &c, "a", STRANGER);
            assert_eq!(wait(&p, &c, "a", STRANGER), 0);
        }
        let mut waits = Vec::new();
        for _ in 0..4 {
            fail(&p, &c, "a", STRANGER);
            waits.push(wait(&p, &c, "a", STRANGER));
        }
        assert_eq!(waits, [1, 2, 4, 8]);
    }

    #[test]
    fn a_strangers_failures_never_delay_the_owners_address() {
        let (p, c) = (policy(2, 300), LocalCounts::default());
        for _ in 0..20 {
            fail(&p, &c, "owner@x", STRANGER);
        }
        assert!(wait(&p, &c, "owner@x", STRANGER) > 0);
        assert_eq!(wait(&p, &c, "owner@x", OWNER), 0);
    }

    #[test]
    fn an_address_failing_across_accounts_is_locked_for_the_window() {
        let (p, c) = (policy(2, 60), LocalCounts::default());
        for i in 0..2 * IP_ALLOWANCE_FACTOR {
            assert_eq!(wait(&p, &c, "victim", STRANGER), 0, "after {i}");
            fail(&p, &c, &format!("guess{i}"), STRANGER);
        }
        assert!((59..=60).contains(&wait(&p, &c, "victim", STRANGER)));
        assert_eq!(wait(&p, &c, "victim", OWNER), 0);
    }

    #[test]
    fn success_clears_the_pair_not_the_address() {
        let (p, c) = (policy(1, 60), LocalCounts::default());
        for i in 0..IP_ALLOWANCE_FACTOR {
            fail(&p, &c, if i == 0 { "a" } else { "b" }, OWNER);
        }
        c.clear(&p.cleared_on_success("a", OWNER));
        assert_eq!(c.wait(&p.failure_rules("a", OWNER)[..1]), None);
        assert!(wait(&p, &c, "a", OWNER) > 0, "the address is still locked");
    }

    #[test]
    fn successes_are_limited_per_account_and_per_address() {
        let (p, c) = (policy(5, 300), LocalCounts::default());
        for _ in 0..3 {
            assert_eq!(wait(&p, &c, "a", OWNER), 0);
            c.record(&p.success_rules("a", OWNER));
        }
        assert!((59..=60).contains(&wait(&p, &c, "a", OWNER)));
        assert!(wait(&p, &c, "a", STRANGER) > 0, "per account");
        assert_eq!(wait(&p, &c, "b", OWNER), 0);
        c.record(&p.success_rules("b", OWNER));
        assert!(wait(&p, &c, "c", OWNER) > 0, "4 per address");
        assert_eq!(wait(&p, &c, "c", STRANGER), 0);
    }

    #[test]
    fn counts_expire() {
        let c = LocalCounts::default();
        let rule = |limit| [(Counter::AccountSuccesses("a".into()), limit)];
        let window = Limit::Window {
            max: 1,
            window: Duration::from_millis(20),
        };
        c.record(&rule(window));
        assert!(c.wait(&rule(window)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.wait(&rule(window)), None);
        // A pair's count is forgotten `cap` after its wait ends.
        let pair = Limit::Backoff {
            allowed: 2,
            cap: Duration::from_millis(20),
        };
        c.record(&rule(pair));
        c.record(&rule(pair));
        assert!(c.wait(&rule(pair)).is_some());
        std::thread::sleep(Duration::from_millis(50));
        c.record(&rule(pair));
        assert_eq!(c.wait(&rule(pair)), None, "counting from 1 again");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_address(a), client_address(b));
        assert_ne!(client_address(a), client_address(other));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            client_address(mapped),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(
            client_address(a),
            IpAddr::V6("2001:db8:1:2::".parse::<Ipv6Addr>().unwrap())
        );
        let p = policy(1, 60);
        assert_eq!(
            p.cleared_on_success("x", Some(b)),
            Counter::Pair("x".into(), Some(client_address(a)))
        );
        assert!(!Counter::Pair("alice@example.com".into(), None)
            .shared_name()
            .contains("alice"));
    }
}
