//! Redial delays: exponential from [`REDIAL_BACKOFF_MIN`] to [`REDIAL_BACKOFF_MAX`], with jitter.

use std::time::Duration;

use crate::limits::{REDIAL_BACKOFF_MAX, REDIAL_BACKOFF_MIN, REDIAL_JITTER};

/// The delay before redial attempt `attempt` (1-based); `unit` in [0, 1) picks the jitter.
pub fn redial_delay(attempt: u32, unit: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let base = REDIAL_BACKOFF_MIN.saturating_mul(1 << doublings).min(REDIAL_BACKOFF_MAX);
    let spread = 1.0 + REDIAL_JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    base.mul_f64(spread).min(REDIAL_BACKOFF_MAX)
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
}
