//! When a daemon tries its switchboard again: the link's retry policy as a sans-IO state
//! machine (events and time in, the next attempt out), so that a refused daemon neither redials
//! four times a second forever nor gives up on a switchboard that is only restarting.
//!
//! - A dial that fails, or a connection that ends after a welcome, retries with exponential
//!   backoff and jitter ([`redial_delay`]: 250 ms doubling to a minute); a welcome resets it.
//! - A refused join backs off exponentially too, from [`REFUSED_BACKOFF_MIN`] to
//!   [`REFUSED_BACKOFF_MAX`] (15 min), and the count is not reset by the reconnect that follows
//!   (the bug this replaces: every refusal restarted at the shortest delay).
//! - A refusal that only the user can fix (a missing, unknown, used or expired invite code, or
//!   a membership the operator removed) is not retried at all: the link waits until the daemon is
//!   given a new code (started again with `--switchboard HOST:PORT#CODE`).

use std::time::Duration;

use crate::limits::{REFUSED_BACKOFF_MAX, REFUSED_BACKOFF_MIN};
use crate::runtime::backoff::{backoff, redial_delay};
use crate::wire::switchboard::JoinRefusal;

/// What the link does next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Dial again after this long.
    RetryAfter(Duration),
    /// Do not dial again until the user gives a new invite code.
    WaitForUser,
}

/// The retry state of one switchboard link.
#[derive(Clone, Debug, Default)]
pub struct Retry {
    /// Failed dials or ended connections since the last welcome.
    failures: u32,
    /// Refused joins since the last welcome.
    refusals: u32,
}

impl Retry {
    /// The switchboard welcomed the node: the next trouble starts from the shortest delay.
    pub fn welcomed(&mut self) {
        *self = Retry::default();
    }

    /// A dial failed, or a connection ended without a refusal; `unit` in [0, 1) is the jitter.
    pub fn failed(&mut self, unit: f64) -> Next {
        self.failures = self.failures.saturating_add(1);
        Next::RetryAfter(redial_delay(self.failures, unit))
    }

    /// The switchboard refused the join for `why`; `unit` in [0, 1) is the jitter.
    pub fn refused(&mut self, why: JoinRefusal, unit: f64) -> Next {
        if why == JoinRefusal::Invite {
            return Next::WaitForUser;
        }
        self.refusals = self.refusals.saturating_add(1);
        let delay = backoff(
            REFUSED_BACKOFF_MIN,
            REFUSED_BACKOFF_MAX,
            self.refusals,
            unit,
        );
        Next::RetryAfter(delay)
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
}
