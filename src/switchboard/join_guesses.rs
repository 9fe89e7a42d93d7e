//! Wrong invite codes, throttled per client key and per source address, sans-IO.
//!
//! Why: a refused `Join` ends the session, but a client can reconnect and guess again at once
//! (665 guesses a second from one client were measured). Codes are 128-bit, so guessing one is
//! hopeless, but every guess is work (a QUIC handshake, a lock, a lookup) that nothing bounded.
//! Here each key and each source address carries a debt of wrong codes that is forgiven one per
//! [`JOIN_GUESS_INTERVAL`]; past a burst ([`JOIN_GUESSES_BURST`] per key,
//! [`JOIN_GUESSES_ADDR_BURST`] per address) a join that would check a code is refused without
//! checking it, saying when to try again. A fresh key per connection does not escape: the
//! address is throttled too, an IPv6 address by its /64 (one host usually holds a whole /64).
//!
//! Both tables are bounded ([`JOIN_GUESS_TABLE_MAX`]); an entry whose debt is forgiven is
//! forgotten when room is needed, and while a table is full of live debts every newcomer shares
//! one overflow entry (throttled together rather than forgotten). Time is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::identity::FeedId;
use crate::limits::{
    JOIN_GUESSES_ADDR_BURST, JOIN_GUESSES_BURST, JOIN_GUESS_INTERVAL, JOIN_GUESS_TABLE_MAX,
};

/// A join refused because its key or address sent too many wrong invite codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many wrong invite codes; try again in {retry_after_secs} s")]
pub struct TooManyGuesses {
    /// Whole seconds until one more code will be checked (at least 1).
    pub retry_after_secs: u64,
}

/// Wrong codes not yet forgiven, as of `last`.
#[derive(Debug, Clone, Copy)]
struct Debt {
    owed: f64,
    last: Instant,
}

impl Debt {
    /// The debt left at `now`, one forgiven per [`JOIN_GUESS_INTERVAL`].
    fn at(&self, now: Instant) -> f64 {
        let forgiven = now.saturating_duration_since(self.last).as_secs_f64()
            / JOIN_GUESS_INTERVAL.as_secs_f64();
        (self.owed - forgiven).max(0.0)
    }
}

/// One table of debts (by key, or by address), bounded.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Debt>,
    /// Shared by every newcomer while the table is full of live debts.
    overflow: Option<Debt>,
    burst: f64,
    max: usize,
}

impl<K: Eq + Hash + Copy> Table<K> {
    fn new(burst: u32, max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            overflow: None,
            burst: f64::from(burst),
            max,
        }
    }

    /// The debt `k` carries at `now` (the overflow's if `k` is not in a full table).
    fn owed(&self, k: &K, now: Instant) -> f64 {
        match self.entries.get(k) {
            Some(debt) => debt.at(now),
            None if self.entries.len() >= self.max => self.overflow.map_or(0.0, |d| d.at(now)),
            None => 0.0,
        }
    }

    /// How long until `k` may have one more code checked; `None`: now.
    fn wait(&self, k: &K, now: Instant) -> Option<Duration> {
        let over = self.owed(k, now) + 1.0 - self.burst;
        (over > 0.0).then(|| JOIN_GUESS_INTERVAL.mul_f64(over))
    }

    /// `k` sent a wrong code at `now`.
    fn charge(&mut self, k: K, now: Instant) {
        if !self.entries.contains_key(&k) && self.entries.len() >= self.max {
            self.entries.retain(|_, debt| debt.at(now) > 0.0);
            if self.overflow.is_some_and(|d| d.at(now) <= 0.0) {
                self.overflow = None;
            }
        }
        let fresh = Debt {
            owed: 0.0,
            last: now,
        };
        let slot = if self.entries.contains_key(&k) || self.entries.len() < self.max {
            self.entries.entry(k).or_insert(fresh)
        } else {
            self.overflow.get_or_insert(fresh)
        };
        let owed = slot.at(now) + 1.0;
        *slot = Debt {
            owed,
            last: now.max(slot.last),
        };
    }
}

/// The address a debt is kept under: an IPv4 address (also when mapped into IPv6), or the /64
/// of an IPv6 address.
fn source(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Wrong invite codes by client key and by source address.
#[derive(Debug)]
pub struct JoinGuesses {
    keys: Table<FeedId>,
    addrs: Table<IpAddr>,
}

impl Default for JoinGuesses {
    fn default() -> Self {
        Self::with_max(JOIN_GUESS_TABLE_MAX)
    }
}

impl JoinGuesses {
    /// Empty tables of at most `max` entries each.
    pub fn with_max(max: usize) -> Self {
        Self {
            keys: Table::new(JOIN_GUESSES_BURST, max),
            addrs: Table::new(JOIN_GUESSES_ADDR_BURST, max),
        }
    }

    /// May `key` at `addr` have a code checked at `now`? Nothing is spent; a refusal says how
    /// long to wait (the longer of the key's and the address's waits).
    pub fn check(&self, key: &FeedId, addr: IpAddr, now: Instant) -> Result<(), TooManyGuesses> {
        let wait = self
            .keys
            .wait(key, now)
            .max(self.addrs.wait(&source(addr), now));
        match wait {
            None => Ok(()),
            Some(wait) => Err(TooManyGuesses {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }),
        }
    }

    /// `key` at `addr` sent a wrong (unknown, used or expired) code at `now`.
    pub fn wrong(&mut self, key: FeedId, addr: IpAddr, now: Instant) {
        self.keys.charge(key, now);
        self.addrs.charge(source(addr), now);
    }

    /// Keys and addresses remembered (for tests and status).
    pub fn len(&self) -> (usize, usize) {
        (self.keys.entries.len(), self.addrs.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn key(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    /// Wrong guesses `key` at `addr` gets checked at `now` until the first refusal.
    fn burst(g: &mut JoinGuesses, k: FeedId, addr: IpAddr, now: Instant) -> u32 {
        let mut n = 0;
        while g.check(&k, addr, now).is_ok() {
            g.wrong(k, addr, now);
            n += 1;
            assert!(n <= 1_000, "never throttled");
        }
        n
    }

    #[test]
    fn a_key_gets_its_burst_then_one_guess_per_interval() {
        let t0 = Instant::now();
        let mut g = JoinGuesses::default();
        assert_eq!(burst(&mut g, key(1), HOME, t0), JOIN_GUESSES_BURST);
        let refused = g.check(&key(1), HOME, t0).unwrap_err();
        assert_eq!(refused.retry_after_secs, JOIN_GUESS_INTERVAL.as_secs());
        assert_eq!(
            refused.to_string(),
            format!(
                "too many wrong invite codes; try again in {} s",
                JOIN_GUESS_INTERVAL.as_secs()
            )
        );
        // Half an interval later: still refused, and told the rest of the wait.
        let half = t0 + JOIN_GUESS_INTERVAL / 2;
        let wait = g.check(&key(1), HOME, half).unwrap_err().retry_after_secs;
        assert_eq!(wait, JOIN_GUESS_INTERVAL.as_secs().div_ceil(2));
        // One interval later: exactly one more.
        let t1 = t0 + JOIN_GUESS_INTERVAL;
        assert_eq!(burst(&mut g, key(1), HOME, t1), 1);
        // Long idle: the whole burst again, and the entry can be forgotten.
        let t2 = t1 + JOIN_GUESS_INTERVAL * (JOIN_GUESSES_BURST + 1);
        assert_eq!(burst(&mut g, key(1), HOME, t2), JOIN_GUESSES_BURST);
    }

    #[test]
    fn fresh_keys_from_one_address_are_throttled_by_the_address() {
        let t0 = Instant::now();
        let mut g = JoinGuesses::default();
        let mut total = 0;
        for n in 0..=u8::MAX {
            let got = burst(&mut g, key(n), HOME, t0);
            total += got;
            if got == 0 {
                break;
            }
        }
        assert_eq!(total, JOIN_GUESSES_ADDR_BURST, "the address's burst in all");
        // Another address is not held back by this one.
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert!(g.check(&key(200), other, t0).is_ok());
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64_and_mapped_ipv4_is_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a.into()), source(b.into()));
        assert_ne!(source(a.into()), source(c.into()));
        let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped();
        assert_eq!(source(mapped.into()), HOME);
    }

    #[test]
    fn full_tables_stay_bounded_and_newcomers_share_one_debt() {
        let t0 = Instant::now();
        let mut g = JoinGuesses::with_max(4);
        let addr = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        for n in 0..4 {
            g.wrong(key(n), addr(n), t0);
        }
        assert_eq!(g.len(), (4, 4));
        // Newcomers while every entry is live: they share the overflow debt.
        let mut shared = 0;
        for n in 10..100 {
            if g.check(&key(n), addr(n), t0).is_err() {
                break;
            }
            g.wrong(key(n), addr(n), t0);
            shared += 1;
        }
        assert_eq!(
            shared, JOIN_GUESSES_BURST,
            "the overflow gets one key's burst"
        );
        assert_eq!(g.len(), (4, 4), "the tables did not grow");
        // Once the old debts are forgiven, a newcomer gets an entry of its own again.
        let later = t0 + JOIN_GUESS_INTERVAL * (JOIN_GUESSES_BURST + 1);
        g.wrong(key(200), addr(200), later);
        assert_eq!(g.len(), (1, 1), "forgiven entries were forgotten");
        assert!(g.check(&key(200), addr(200), later).is_ok());
    }

    #[test]
    fn a_clock_that_steps_back_forgives_nothing() {
        let t0 = Instant::now() + JOIN_GUESS_INTERVAL;
        let mut g = JoinGuesses::default();
        assert_eq!(burst(&mut g, key(1), HOME, t0), JOIN_GUESSES_BURST);
        let earlier = t0 - JOIN_GUESS_INTERVAL;
        assert!(g.check(&key(1), HOME, earlier).is_err());
    }
}
