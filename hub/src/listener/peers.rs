//! Open connections per peer address, capped at accept
//! (`http.max_connections_per_ip`).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Counts of open connections per peer address; an address at the cap
/// gets no [`PeerSlot`].
///
/// IPv4-mapped IPv6 peers count as their IPv4 address; other IPv6 peers
/// count per /64 (the block one host usually holds, so a host cannot
/// escape the cap by cycling addresses). Memory: one entry per address
/// with at least one open connection.
#[derive(Debug)]
pub struct PeerLimits {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a peer; dropping it frees the place.
#[derive(Debug)]
pub struct PeerSlot {
    limits: Arc<PeerLimits>,
    key: IpAddr,
}

impl PeerLimits {
    /// At most `max` open connections per address (at least 1).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PeerLimits {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection of `peer`, or `None` when it has
    /// `max` open.
    pub fn try_acquire(self: &Arc<Self>, peer: IpAddr) -> Option<PeerSlot> {
        let key = key(peer);
        let mut open = self.open.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            limits: self.clone(),
            key,
        })
    }

    /// Open connections counted against `peer`'s address.
    pub fn open(&self, peer: IpAddr) -> usize {
        self.open.lock().get(&key(peer)).copied().unwrap_or(0)
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The address a peer is counted under.
fn key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_cap_holds_per_address_and_frees_on_drop() {
        let limits = PeerLimits::new(2);
        let a = limits.try_acquire(ip("127.0.0.1")).unwrap();
        let b = limits.try_acquire(ip("127.0.0.1")).unwrap();
        assert!(limits.try_acquire(ip("127.0.0.1")).is_none());
        let other = limits.try_acquire(ip("127.0.0.2")).unwrap();
        assert_eq!(limits.open(ip("127.0.0.1")), 2);
        drop(a);
        assert_eq!(limits.open(ip("127.0.0.1")), 1);
        let c = limits.try_acquire(ip("127.0.0.1")).unwrap();
        drop((b, c, other));
        assert_eq!(limits.addresses(), 0, "no entry left for closed peers");
    }

    #[test]
    fn mapped_addresses_count_as_ipv4_and_ipv6_per_64() {
        let limits = PeerLimits::new(1);
        let _v4 = limits.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(limits.try_acquire(ip("::ffff:192.0.2.1")).is_none());
        let _v6 = limits.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(limits.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(limits.try_acquire(ip("2001:db8:1:3::1")).is_some());
    }
}
