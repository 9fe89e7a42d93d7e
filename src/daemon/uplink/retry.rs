//! When, and to which member of its switchboard cluster, a daemon's link dials next: the link's
//! retry policy as a sans-IO state machine (events and time in, the next attempt out), so that a
//! refused daemon neither redials four times a second forever nor gives up on a switchboard that
//! is only restarting, and a daemon whose node dies moves to another node of the cluster at once.
//!
//! A link names one switchboard or a cluster of them ([`crate::net::target::Cluster`]); its
//! members (each address a name resolves to) are tried in turn, starting from the first.
//!
//! - A dial that fails, a connection that ends (its node died or stopped) or a refused join moves
//!   to the next member after at most [`SB_FAILOVER_JITTER_MAX`] (jitter, so the clients of a
//!   node that dies do not all land on the next node in the same instant). A welcome keeps the
//!   member and resets the counts.
//! - Once every member was tried without a welcome (a round), the link waits: a round of failed
//!   dials or ended connections backs off exponentially with jitter ([`redial_delay`]: 250 ms
//!   doubling to a minute); a round with a refused join backs off from [`REFUSED_BACKOFF_MIN`] to
//!   [`REFUSED_BACKOFF_MAX`] (15 min), and the count is not reset by the reconnect that follows
//!   (the bug this replaces: every refusal restarted at the shortest delay).
//! - A round in which every member refused the invite code (missing, unknown, used or expired, or
//!   a membership the operator removed) is not retried at all: the link waits until the daemon is
//!   given a new code (started again with `--switchboard HOST:PORT#CODE`).
//!
//! With one member every outcome ends a round, so a single switchboard backs off exactly as a
//! link without a cluster does.

use std::time::Duration;

use crate::limits::{REFUSED_BACKOFF_MAX, REFUSED_BACKOFF_MIN, SB_FAILOVER_JITTER_MAX};
use crate::runtime::backoff::{backoff, redial_delay};
use crate::wire::switchboard::JoinRefusal;

/// What the link does next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Dial again (the member [`Retry::member`] names) after this long.
    RetryAfter(Duration),
    /// Do not dial again until the user gives a new invite code.
    WaitForUser,
}

/// How one attempt on one member ended, as the round keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Round {
    /// Members tried in this round.
    tried: usize,
    /// A member refused the join for a reason other than the invite code.
    refused: bool,
    /// A member failed (dial, handshake, or a connection that ended).
    failed: bool,
}

/// The retry state of one switchboard link.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Rounds of failed dials or ended connections since the last welcome.
    failures: u32,
    /// Rounds with a refused join since the last welcome.
    refusals: u32,
    /// How many members the cluster has now (at least one).
    members: usize,
    /// The member to dial next.
    member: usize,
    round: Round,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::new(1)
    }
}

impl Retry {
    /// The retry state of a link to `members` switchboards (at least one is assumed).
    pub fn new(members: usize) -> Self {
        Retry {
            failures: 0,
            refusals: 0,
            members: members.max(1),
            member: 0,
            round: Round::default(),
        }
    }

    /// The cluster now has `members` members (its names resolved to more or fewer addresses).
    pub fn set_members(&mut self, members: usize) {
        self.members = members.max(1);
        if self.member >= self.members {
            self.member = 0;
        }
        self.round.tried = self.round.tried.min(self.members - 1);
    }

    /// The member to dial now (an index into the cluster's resolved members).
    pub fn member(&self) -> usize {
        self.member
    }

    /// Whether the next dial starts a round (the link then resolves the cluster's names again).
    pub fn starts_round(&self) -> bool {
        self.round.tried == 0
    }

    /// The switchboard welcomed the node: the next trouble starts from the shortest delay, on
    /// the next member.
    pub fn welcomed(&mut self) {
        self.failures = 0;
        self.refusals = 0;
        self.round = Round::default();
    }

    /// A dial failed, or a connection ended without a refusal; `unit` in [0, 1) is the jitter.
    pub fn failed(&mut self, unit: f64) -> Next {
        self.round.failed = true;
        self.next(unit)
    }

    /// The member refused the join for `why`; `unit` in [0, 1) is the jitter.
    pub fn refused(&mut self, why: JoinRefusal, unit: f64) -> Next {
        if why != JoinRefusal::Invite {
            self.round.refused = true;
        }
        self.next(unit)
    }

    /// Move to the next member: at once (with jitter) within a round, after the round's backoff
    /// when every member has been tried.
    fn next(&mut self, unit: f64) -> Next {
        self.member = (self.member + 1) % self.members;
        self.round.tried += 1;
        if self.round.tried < self.members {
            return Next::RetryAfter(SB_FAILOVER_JITTER_MAX.mul_f64(unit.clamp(0.0, 1.0)));
        }
        let round = std::mem::take(&mut self.round);
        if round.refused {
            self.refusals = self.refusals.saturating_add(1);
            Next::RetryAfter(backoff(
                REFUSED_BACKOFF_MIN,
                REFUSED_BACKOFF_MAX,
                self.refusals,
                unit,
            ))
        } else if round.failed {
            self.failures = self.failures.saturating_add(1);
            Next::RetryAfter(redial_delay(self.failures, unit))
        } else {
            // Every member refused the invite code: only the user can fix it.
            Next::WaitForUser
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_back_off_to_fifteen_minutes_and_reconnects_do_not_reset_them() {
        let mut retry = Retry::default();
        let mut delays = Vec::new();
        for _ in 0..12 {
            // A refusal always comes after a successful dial: the dial must not reset the count.
            match retry.refused(JoinRefusal::Busy, 0.5) {
                Next::RetryAfter(d) => delays.push(d),
                Next::WaitForUser => panic!("a busy refusal is retried"),
            }
        }
        assert_eq!(delays[0], REFUSED_BACKOFF_MIN);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), REFUSED_BACKOFF_MAX);
        let first_minute: Duration = delays.iter().take(4).sum();
        assert!(
            first_minute >= Duration::from_secs(60),
            "at most a handful of attempts in the first minute: {delays:?}"
        );
    }

    #[test]
    fn an_invite_refusal_waits_for_the_user() {
        let mut retry = Retry::default();
        assert_eq!(retry.refused(JoinRefusal::Invite, 0.3), Next::WaitForUser);
        assert_eq!(retry.refused(JoinRefusal::Invite, 0.3), Next::WaitForUser);
    }

    #[test]
    fn a_welcome_resets_both_counts() {
        let mut retry = Retry::default();
        for _ in 0..5 {
            retry.failed(0.5);
            retry.refused(JoinRefusal::Other, 0.5);
        }
        retry.welcomed();
        assert_eq!(retry.failed(0.5), Next::RetryAfter(redial_delay(1, 0.5)));
        assert_eq!(
            retry.refused(JoinRefusal::Other, 0.5),
            Next::RetryAfter(REFUSED_BACKOFF_MIN)
        );
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut retry = Retry::default();
        for i in 0..50 {
            let unit = f64::from(i) / 50.0;
            if let Next::RetryAfter(d) = retry.refused(JoinRefusal::Busy, unit) {
                assert!(d <= REFUSED_BACKOFF_MAX);
            }
        }
    }

    #[test]
    fn a_cluster_moves_to_the_next_member_at_once_and_backs_off_only_after_a_round() {
        let mut retry = Retry::new(3);
        assert_eq!(retry.member(), 0);
        retry.welcomed();
        // Its node died: the next member, within the failover jitter, not a backoff.
        match retry.failed(0.99) {
            Next::RetryAfter(d) => assert!(d <= SB_FAILOVER_JITTER_MAX, "{d:?}"),
            Next::WaitForUser => panic!("a failure is retried"),
        }
        assert_eq!(retry.member(), 1);
        // The second refuses (busy), the third fails: the round is over and it backs off as
        // refused, from the first member again.
        assert!(
            matches!(retry.refused(JoinRefusal::Busy, 0.5), Next::RetryAfter(d) if d <= SB_FAILOVER_JITTER_MAX)
        );
        assert_eq!(retry.member(), 2);
        assert_eq!(
            retry.failed(0.5),
            Next::RetryAfter(REFUSED_BACKOFF_MIN),
            "a round with a refusal backs off as refused"
        );
        assert_eq!(retry.member(), 0);
        assert!(retry.starts_round());
        // A round of failures alone backs off from the redial minimum, growing per round.
        for _ in 0..2 {
            assert!(
                matches!(retry.failed(0.5), Next::RetryAfter(d) if d <= SB_FAILOVER_JITTER_MAX)
            );
        }
        assert_eq!(retry.failed(0.5), Next::RetryAfter(redial_delay(1, 0.5)));
        for _ in 0..2 {
            retry.failed(0.5);
        }
        assert_eq!(retry.failed(0.5), Next::RetryAfter(redial_delay(2, 0.5)));
        // A welcome on member 1 keeps it and resets the counts.
        retry.failed(0.5);
        assert_eq!(retry.member(), 1);
        retry.welcomed();
        assert_eq!(retry.member(), 1);
        for _ in 0..2 {
            retry.failed(0.5);
        }
        assert_eq!(retry.failed(0.5), Next::RetryAfter(redial_delay(1, 0.5)));
    }

    #[test]
    fn only_a_round_of_invite_refusals_waits_for_the_user() {
        let mut retry = Retry::new(2);
        assert!(matches!(
            retry.refused(JoinRefusal::Invite, 0.1),
            Next::RetryAfter(_)
        ));
        assert_eq!(retry.refused(JoinRefusal::Invite, 0.1), Next::WaitForUser);
        // One member that refuses the code and one that is down: the round is retried.
        let mut retry = Retry::new(2);
        retry.refused(JoinRefusal::Invite, 0.1);
        assert!(matches!(retry.failed(0.1), Next::RetryAfter(_)));
    }

    #[test]
    fn a_cluster_that_shrinks_keeps_its_member_in_range() {
        let mut retry = Retry::new(4);
        for _ in 0..3 {
            retry.failed(0.5);
        }
        assert_eq!(retry.member(), 3);
        retry.set_members(2);
        assert_eq!(retry.member(), 0);
        assert!(matches!(retry.failed(0.5), Next::RetryAfter(d) if d == redial_delay(1, 0.5)));
        retry.set_members(0);
        assert_eq!(retry.member(), 0, "no member resolved counts as one");
    }
}
