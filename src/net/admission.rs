//! Which inbound QUIC handshakes a listener takes on, and for how long: the sans-IO core of the
//! accept loop ([`crate::net::accept`]).
//!
//! Why: a handshake holds a slot until it completes or times out, so a client that sends only
//! its Initial packet and never answers holds one for the whole handshake timeout. About 14 such
//! packets a second used to fill every slot and lock out every new connection. Three rules stop
//! that, each with a named bound in [`crate::limits`]:
//!
//! - **Address validation under load.** Once [`Limits::retry_from`] handshakes are pending, an
//!   Initial from an address that has not proved it can receive our packets gets a QUIC Retry
//!   (RFC 9000 §8.1) instead of a slot. A Retry costs the server no state; an honest client
//!   answers it with a new Initial bearing the token (one extra round trip) and comes back
//!   *validated*. A spoofed or stalled one never does.
//! - **A cap per source address.** At most [`Limits::per_source_max`] pending handshakes from
//!   one source (an IPv4 address, an IPv6 /64) in each class: past it an unvalidated Initial gets
//!   a Retry (so a forged source address cannot lock its real owner out), and a validated one is
//!   refused (its address is proven, so counting it against that address is sound).
//! - **A short deadline before validation.** A handshake from an unvalidated address must finish
//!   within [`Limits::unvalidated_timeout`] (one round trip suffices for an honest client, with
//!   room for a lost flight); a validated one keeps [`Limits::validated_timeout`].
//! - **A short queue for proven clients.** When every slot is taken, a validated attempt (its
//!   address is proven) waits in a bounded queue ([`Limits::queue_max`], at most
//!   [`Limits::per_source_max`] per source) for at most [`Limits::queue_wait`] instead of being
//!   refused at once: a burst of honest clients (a ramp, a cluster node's clients failing over)
//!   is admitted as slots free up rather than sent away to retry. Unvalidated attempts never
//!   queue (they get a Retry, which costs no state), and a queued attempt that outwaits its bound
//!   is refused, so stalled handshakes still cannot lock the door: at worst they make proven
//!   clients wait [`Limits::queue_wait`] before the refusal they got before.
//!
//! The core counts pending handshakes by source and in total, decides an [`Action`] for each
//! [`Attempt`], and takes back the [`Ticket`] of a handshake that ended. The driver turns actions
//! into `quinn::Incoming` calls and enforces the deadline it is given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::limits;

/// The bounds the core decides with (the named ones in [`crate::limits`] by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pending handshakes at most, in total.
    pub total_max: usize,
    /// Pending handshakes (in total) from which an unvalidated Initial is answered with a Retry.
    pub retry_from: usize,
    /// Pending handshakes at most from one source, counted apart for validated and unvalidated.
    pub per_source_max: usize,
    /// How long a handshake from a validated address may take.
    pub validated_timeout: Duration,
    /// How long a handshake from an address not validated may take.
    pub unvalidated_timeout: Duration,
    /// Validated attempts waiting for a slot at most, in total.
    pub queue_max: usize,
    /// How long a validated attempt may wait for a slot before it is refused.
    pub queue_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            total_max: limits::HANDSHAKES_MAX,
            retry_from: limits::HANDSHAKES_RETRY_FROM,
            per_source_max: limits::HANDSHAKES_PER_ADDRESS_MAX,
            validated_timeout: limits::HANDSHAKE_TIMEOUT,
            unvalidated_timeout: limits::HANDSHAKE_UNVALIDATED_TIMEOUT,
            queue_max: limits::HANDSHAKES_QUEUED_MAX,
            queue_wait: limits::HANDSHAKE_QUEUE_WAIT,
        }
    }
}

/// One incoming connection attempt, as the endpoint saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The source IP address of the Initial packet.
    pub ip: IpAddr,
    /// Whether the Initial bore a valid Retry token: the sender proved it receives our packets.
    pub validated: bool,
    /// Whether answering with a Retry is allowed (not after one already).
    pub may_retry: bool,
}

/// What to do with an [`Attempt`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the handshake; it must finish within `deadline`; give `ticket` back to
    /// [`Admission::finish`] when it ends, however it ends.
    Accept {
        /// The slot this handshake holds.
        ticket: Ticket,
        /// How long the handshake may take.
        deadline: Duration,
    },
    /// Answer with a Retry: the client must prove its address first.
    Retry,
    /// Hold the attempt: every slot is taken, its address is proven and the queue has room. The
    /// driver keeps it in arrival order and asks [`Admission::admit_queued`] when a slot frees
    /// (or [`Admission::expire_queued`] once it has waited [`Limits::queue_wait`]).
    Queue,
    /// Answer with a refusal (CONNECTION_REFUSED): the address is proven and over its cap, or
    /// every slot is taken and the queue is full.
    Refuse,
    /// Drop the attempt without a word (an unvalidated address we may not Retry: an answer
    /// could be reflected at a forged source).
    Ignore,
}

/// How a handshake that held a slot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer proved its key: a connection.
    Completed,
    /// The handshake failed (bad TLS, closed by the peer, the endpoint stopping, ...).
    Failed,
    /// The deadline passed first.
    TimedOut,
}

/// A pending handshake's slot. Not `Clone`: each is given back once.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    source: Source,
    validated: bool,
}

impl Ticket {
    /// Whether the handshake holding this slot came from a validated address.
    pub fn validated(&self) -> bool {
        self.validated
    }
}

/// What the counts are kept by: an IPv4 address, or an IPv6 /64 (one subscriber's usual
/// allocation; counting per /128 would let one host use 2^64 sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl Source {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Source::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

/// Pending handshakes of one source, and its attempts waiting in the queue.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    validated: usize,
    unvalidated: usize,
    queued: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.validated == 0 && self.unvalidated == 0 && self.queued == 0
    }
}

impl Pending {
    fn class(&mut self, validated: bool) -> &mut usize {
        if validated {
            &mut self.validated
        } else {
            &mut self.unvalidated
        }
    }
}

/// The counts shown in `kith status` (since the endpoint started, but `pending`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AdmissionCounts {
    /// Handshakes in progress now.
    pub pending: u64,
    /// Handshakes started.
    pub accepted: u64,
    /// Handshakes that ended in a connection.
    pub completed: u64,
    /// Attempts answered with a Retry (address validation asked for).
    pub retried: u64,
    /// Validated attempts refused because their source had its cap of pending handshakes.
    pub refused_per_address: u64,
    /// Validated attempts refused because every slot was taken and the queue was full.
    pub refused_busy: u64,
    /// Validated attempts waiting for a slot now.
    pub queued: u64,
    /// Validated attempts that waited for a slot (since the start).
    pub queued_total: u64,
    /// Queued attempts refused because they waited [`Limits::queue_wait`] without a slot.
    pub queue_expired: u64,
    /// Attempts dropped without an answer.
    pub ignored: u64,
    /// Handshakes cut at their deadline.
    pub timed_out: u64,
}

/// The admission state of one listener.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    /// Pending and queued handshakes by source; a source with none has no entry, so the table
    /// holds at most `limits.total_max + limits.queue_max` entries.
    sources: HashMap<Source, Pending>,
    total: usize,
    queued: usize,
    counts: AdmissionCounts,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Admission {
    /// An empty admission state with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            sources: HashMap::new(),
            total: 0,
            queued: 0,
            counts: AdmissionCounts::default(),
        }
    }

    /// Decide what to do with `attempt`; an accepted one holds a slot until [`Self::finish`].
    pub fn admit(&mut self, attempt: Attempt) -> Action {
        let source = Source::of(attempt.ip);
        let pending = self.sources.get(&source).copied().unwrap_or_default();
        let limits = self.limits;
        let deadline = if attempt.validated {
            if pending.validated >= limits.per_source_max {
                self.counts.refused_per_address += 1;
                return Action::Refuse;
            }
            if self.total >= limits.total_max {
                if self.queued < limits.queue_max && pending.queued < limits.per_source_max {
                    self.sources.entry(source).or_default().queued += 1;
                    self.queued += 1;
                    self.counts.queued_total += 1;
                    return Action::Queue;
                }
                self.counts.refused_busy += 1;
                return Action::Refuse;
            }
            limits.validated_timeout
        } else {
            let busy = self.total >= limits.retry_from.min(limits.total_max)
                || pending.unvalidated >= limits.per_source_max;
            if busy {
                if attempt.may_retry {
                    self.counts.retried += 1;
                    return Action::Retry;
                }
                self.counts.ignored += 1;
                return Action::Ignore;
            }
            limits.unvalidated_timeout
        };
        self.take_slot(source, attempt.validated, deadline)
    }

    fn take_slot(&mut self, source: Source, validated: bool, deadline: Duration) -> Action {
        *self.sources.entry(source).or_default().class(validated) += 1;
        self.total += 1;
        self.counts.accepted += 1;
        Action::Accept {
            ticket: Ticket { source, validated },
            deadline,
        }
    }

    /// A queued attempt from `ip` (the oldest one the driver holds) asks again: `Accept` if a
    /// slot is free now (it leaves the queue), else `Queue` (it keeps its place).
    pub fn admit_queued(&mut self, ip: IpAddr) -> Action {
        if self.total >= self.limits.total_max {
            return Action::Queue;
        }
        let source = Source::of(ip);
        self.leave_queue(source);
        self.take_slot(source, true, self.limits.validated_timeout)
    }

    /// A queued attempt from `ip` waited [`Limits::queue_wait`] without a slot: it leaves the
    /// queue and is refused (counted).
    pub fn expire_queued(&mut self, ip: IpAddr) -> Action {
        self.leave_queue(Source::of(ip));
        self.counts.queue_expired += 1;
        Action::Refuse
    }

    /// A queued attempt from `ip` went away without a decision (the endpoint closing).
    pub fn forget_queued(&mut self, ip: IpAddr) {
        self.leave_queue(Source::of(ip));
    }

    /// How long a queued attempt may wait.
    pub fn queue_wait(&self) -> Duration {
        self.limits.queue_wait
    }

    fn leave_queue(&mut self, source: Source) {
        if let Some(pending) = self.sources.get_mut(&source) {
            pending.queued = pending.queued.saturating_sub(1);
            if pending.is_empty() {
                self.sources.remove(&source);
            }
        }
        self.queued = self.queued.saturating_sub(1);
    }

    /// Give back the slot of a handshake that ended with `outcome`.
    pub fn finish(&mut self, ticket: Ticket, outcome: Outcome) {
        match outcome {
            Outcome::Completed => self.counts.completed += 1,
            Outcome::TimedOut => self.counts.timed_out += 1,
            Outcome::Failed => {}
        }
        if let Some(pending) = self.sources.get_mut(&ticket.source) {
            let class = pending.class(ticket.validated);
            *class = class.saturating_sub(1);
            if pending.is_empty() {
                self.sources.remove(&ticket.source);
            }
        }
        self.total = self.total.saturating_sub(1);
    }

    /// The counts, with the handshakes pending now.
    pub fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            pending: self.total as u64,
            queued: self.queued as u64,
            ..self.counts
        }
    }

    /// Sources with a pending or queued handshake (bounded by [`Limits::total_max`] plus
    /// [`Limits::queue_max`]).
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        total_max: 10,
        retry_from: 4,
        per_source_max: 2,
        validated_timeout: Duration::from_secs(10),
        unvalidated_timeout: Duration::from_secs(3),
        queue_max: 3,
        queue_wait: Duration::from_secs(2),
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn fresh(text: &str) -> Attempt {
        Attempt {
            ip: ip(text),
            validated: false,
            may_retry: true,
        }
    }

    fn proven(text: &str) -> Attempt {
        Attempt {
            ip: ip(text),
            validated: true,
            may_retry: false,
        }
    }

    fn ticket(action: Action) -> (Ticket, Duration) {
        match action {
            Action::Accept { ticket, deadline } => (ticket, deadline),
            other => panic!("expected Accept, got {other:?}"),
        }
    }

    #[test]
    fn unvalidated_get_the_short_deadline_and_validated_the_long_one() {
        let mut a = Admission::new(LIMITS);
        let (t, d) = ticket(a.admit(fresh("192.0.2.1")));
        assert_eq!(d, LIMITS.unvalidated_timeout);
        assert!(!t.validated());
        let (t, d) = ticket(a.admit(proven("192.0.2.1")));
        assert_eq!(d, LIMITS.validated_timeout);
        assert!(t.validated());
        assert_eq!(a.counts().pending, 2);
        assert_eq!(a.counts().accepted, 2);
    }

    #[test]
    fn a_stalled_flood_from_one_address_holds_only_its_cap_and_then_is_asked_to_validate() {
        let mut a = Admission::new(LIMITS);
        let mut held = Vec::new();
        for _ in 0..LIMITS.per_source_max {
            held.push(ticket(a.admit(fresh("198.51.100.7"))).0);
        }
        for _ in 0..100 {
            assert_eq!(a.admit(fresh("198.51.100.7")), Action::Retry);
        }
        assert_eq!(a.counts().pending, LIMITS.per_source_max as u64);
        assert_eq!(a.counts().retried, 100);
        // Another address is taken on at once, without a Retry.
        let (_, d) = ticket(a.admit(fresh("192.0.2.1")));
        assert_eq!(d, LIMITS.unvalidated_timeout);
        // The flooder's own address, once validated, is counted apart: an honest client behind
        // the same address still gets in (the stalled Initials cannot lock it out).
        let (_, d) = ticket(a.admit(proven("198.51.100.7")));
        assert_eq!(d, LIMITS.validated_timeout);
    }

    #[test]
    fn past_the_threshold_every_unvalidated_attempt_gets_a_retry_and_a_validated_one_a_slot() {
        let mut a = Admission::new(LIMITS);
        for n in 0..LIMITS.retry_from {
            ticket(a.admit(fresh(&format!("203.0.113.{n}"))));
        }
        assert_eq!(a.admit(fresh("192.0.2.99")), Action::Retry);
        // The same client comes back with the token: admitted, with the long deadline.
        let (_, d) = ticket(a.admit(proven("192.0.2.99")));
        assert_eq!(d, LIMITS.validated_timeout);
    }

    #[test]
    fn a_validated_source_over_its_cap_is_refused_and_counted() {
        let mut a = Admission::new(LIMITS);
        for _ in 0..LIMITS.per_source_max {
            ticket(a.admit(proven("192.0.2.5")));
        }
        assert_eq!(a.admit(proven("192.0.2.5")), Action::Refuse);
        assert_eq!(a.counts().refused_per_address, 1);
        assert_eq!(a.counts().refused_busy, 0);
        // Another proven address is not affected.
        ticket(a.admit(proven("192.0.2.6")));
    }

    #[test]
    fn every_slot_taken_queues_validated_then_refuses_and_retries_unvalidated() {
        let mut a = Admission::new(LIMITS);
        let mut held = Vec::new();
        for n in 0..LIMITS.total_max {
            held.push(ticket(a.admit(proven(&format!("203.0.113.{n}")))).0);
        }
        for n in 0..LIMITS.queue_max {
            assert_eq!(a.admit(proven(&format!("192.0.2.{n}"))), Action::Queue);
        }
        // The queue is full: the next proven attempt is refused, an unvalidated one retried.
        assert_eq!(a.admit(proven("192.0.2.99")), Action::Refuse);
        assert_eq!(a.counts().refused_busy, 1);
        assert_eq!(a.admit(fresh("192.0.2.98")), Action::Retry);
        assert_eq!(a.counts().pending, LIMITS.total_max as u64);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64);
        // No slot yet: the oldest keeps its place.
        assert_eq!(a.admit_queued(ip("192.0.2.0")), Action::Queue);
        // A slot frees: the oldest queued attempt takes it, with the validated deadline.
        a.finish(held.remove(0), Outcome::Completed);
        let (t, d) = ticket(a.admit_queued(ip("192.0.2.0")));
        assert!(t.validated());
        assert_eq!(d, LIMITS.validated_timeout);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64 - 1);
        // The queue has room again for a newcomer.
        assert_eq!(a.admit(proven("192.0.2.50")), Action::Queue);
        assert_eq!(a.counts().queued_total, LIMITS.queue_max as u64 + 1);
    }

    #[test]
    fn a_queued_attempt_that_outwaits_its_bound_is_refused_and_counted() {
        let mut a = Admission::new(LIMITS);
        for n in 0..LIMITS.total_max {
            ticket(a.admit(proven(&format!("203.0.113.{n}"))));
        }
        assert_eq!(a.admit(proven("192.0.2.1")), Action::Queue);
        assert_eq!(a.expire_queued(ip("192.0.2.1")), Action::Refuse);
        let counts = a.counts();
        assert_eq!((counts.queued, counts.queue_expired), (0, 1));
        assert_eq!(a.sources(), LIMITS.total_max);
    }

    #[test]
    fn one_source_holds_at_most_its_cap_of_the_queue() {
        let mut a = Admission::new(Limits {
            queue_max: 100,
            ..LIMITS
        });
        for n in 0..LIMITS.total_max {
            ticket(a.admit(proven(&format!("203.0.113.{n}"))));
        }
        for _ in 0..LIMITS.per_source_max {
            assert_eq!(a.admit(proven("198.51.100.7")), Action::Queue);
        }
        assert_eq!(a.admit(proven("198.51.100.7")), Action::Refuse);
        // Another proven source still gets a place.
        assert_eq!(a.admit(proven("192.0.2.1")), Action::Queue);
        a.forget_queued(ip("198.51.100.7"));
        assert_eq!(a.admit(proven("198.51.100.7")), Action::Queue);
    }

    #[test]
    fn a_stalled_flood_never_reaches_the_queue() {
        // Unvalidated attempts are retried or ignored when busy, never queued: only a client
        // that proved its address can wait for a slot.
        let mut a = Admission::new(LIMITS);
        for n in 0..LIMITS.total_max {
            ticket(a.admit(proven(&format!("203.0.113.{n}"))));
        }
        for n in 0..1_000u32 {
            let ip = IpAddr::from(n.to_be_bytes()).to_string();
            assert_eq!(a.admit(fresh(&ip)), Action::Retry);
            let no_retry = Attempt {
                may_retry: false,
                ..fresh(&ip)
            };
            assert_eq!(a.admit(no_retry), Action::Ignore);
        }
        assert_eq!(a.counts().queued, 0);
    }

    #[test]
    fn an_attempt_that_may_not_retry_is_ignored_not_answered() {
        let mut a = Admission::new(LIMITS);
        for n in 0..LIMITS.retry_from {
            ticket(a.admit(fresh(&format!("203.0.113.{n}"))));
        }
        let attempt = Attempt {
            may_retry: false,
            ..fresh("192.0.2.1")
        };
        assert_eq!(a.admit(attempt), Action::Ignore);
        assert_eq!(a.counts().ignored, 1);
    }

    #[test]
    fn finishing_frees_the_slot_and_the_table_entry_and_counts_the_outcome() {
        let mut a = Admission::new(LIMITS);
        let (t1, _) = ticket(a.admit(fresh("192.0.2.1")));
        let (t2, _) = ticket(a.admit(fresh("192.0.2.1")));
        assert_eq!(a.admit(fresh("192.0.2.1")), Action::Retry);
        a.finish(t1, Outcome::TimedOut);
        assert_eq!(a.sources(), 1);
        let (t3, _) = ticket(a.admit(fresh("192.0.2.1")));
        a.finish(t2, Outcome::Completed);
        a.finish(t3, Outcome::Failed);
        let counts = a.counts();
        assert_eq!(counts.pending, 0);
        assert_eq!(counts.timed_out, 1);
        assert_eq!(counts.completed, 1);
        assert_eq!(counts.accepted, 3);
        assert_eq!(a.sources(), 0);
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let mut a = Admission::new(LIMITS);
        ticket(a.admit(proven("2001:db8:1:2::1")));
        ticket(a.admit(proven("2001:db8:1:2:ffff::9")));
        assert_eq!(a.admit(proven("2001:db8:1:2::77")), Action::Refuse);
        ticket(a.admit(proven("2001:db8:1:3::1")));
        ticket(a.admit(proven("192.0.2.8")));
        ticket(a.admit(proven("::ffff:192.0.2.8")));
        assert_eq!(a.admit(proven("192.0.2.8")), Action::Refuse);
    }

    #[test]
    fn the_source_table_stays_bounded_under_many_addresses() {
        let mut a = Admission::new(LIMITS);
        for n in 0..10_000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            let _ = a.admit(fresh(&ip.to_string()));
            let _ = a.admit(proven(&ip.to_string()));
        }
        assert!(a.sources() <= LIMITS.total_max + LIMITS.queue_max);
        assert_eq!(a.counts().pending, LIMITS.total_max as u64);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64);
    }
}
