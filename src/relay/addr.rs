//! Fake IPv6 socket addresses for relayed peers, and the bounded table that maps them back.
//!
//! quinn addresses peers by `SocketAddr`, but a relayed peer is reached by its key. Each key gets
//! a deterministic address in the unique-local range `fd00::/8`: the 15 key bytes after the `fd`
//! prefix byte, then 2 more key bytes as the port. Every address is IPv6 because quinn derives its
//! address family from `local_addr()` and refuses a v6 remote on a v4 endpoint.
//!
//! The mapping keeps 17 of the 32 key bytes, so it is lossy: the way back is a table of the keys
//! actually seen ([`AddrBook`]), bounded by [`limits::RELAY_ADDR_BOOK_MAX`]. Two keys that share
//! those 17 bytes collide; the second is refused rather than allowed to take over the first's
//! address (a collision cannot be ground out: it is a 136-bit preimage). Sans-IO: no locks here.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::identity::FeedId;
use crate::limits;

/// The fake address a relayed peer with key `key` is reached at.
pub fn fake_addr(key: &FeedId) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..16].copy_from_slice(&key.0[0..15]);
    // quinn refuses to dial port 0; the table resolves the (harmless) extra collision this adds.
    let port = u16::from_be_bytes([key.0[15], key.0[16]]).max(1);
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
}

/// Why a key could not be entered in an [`AddrBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Another key already holds the fake address this key maps to.
    #[error("fake address {addr} already belongs to {}", .holder.short())]
    Collision {
        /// The contested address.
        addr: SocketAddr,
        /// The key that holds it.
        holder: FeedId,
    },
}

/// Fake address → key, for the peers a virtual socket has seen, least recently used forgotten.
#[derive(Debug)]
pub struct AddrBook {
    entries: HashMap<SocketAddr, (FeedId, u64)>,
    tick: u64,
    capacity: usize,
}

impl Default for AddrBook {
    fn default() -> Self {
        Self::with_capacity(limits::RELAY_ADDR_BOOK_MAX)
    }
}

impl AddrBook {
    /// An empty book holding at most `capacity` peers (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Enters `key` (or refreshes it) and returns its fake address. When the book is full the
    /// least recently used peer is forgotten.
    pub fn insert(&mut self, key: FeedId) -> Result<SocketAddr, AddrError> {
        let addr = fake_addr(&key);
        self.tick += 1;
        if let Some((holder, used)) = self.entries.get_mut(&addr) {
            if *holder != key {
                return Err(AddrError::Collision {
                    addr,
                    holder: *holder,
                });
            }
            *used = self.tick;
            return Ok(addr);
        }
        if self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(addr, _)| *addr);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(addr, (key, self.tick));
        Ok(addr)
    }

    /// The key behind `addr`, if known; marks it as recently used.
    pub fn lookup(&mut self, addr: &SocketAddr) -> Option<FeedId> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(addr).map(|(key, used)| {
            *used = tick;
            *key
        })
    }

    /// Forgets `key`; true if it was known.
    pub fn remove(&mut self, key: &FeedId) -> bool {
        let addr = fake_addr(key);
        match self.entries.get(&addr) {
            Some((holder, _)) if holder == key => self.entries.remove(&addr).is_some(),
            _ => false,
        }
    }

    /// Peers currently known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no peer is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> FeedId {
        let mut k = [seed; 32];
        k[31] = seed.wrapping_mul(7);
        FeedId(k)
    }

    #[test]
    fn addresses_are_deterministic_unique_local_v6_and_never_port_zero() {
        let a = fake_addr(&key(1));
        assert_eq!(a, fake_addr(&key(1)));
        assert_ne!(a, fake_addr(&key(2)));
        let SocketAddr::V6(v6) = a else {
            panic!("not v6")
        };
        assert_eq!(v6.ip().octets()[0], 0xfd);
        assert_eq!(&v6.ip().octets()[1..], &key(1).0[..15]);
        let zero_port = FeedId([0; 32]);
        assert_eq!(fake_addr(&zero_port).port(), 1);
    }

    #[test]
    fn round_trips_and_refuses_collisions() {
        let mut book = AddrBook::with_capacity(4);
        let a = book.insert(key(1)).expect("insert");
        assert_eq!(book.lookup(&a), Some(key(1)));
        let mut twin = key(1);
        twin.0[31] ^= 0xff; // same 17 leading bytes, different key
        assert_eq!(
            book.insert(twin),
            Err(AddrError::Collision {
                addr: a,
                holder: key(1)
            })
        );
        assert_eq!(book.lookup(&a), Some(key(1)));
        assert!(!book.remove(&twin));
        assert!(book.remove(&key(1)));
        assert_eq!(book.lookup(&a), None);
    }

    #[test]
    fn forgets_the_least_recently_used_when_full() {
        let mut book = AddrBook::with_capacity(2);
        let a = book.insert(key(1)).expect("a");
        let b = book.insert(key(2)).expect("b");
        assert_eq!(book.lookup(&a), Some(key(1))); // b is now the oldest
        let c = book.insert(key(3)).expect("c");
        assert_eq!(book.len(), 2);
        assert_eq!(book.lookup(&b), None);
        assert_eq!(book.lookup(&a), Some(key(1)));
        assert_eq!(book.lookup(&c), Some(key(3)));
    }
}
