//! Retry delays, exponential with jitter: redials from [`REDIAL_BACKOFF_MIN`] to
//! [`REDIAL_BACKOFF_MAX`], and retries of the direct path under a relayed connection from
//! [`REPUNCH_BACKOFF_MIN`] to [`REPUNCH_BACKOFF_MAX`].

use std::time::Duration;

use crate::limits::{
    REDIAL_BACKOFF_MAX, REDIAL_BACKOFF_MIN, REDIAL_JITTER, REPUNCH_BACKOFF_MAX, REPUNCH_BACKOFF_MIN,
};

/// The delay before redial attempt `attempt` (1-based); `unit` in [0, 1) picks the jitter.
pub fn redial_delay(attempt: u32, unit: f64) -> Duration {
    backoff(REDIAL_BACKOFF_MIN, REDIAL_BACKOFF_MAX, attempt, unit)
}

/// The delay before try `attempt` (1-based) of the direct path under a relayed connection.
pub fn repunch_delay(attempt: u32, unit: f64) -> Duration {
    backoff(REPUNCH_BACKOFF_MIN, REPUNCH_BACKOFF_MAX, attempt, unit)
}

/// An exponential delay from `min` doubling to `max` for attempt `attempt` (1-based), spread by
/// ±[`REDIAL_JITTER`] with `unit` in [0, 1).
pub fn backoff(min: Duration, max: Duration, attempt: u32, unit: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let base = min.saturating_mul(1 << doublings).min(max);
    let spread = 1.0 + REDIAL_JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    base.mul_f64(spread).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_jitter_stays_in_bounds() {
        assert_eq!(redial_delay(1, 0.5), REDIAL_BACKOFF_MIN);
        assert_eq!(redial_delay(2, 0.5), REDIAL_BACKOFF_MIN * 2);
        assert_eq!(redial_delay(40, 0.5), REDIAL_BACKOFF_MAX);
        let low = redial_delay(3, 0.0);
        let high = redial_delay(3, 0.999);
        assert!(low < REDIAL_BACKOFF_MIN * 4 && high > REDIAL_BACKOFF_MIN * 4);
        assert!(low >= (REDIAL_BACKOFF_MIN * 4).mul_f64(1.0 - REDIAL_JITTER));
    }

    #[test]
    fn direct_path_retries_back_off_to_their_own_cap() {
        assert_eq!(repunch_delay(1, 0.5), REPUNCH_BACKOFF_MIN);
        assert_eq!(repunch_delay(3, 0.5), REPUNCH_BACKOFF_MIN * 4);
        assert_eq!(repunch_delay(40, 0.999), REPUNCH_BACKOFF_MAX);
    }
}
