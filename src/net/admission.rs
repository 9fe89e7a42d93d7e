//! Which inbound QUIC handshakes a listener takes on, and for how long: the sans-IO core of the
//! accept loop ([`crate::net::accept`]).
//!
//! Why: a handshake holds a slot until it completes or times out, so a client that sends only
//! its Initial packet and never answers holds one for the whole handshake timeout. About 14 such
//! packets a second used to fill every slot and lock out every new connection. These rules stop
//! that, each with a named bound in [`crate::limits`]:
//!
//! - **Address validation when the door is under attack, or full.** An Initial from an address
//!   that has not proved it can receive our packets may get a QUIC Retry (RFC 9000 §8.1) instead
//!   of a slot. A Retry costs the server no state; an honest client answers it with a new Initial
//!   bearing the token and comes back *validated*; a spoofed or stalled one never does. But it
//!   costs every honest client a round trip, a token sealed and opened, and a second Initial on
//!   both sides, so it is asked for only when it buys something:
//!   - *calm*: an unvalidated attempt takes a slot while fewer than [`Limits::unvalidated_max`]
//!     unvalidated handshakes are pending (and a slot is free); past that it waits in the queue
//!     below, as a proven client does, and only when the queue is full too, a Retry. A burst of
//!     honest clients (a switchboard's clients coming back after a restart) gets in without one.
//!   - *on guard*: once there is a sign of attack, an unvalidated attempt gets a Retry as soon
//!     as [`Limits::retry_from`] handshakes are pending in total (the old rule). The signs: an
//!     unvalidated handshake still pending after [`Limits::stale_after`] (an honest one finishes
//!     in a round trip), or one that ended without completing (timed out, or failed: an attacker
//!     that abandons each stalled handshake before it is stale shows itself that way). The door
//!     stays on guard for [`Limits::guard_for`] after the last sign, counted in
//!     [`AdmissionCounts::guarded`].
//!
//!   The worst case, from calm: a spoofing flood takes at most [`Limits::unvalidated_max`] slots
//!   (never all: [`Limits::total_max`] minus that stays for validated clients, and the queue),
//!   holds them until the first sign (at most [`Limits::stale_after`] later, or at its first
//!   abandoned handshake) and keeps them for at most [`Limits::unvalidated_timeout`]; then, on
//!   guard, no more than [`Limits::retry_from`] in total. To take the larger share again it must
//!   stay silent for [`Limits::guard_for`]. Honest clients are never locked out meanwhile: they
//!   get a Retry and a validated slot, as before.
//! - **A cap per source address.** At most [`Limits::per_source_max`] pending handshakes from
//!   one source (an IPv4 address, an IPv6 /64) in each class: past it an unvalidated Initial gets
//!   a Retry (so a forged source address cannot lock its real owner out), and a validated one is
//!   refused (its address is proven, so counting it against that address is sound).
//! - **A short deadline before validation.** A handshake from an unvalidated address must finish
//!   within [`Limits::unvalidated_timeout`] (one round trip suffices for an honest client, with
//!   room for a lost flight); a validated one keeps [`Limits::validated_timeout`].
//! - **A short queue.** When every slot is taken, a validated attempt (its address is proven)
//!   waits in a bounded queue ([`Limits::queue_max`], at most [`Limits::per_source_max`] per
//!   source) for at most [`Limits::queue_wait`] instead of being refused at once: a burst of
//!   honest clients (a ramp, a cluster node's clients failing over) is admitted as slots free up
//!   rather than sent away to retry. While calm, an unvalidated attempt past the calm share waits
//!   there too; on guard none joins, and one already waiting is asked to validate (a Retry) when
//!   its turn comes, so a flood queued before the alarm drains at once. A queued attempt that
//!   outwaits its bound is refused (a proven one) or asked to validate (a new one), so stalled
//!   handshakes still cannot lock the door: at worst they make clients wait
//!   [`Limits::queue_wait`] before the answer they got before. The queue is served in order: a
//!   new client at its head waits while the calm share is taken even if a slot is free.
//!
//! The core counts pending handshakes by source and in total, decides an [`Action`] for each
//! [`Attempt`], and takes back the [`Ticket`] of a handshake that ended. The driver turns actions
//! into `quinn::Incoming` calls and enforces the deadline it is given.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::limits;

/// The bounds the core decides with (the named ones in [`crate::limits`] by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pending handshakes at most, in total.
    pub total_max: usize,
    /// On guard: pending handshakes (in total) from which an unvalidated Initial is answered
    /// with a Retry.
    pub retry_from: usize,
    /// Calm: unvalidated handshakes pending at most; past it an unvalidated Initial is answered
    /// with a Retry.
    pub unvalidated_max: usize,
    /// An unvalidated handshake pending this long is a sign of attack.
    pub stale_after: Duration,
    /// How long the door stays on guard after the last sign of attack.
    pub guard_for: Duration,
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
            unvalidated_max: limits::HANDSHAKES_UNVALIDATED_MAX,
            stale_after: limits::HANDSHAKE_STALE_AFTER,
            guard_for: limits::HANDSHAKE_GUARD_FOR,
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
    /// Hold the attempt: no slot for it now (every slot taken, or while calm the share of new
    /// clients) and the queue has room. The driver keeps it in arrival order and asks
    /// [`Admission::admit_queued`] when a slot frees (or [`Admission::expire_queued`] once it has
    /// waited [`Limits::queue_wait`]).
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
    /// Which slot, to find an unvalidated one's start time again.
    serial: u64,
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
    /// Times the door went on guard (a Retry for every new address once
    /// [`Limits::retry_from`] handshakes are pending) after a sign of attack.
    pub guarded: u64,
    /// Whether the door is on guard now (as of the last decision).
    pub on_guard: bool,
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
    /// Pending unvalidated handshakes by start time, oldest first (at most `limits.total_max`).
    unvalidated: VecDeque<(u64, Instant)>,
    /// The serial of the next slot.
    serial: u64,
    /// The last sign of attack: on guard until `limits.guard_for` after it.
    alarm: Option<Instant>,
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
            unvalidated: VecDeque::new(),
            serial: 0,
            alarm: None,
            counts: AdmissionCounts::default(),
        }
    }

    /// Decide what to do with `attempt`, arrived at `now`; an accepted one holds a slot until
    /// [`Self::finish`].
    pub fn admit(&mut self, attempt: Attempt, now: Instant) -> Action {
        let on_guard = self.on_guard(now);
        let source = Source::of(attempt.ip);
        let pending = self.sources.get(&source).copied().unwrap_or_default();
        let limits = self.limits;
        let deadline = if attempt.validated {
            if pending.validated >= limits.per_source_max {
                self.counts.refused_per_address += 1;
                return Action::Refuse;
            }
            if self.total >= limits.total_max {
                if let Some(queued) = self.enqueue(source, pending) {
                    return queued;
                }
                self.counts.refused_busy += 1;
                return Action::Refuse;
            }
            limits.validated_timeout
        } else {
            if pending.unvalidated >= limits.per_source_max {
                return self.ask_to_validate(attempt);
            }
            if on_guard {
                if self.total >= limits.retry_from.min(limits.total_max) {
                    return self.ask_to_validate(attempt);
                }
            } else if self.calm_share_taken() {
                // Calm: a new client waits for a slot as a proven one does.
                return match self.enqueue(source, pending) {
                    Some(queued) => queued,
                    None => self.ask_to_validate(attempt),
                };
            }
            limits.unvalidated_timeout
        };
        self.take_slot(source, attempt.validated, deadline, now)
    }

    /// While calm: whether an unvalidated attempt finds no slot now.
    fn calm_share_taken(&self) -> bool {
        self.total >= self.limits.total_max
            || self.unvalidated.len() >= self.limits.unvalidated_max.min(self.limits.total_max)
    }

    /// A place in the queue for an attempt from `source` (which has `pending`), if there is room.
    fn enqueue(&mut self, source: Source, pending: Pending) -> Option<Action> {
        if self.queued >= self.limits.queue_max || pending.queued >= self.limits.per_source_max {
            return None;
        }
        self.sources.entry(source).or_default().queued += 1;
        self.queued += 1;
        self.counts.queued_total += 1;
        Some(Action::Queue)
    }

    /// An unvalidated attempt must prove its address: a Retry, or silence when we may not send
    /// one (it already had one, so an answer could be reflected at a forged source).
    fn ask_to_validate(&mut self, attempt: Attempt) -> Action {
        if attempt.may_retry {
            self.counts.retried += 1;
            Action::Retry
        } else {
            self.counts.ignored += 1;
            Action::Ignore
        }
    }

    /// Whether the door is on guard at `now`: a sign of attack within [`Limits::guard_for`]. An
    /// unvalidated handshake pending for [`Limits::stale_after`] is such a sign, seen here.
    fn on_guard(&mut self, now: Instant) -> bool {
        if let Some(&(_, since)) = self.unvalidated.front() {
            if now.saturating_duration_since(since) >= self.limits.stale_after {
                self.alarm(now);
            }
        }
        let on_guard = self.guarding(now);
        self.counts.on_guard = on_guard;
        on_guard
    }

    fn guarding(&self, now: Instant) -> bool {
        self.alarm
            .is_some_and(|at| now.saturating_duration_since(at) < self.limits.guard_for)
    }

    /// A sign of attack at `now`: on guard (again, or for longer).
    fn alarm(&mut self, now: Instant) {
        if !self.guarding(now) {
            self.counts.guarded += 1;
        }
        self.alarm = Some(self.alarm.map_or(now, |at| at.max(now)));
        self.counts.on_guard = true;
    }

    fn take_slot(
        &mut self,
        source: Source,
        validated: bool,
        deadline: Duration,
        now: Instant,
    ) -> Action {
        *self.sources.entry(source).or_default().class(validated) += 1;
        self.total += 1;
        self.counts.accepted += 1;
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        if !validated {
            self.unvalidated.push_back((serial, now));
        }
        Action::Accept {
            ticket: Ticket {
                source,
                validated,
                serial,
            },
            deadline,
        }
    }

    /// A queued `attempt` (the oldest one the driver holds) asks again at `now`: `Accept` if a
    /// slot is free for it now (it leaves the queue), `Queue` if not (it keeps its place); a new
    /// client's attempt is asked to validate instead (`Retry` or `Ignore`, it leaves the queue)
    /// once the door is on guard and [`Limits::retry_from`] handshakes are pending.
    pub fn admit_queued(&mut self, attempt: Attempt, now: Instant) -> Action {
        let on_guard = self.on_guard(now);
        let limits = self.limits;
        let source = Source::of(attempt.ip);
        if attempt.validated {
            if self.total >= limits.total_max {
                return Action::Queue;
            }
            self.leave_queue(source);
            return self.take_slot(source, true, limits.validated_timeout, now);
        }
        let pending = self.sources.get(&source).copied().unwrap_or_default();
        let validate = if on_guard {
            self.total >= limits.retry_from.min(limits.total_max)
        } else if self.calm_share_taken() {
            return Action::Queue;
        } else {
            false
        };
        self.leave_queue(source);
        if validate || pending.unvalidated >= limits.per_source_max {
            return self.ask_to_validate(attempt);
        }
        self.take_slot(source, false, limits.unvalidated_timeout, now)
    }

    /// A queued `attempt` waited [`Limits::queue_wait`] without a slot: it leaves the queue
    /// (counted) and is refused, or asked to validate if its address is not proven.
    pub fn expire_queued(&mut self, attempt: Attempt) -> Action {
        self.leave_queue(Source::of(attempt.ip));
        self.counts.queue_expired += 1;
        if attempt.validated {
            Action::Refuse
        } else {
            self.ask_to_validate(attempt)
        }
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

    /// Give back the slot of a handshake that ended with `outcome` at `now`. An unvalidated one
    /// that did not complete is a sign of attack.
    pub fn finish(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Completed => self.counts.completed += 1,
            Outcome::TimedOut => self.counts.timed_out += 1,
            Outcome::Failed => {}
        }
        if !ticket.validated {
            if let Some(at) = self
                .unvalidated
                .iter()
                .position(|(s, _)| *s == ticket.serial)
            {
                self.unvalidated.remove(at);
            }
            if outcome != Outcome::Completed {
                self.alarm(now);
            }
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
        unvalidated_max: 7,
        stale_after: Duration::from_secs(1),
        guard_for: Duration::from_secs(30),
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

    /// `count` handshakes admitted at `now` from the distinct addresses `{net}.0`, `{net}.1`, …,
    /// each as `attempt` makes it (every one must be accepted); their tickets.
    fn take_slots(
        a: &mut Admission,
        count: usize,
        attempt: fn(&str) -> Attempt,
        net: &str,
        now: Instant,
    ) -> Vec<Ticket> {
        (0..count)
            .map(|n| ticket(a.admit(attempt(&format!("{net}.{n}")), now)).0)
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn unvalidated_get_the_short_deadline_and_validated_the_long_one() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let (t, d) = ticket(a.admit(fresh("192.0.2.1"), t0));
        assert_eq!(d, LIMITS.unvalidated_timeout);
        assert!(!t.validated());
        let (t, d) = ticket(a.admit(proven("192.0.2.1"), t0));
        assert_eq!(d, LIMITS.validated_timeout);
        assert!(t.validated());
        assert_eq!(a.counts().pending, 2);
        assert_eq!(a.counts().accepted, 2);
    }

    #[test]
    fn a_calm_burst_of_new_clients_gets_slots_without_a_retry_up_to_the_unvalidated_cap() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        // Past `retry_from` (the old threshold): still slots, no Retry, while calm.
        let held = take_slots(&mut a, LIMITS.unvalidated_max, fresh, "203.0.113", t0);
        assert_eq!(a.counts().retried, 0);
        assert!(!a.counts().on_guard);
        // Past the share: the next new client waits for a slot, still without a Retry.
        assert_eq!(a.admit(fresh("192.0.2.99"), t0), Action::Queue);
        // What the share leaves is for validated clients, who do not wait.
        take_slots(
            &mut a,
            LIMITS.total_max - LIMITS.unvalidated_max,
            proven,
            "198.51.100",
            t0,
        );
        // A slot is free but the share is still taken: the new client keeps its place.
        assert_eq!(a.admit_queued(fresh("192.0.2.99"), t0), Action::Queue);
        // Honest handshakes finish within a round trip: the slots come back, nothing is stale.
        for t in held {
            a.finish(t, Outcome::Completed, t0 + ms(50));
        }
        let (t, d) = ticket(a.admit_queued(fresh("192.0.2.99"), t0 + ms(50)));
        assert!(!t.validated());
        assert_eq!(d, LIMITS.unvalidated_timeout);
        ticket(a.admit(fresh("192.0.2.100"), t0 + ms(60)));
        let counts = a.counts();
        assert_eq!((counts.guarded, counts.retried, counts.queued), (0, 0, 0));
    }

    #[test]
    fn an_unvalidated_handshake_pending_past_stale_after_puts_the_door_on_guard() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let (stalled, _) = ticket(a.admit(fresh("198.51.100.7"), t0));
        // Just under the threshold: calm, new addresses take slots past `retry_from`.
        let just_under = t0 + LIMITS.stale_after - ms(1);
        let mut honest = Vec::new();
        for n in 0..LIMITS.retry_from {
            honest.push(ticket(a.admit(fresh(&format!("203.0.113.{n}")), just_under)).0);
        }
        assert_eq!(a.counts().guarded, 0);
        // At the threshold: on guard, `retry_from` are pending, so a new address gets a Retry.
        let stale = t0 + LIMITS.stale_after;
        assert_eq!(a.admit(fresh("192.0.2.1"), stale), Action::Retry);
        let counts = a.counts();
        assert_eq!((counts.guarded, counts.on_guard), (1, true));
        // Once it comes back validated it takes a slot.
        ticket(a.admit(proven("192.0.2.1"), stale));
        for t in honest {
            a.finish(t, Outcome::Completed, stale);
        }
        // Below `retry_from` in total a new address still gets a slot on guard.
        let (second, _) = ticket(a.admit(fresh("192.0.2.2"), stale));
        a.finish(second, Outcome::Completed, stale + ms(20));
        // The stalled one is cut at its deadline: on guard for `guard_for` after that.
        let cut = t0 + LIMITS.unvalidated_timeout;
        a.finish(stalled, Outcome::TimedOut, cut);
        for n in 0..LIMITS.retry_from {
            let _ = a.admit(proven(&format!("198.51.100.{n}")), cut);
        }
        let late = cut + LIMITS.guard_for - ms(1);
        assert_eq!(a.admit(fresh("192.0.2.3"), late), Action::Retry);
        assert_eq!(a.counts().guarded, 1, "one episode, not one per sign");
        // Calm again after `guard_for` without a sign.
        let (_, d) = ticket(a.admit(fresh("192.0.2.3"), cut + LIMITS.guard_for));
        assert_eq!(d, LIMITS.unvalidated_timeout);
        assert!(!a.counts().on_guard);
    }

    #[test]
    fn only_an_unvalidated_handshake_that_does_not_complete_is_a_sign_of_attack() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let (t, _) = ticket(a.admit(fresh("192.0.2.1"), t0));
        a.finish(t, Outcome::Completed, t0);
        let (t, _) = ticket(a.admit(proven("192.0.2.1"), t0));
        a.finish(t, Outcome::Failed, t0);
        let (t, _) = ticket(a.admit(proven("192.0.2.1"), t0));
        a.finish(t, Outcome::TimedOut, t0);
        assert_eq!(a.counts().guarded, 0);
        // An unvalidated one abandoned (failed) before it is stale: a sign.
        let (t, _) = ticket(a.admit(fresh("192.0.2.2"), t0));
        a.finish(t, Outcome::Failed, t0 + ms(10));
        assert_eq!((a.counts().guarded, a.counts().on_guard), (1, true));
    }

    #[test]
    fn a_stalled_flood_from_one_address_holds_only_its_cap_and_then_is_asked_to_validate() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let mut held = Vec::new();
        for _ in 0..LIMITS.per_source_max {
            held.push(ticket(a.admit(fresh("198.51.100.7"), t0)).0);
        }
        for _ in 0..100 {
            assert_eq!(a.admit(fresh("198.51.100.7"), t0), Action::Retry);
        }
        assert_eq!(a.counts().pending, LIMITS.per_source_max as u64);
        assert_eq!(a.counts().retried, 100);
        // Another address is taken on at once, without a Retry.
        let (_, d) = ticket(a.admit(fresh("192.0.2.1"), t0));
        assert_eq!(d, LIMITS.unvalidated_timeout);
        // The flooder's own address, once validated, is counted apart: an honest client behind
        // the same address still gets in (the stalled Initials cannot lock it out).
        let (_, d) = ticket(a.admit(proven("198.51.100.7"), t0));
        assert_eq!(d, LIMITS.validated_timeout);
    }

    /// `attempt` again after a Retry, with its token.
    fn validated(attempt: Attempt) -> Attempt {
        Attempt {
            validated: true,
            may_retry: false,
            ..attempt
        }
    }

    /// Who made a queued attempt in [`siege`].
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Who {
        Attacker,
        Honest,
    }

    /// One attacker strategy against the door: spoofed addresses (each new), `per_tick` stalled
    /// Initials every tick while `active(now)`, each abandoned after `hold` (a forged close, seen
    /// as a failed handshake) unless the deadline cuts it first. Meanwhile an honest client
    /// from a proven address arrives every tick, and a new one (unvalidated) does too, answering
    /// a Retry by coming back validated; each finishes in the tick it gets its slot. The driver's
    /// queue is modelled as the accept loop keeps it. Returns the most slots the attacker held at
    /// once, and the ticks during which it held more than `retry_from`. Panics if an honest
    /// client is ever refused or waits in the queue for as long as its bound.
    fn siege(hold: Duration, per_tick: usize, active: impl Fn(Duration) -> bool) -> (usize, u64) {
        let tick = ms(10);
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let mut attacker: Vec<(Instant, Duration, Ticket)> = Vec::new();
        let mut queue: VecDeque<(Instant, Attempt, Who)> = VecDeque::new();
        let (mut most, mut over, mut spoofed) = (0, 0, 0u32);
        for step in 0..30_000u32 {
            let elapsed = tick * step;
            let now = t0 + elapsed;
            // The attacker's handshakes end: abandoned after `hold`, or cut at the deadline.
            let mut still = Vec::new();
            for (since, deadline, t) in attacker.drain(..) {
                if now >= since + deadline {
                    a.finish(t, Outcome::TimedOut, now);
                } else if since.checked_add(hold).is_some_and(|end| now >= end) {
                    a.finish(t, Outcome::Failed, now);
                } else {
                    still.push((since, deadline, t));
                }
            }
            attacker = still;
            let mut arrivals = Vec::new();
            if active(elapsed) {
                for _ in 0..per_tick {
                    spoofed += 1;
                    let ip = IpAddr::from((0x0a00_0000 + spoofed).to_be_bytes());
                    let attempt = Attempt {
                        ip,
                        validated: false,
                        may_retry: true,
                    };
                    arrivals.push((attempt, Who::Attacker));
                }
            }
            // Honest clients from addresses of their own (one NAT's cap is another test's).
            let honest = |n: u32| IpAddr::from((0xac10_0000 + n).to_be_bytes());
            arrivals.push((
                Attempt {
                    ip: honest(2 * step),
                    ..proven("192.0.2.1")
                },
                Who::Honest,
            ));
            arrivals.push((
                Attempt {
                    ip: honest(2 * step + 1),
                    ..fresh("192.0.2.2")
                },
                Who::Honest,
            ));
            let mut honest_done = Vec::new();
            // Each arrival, then the queue's head, as the accept loop does after each event.
            for (attempt, who) in arrivals {
                let mut action = a.admit(attempt, now);
                if who == Who::Honest && action == Action::Retry {
                    action = a.admit(validated(attempt), now);
                }
                match action {
                    Action::Accept { ticket, deadline } if who == Who::Attacker => {
                        attacker.push((now, deadline, ticket))
                    }
                    Action::Accept { ticket, .. } => honest_done.push(ticket),
                    Action::Queue => queue.push_back((now, attempt, who)),
                    other => assert!(
                        who == Who::Attacker,
                        "an honest client {attempt:?} got {other:?} at {elapsed:?}: {:?}",
                        a.counts()
                    ),
                }
                while let Some((since, attempt, who)) = queue.pop_front() {
                    let action = if now >= since + LIMITS.queue_wait {
                        assert!(who == Who::Attacker, "an honest client waited too long");
                        a.expire_queued(attempt)
                    } else {
                        a.admit_queued(attempt, now)
                    };
                    match action {
                        Action::Queue => {
                            queue.push_front((since, attempt, who));
                            break;
                        }
                        Action::Accept { ticket, deadline } if who == Who::Attacker => {
                            attacker.push((now, deadline, ticket))
                        }
                        Action::Accept { ticket, .. } => honest_done.push(ticket),
                        Action::Retry if who == Who::Honest => {
                            match a.admit(validated(attempt), now) {
                                Action::Accept { ticket, .. } => honest_done.push(ticket),
                                Action::Queue => queue.push_back((since, validated(attempt), who)),
                                other => panic!("an honest client got {other:?}"),
                            }
                        }
                        other => assert!(
                            who == Who::Attacker,
                            "an honest client {attempt:?} got {other:?} at {elapsed:?}: {:?}",
                            a.counts()
                        ),
                    }
                }
            }
            most = most.max(attacker.len());
            over += u64::from(attacker.len() > LIMITS.retry_from);
            for t in honest_done {
                a.finish(t, Outcome::Completed, now);
            }
        }
        (most, over)
    }

    #[test]
    fn an_attacker_spacing_stalled_handshakes_under_the_thresholds_never_locks_the_door() {
        let ticks = |d: Duration| (d.as_millis() / 10) as u64;
        // Each stalled handshake abandoned just before it is stale, a steady trickle: the
        // first abandoned one is a sign, so the door is on guard at once and stays so.
        let (most, over) = siege(LIMITS.stale_after - ms(10), 1, |_| true);
        assert!(most <= LIMITS.unvalidated_max, "{most}");
        assert!(
            over <= ticks(LIMITS.stale_after),
            "{over} ticks over retry_from"
        );
        // Held to the deadline, a burst each tick: stale after `stale_after`, cut at
        // `unvalidated_timeout`; the door stays on guard while the flood goes on.
        let (most, over) = siege(Duration::MAX, 5, |_| true);
        assert!(most <= LIMITS.unvalidated_max, "{most}");
        assert!(
            over <= ticks(LIMITS.unvalidated_timeout),
            "{over} ticks over retry_from"
        );
        // The worst case: a burst, then silence for `guard_for` so that the door calms down,
        // then another. Each burst holds at most `unvalidated_max` slots for at most
        // `unvalidated_timeout`: at most that share of the time.
        let period = LIMITS.unvalidated_timeout + LIMITS.guard_for + ms(100);
        let (most, over) = siege(Duration::MAX, 10, |t| {
            (t.as_millis() % period.as_millis()) < 20
        });
        assert!(most <= LIMITS.unvalidated_max, "{most}");
        let rounds = ticks(ms(300_000)) / ticks(period) + 1;
        assert!(
            over <= rounds * ticks(LIMITS.unvalidated_timeout),
            "{over} ticks over retry_from in {rounds} rounds"
        );
    }

    #[test]
    fn on_guard_past_the_threshold_every_unvalidated_attempt_gets_a_retry_and_a_validated_one_a_slot(
    ) {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let (t, _) = ticket(a.admit(fresh("198.51.100.1"), t0));
        a.finish(t, Outcome::TimedOut, t0);
        take_slots(&mut a, LIMITS.retry_from, fresh, "203.0.113", t0);
        assert_eq!(a.admit(fresh("192.0.2.99"), t0), Action::Retry);
        // The same client comes back with the token: admitted, with the long deadline.
        let (_, d) = ticket(a.admit(proven("192.0.2.99"), t0));
        assert_eq!(d, LIMITS.validated_timeout);
    }

    #[test]
    fn a_validated_source_over_its_cap_is_refused_and_counted() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        for _ in 0..LIMITS.per_source_max {
            ticket(a.admit(proven("192.0.2.5"), t0));
        }
        assert_eq!(a.admit(proven("192.0.2.5"), t0), Action::Refuse);
        assert_eq!(a.counts().refused_per_address, 1);
        assert_eq!(a.counts().refused_busy, 0);
        // Another proven address is not affected.
        ticket(a.admit(proven("192.0.2.6"), t0));
    }

    #[test]
    fn every_slot_taken_queues_validated_then_refuses_and_retries_unvalidated() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let mut held = take_slots(&mut a, LIMITS.total_max, proven, "203.0.113", t0);
        for n in 0..LIMITS.queue_max {
            assert_eq!(a.admit(proven(&format!("192.0.2.{n}")), t0), Action::Queue);
        }
        // The queue is full: the next proven attempt is refused, an unvalidated one retried.
        assert_eq!(a.admit(proven("192.0.2.99"), t0), Action::Refuse);
        assert_eq!(a.counts().refused_busy, 1);
        assert_eq!(a.admit(fresh("192.0.2.98"), t0), Action::Retry);
        assert_eq!(a.counts().pending, LIMITS.total_max as u64);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64);
        // No slot yet: the oldest keeps its place.
        assert_eq!(a.admit_queued(proven("192.0.2.0"), t0), Action::Queue);
        // A slot frees: the oldest queued attempt takes it, with the validated deadline.
        a.finish(held.remove(0), Outcome::Completed, t0);
        let (t, d) = ticket(a.admit_queued(proven("192.0.2.0"), t0));
        assert!(t.validated());
        assert_eq!(d, LIMITS.validated_timeout);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64 - 1);
        // The queue has room again for a newcomer.
        assert_eq!(a.admit(proven("192.0.2.50"), t0), Action::Queue);
        assert_eq!(a.counts().queued_total, LIMITS.queue_max as u64 + 1);
    }

    #[test]
    fn a_queued_attempt_that_outwaits_its_bound_is_refused_and_counted() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        take_slots(&mut a, LIMITS.total_max, proven, "203.0.113", t0);
        assert_eq!(a.admit(proven("192.0.2.1"), t0), Action::Queue);
        assert_eq!(a.expire_queued(proven("192.0.2.1")), Action::Refuse);
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
        let t0 = Instant::now();
        take_slots(&mut a, LIMITS.total_max, proven, "203.0.113", t0);
        for _ in 0..LIMITS.per_source_max {
            assert_eq!(a.admit(proven("198.51.100.7"), t0), Action::Queue);
        }
        assert_eq!(a.admit(proven("198.51.100.7"), t0), Action::Refuse);
        // Another proven source still gets a place.
        assert_eq!(a.admit(proven("192.0.2.1"), t0), Action::Queue);
        a.forget_queued(ip("198.51.100.7"));
        assert_eq!(a.admit(proven("198.51.100.7"), t0), Action::Queue);
    }

    /// Puts `a` on guard at `now`: an unvalidated handshake abandoned.
    fn alarm(a: &mut Admission, now: Instant) {
        let (t, _) = ticket(a.admit(fresh("198.51.100.250"), now));
        a.finish(t, Outcome::Failed, now);
        assert!(a.counts().on_guard);
    }

    #[test]
    fn new_clients_queued_while_calm_are_asked_to_validate_once_on_guard() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        take_slots(&mut a, LIMITS.unvalidated_max, fresh, "203.0.113", t0);
        for n in 0..LIMITS.queue_max {
            assert_eq!(a.admit(fresh(&format!("192.0.2.{n}")), t0), Action::Queue);
        }
        // The queue is full too: a Retry.
        assert_eq!(a.admit(fresh("192.0.2.99"), t0), Action::Retry);
        // The ones held go stale: on guard, the queued ones are asked to validate in turn.
        let later = t0 + LIMITS.stale_after;
        assert_eq!(a.admit_queued(fresh("192.0.2.0"), later), Action::Retry);
        assert!(a.counts().on_guard);
        let no_retry = Attempt {
            may_retry: false,
            ..fresh("192.0.2.1")
        };
        assert_eq!(a.admit_queued(no_retry, later), Action::Ignore);
        // One that outwaited its bound is asked to validate too (a proven one is refused).
        assert_eq!(a.expire_queued(fresh("192.0.2.2")), Action::Retry);
        let counts = a.counts();
        assert_eq!((counts.queued, counts.queue_expired), (0, 1));
        assert_eq!((counts.retried, counts.ignored), (3, 1));
    }

    #[test]
    fn on_guard_a_stalled_flood_never_reaches_the_queue() {
        // On guard, unvalidated attempts are retried or ignored when busy, never queued: only a
        // client that proved its address can wait for a slot.
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        alarm(&mut a, t0);
        take_slots(&mut a, LIMITS.total_max, proven, "203.0.113", t0);
        for n in 0..1_000u32 {
            let ip = IpAddr::from(n.to_be_bytes()).to_string();
            assert_eq!(a.admit(fresh(&ip), t0), Action::Retry);
            let no_retry = Attempt {
                may_retry: false,
                ..fresh(&ip)
            };
            assert_eq!(a.admit(no_retry, t0), Action::Ignore);
        }
        assert_eq!(a.counts().queued, 0);
    }

    #[test]
    fn an_attempt_that_may_not_retry_is_ignored_not_answered() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        alarm(&mut a, t0);
        take_slots(&mut a, LIMITS.retry_from, fresh, "203.0.113", t0);
        let attempt = Attempt {
            may_retry: false,
            ..fresh("192.0.2.1")
        };
        assert_eq!(a.admit(attempt, t0), Action::Ignore);
        assert_eq!(a.counts().ignored, 1);
    }

    #[test]
    fn finishing_frees_the_slot_and_the_table_entry_and_counts_the_outcome() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        let (t1, _) = ticket(a.admit(fresh("192.0.2.1"), t0));
        let (t2, _) = ticket(a.admit(fresh("192.0.2.1"), t0));
        assert_eq!(a.admit(fresh("192.0.2.1"), t0), Action::Retry);
        a.finish(t1, Outcome::TimedOut, t0);
        assert_eq!(a.sources(), 1);
        let (t3, _) = ticket(a.admit(fresh("192.0.2.1"), t0));
        a.finish(t2, Outcome::Completed, t0);
        a.finish(t3, Outcome::Failed, t0);
        let counts = a.counts();
        assert_eq!(counts.pending, 0);
        assert_eq!(counts.timed_out, 1);
        assert_eq!(counts.completed, 1);
        assert_eq!(counts.accepted, 3);
        assert_eq!(a.sources(), 0);
        assert!(a.unvalidated.is_empty());
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        ticket(a.admit(proven("2001:db8:1:2::1"), t0));
        ticket(a.admit(proven("2001:db8:1:2:ffff::9"), t0));
        assert_eq!(a.admit(proven("2001:db8:1:2::77"), t0), Action::Refuse);
        ticket(a.admit(proven("2001:db8:1:3::1"), t0));
        ticket(a.admit(proven("192.0.2.8"), t0));
        ticket(a.admit(proven("::ffff:192.0.2.8"), t0));
        assert_eq!(a.admit(proven("192.0.2.8"), t0), Action::Refuse);
    }

    #[test]
    fn the_source_table_stays_bounded_under_many_addresses() {
        let (mut a, t0) = (Admission::new(LIMITS), Instant::now());
        for n in 0..10_000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            let _ = a.admit(fresh(&ip.to_string()), t0);
            let _ = a.admit(proven(&ip.to_string()), t0);
        }
        assert!(a.sources() <= LIMITS.total_max + LIMITS.queue_max);
        assert_eq!(a.counts().pending, LIMITS.total_max as u64);
        assert_eq!(a.counts().queued, LIMITS.queue_max as u64);
        assert!(a.unvalidated.len() <= LIMITS.unvalidated_max);
    }
}
