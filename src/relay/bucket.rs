//! A token bucket over packets and bytes at once, with time passed in (sans-IO).
//!
//! The switchboard charges every frame a client sends against its bucket: one packet token and
//! one byte token per frame byte. A frame passes only if both kinds of token are there, so a
//! client is held to whichever of its packet rate or byte rate it reaches first. Tokens refill
//! continuously at the sustained rate up to the burst depth.

use std::time::Instant;

/// Sustained rate and burst depth of a [`TokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Packets per second refilled.
    pub packets_per_sec: f64,
    /// Packet tokens held at most.
    pub packets_burst: f64,
    /// Bytes per second refilled.
    pub bytes_per_sec: f64,
    /// Byte tokens held at most.
    pub bytes_burst: f64,
}

/// Packet and byte tokens of one client; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    packets: f64,
    bytes: f64,
    last: Instant,
}

impl Rate {
    /// A rate over counts alone (take them with a length of 0): no byte limit.
    pub fn count(per_sec: f64, burst: f64) -> Rate {
        Rate {
            packets_per_sec: per_sec,
            packets_burst: burst,
            bytes_per_sec: 0.0,
            bytes_burst: 0.0,
        }
    }
}

impl TokenBucket {
    /// A full bucket as of `now`.
    pub fn new(rate: &Rate, now: Instant) -> Self {
        Self {
            packets: rate.packets_burst,
            bytes: rate.bytes_burst,
            last: now,
        }
    }

    /// Takes one packet and `len` bytes if both are available at `now`; false (nothing taken)
    /// otherwise. A `now` earlier than the last call refills nothing.
    pub fn take(&mut self, rate: &Rate, len: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        if now > self.last {
            self.last = now;
        }
        self.packets = (self.packets + elapsed * rate.packets_per_sec).min(rate.packets_burst);
        self.bytes = (self.bytes + elapsed * rate.bytes_per_sec).min(rate.bytes_burst);
        let len = len as f64;
        if self.packets >= 1.0 && self.bytes >= len {
            self.packets -= 1.0;
            self.bytes -= len;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RATE: Rate = Rate {
        packets_per_sec: 100.0,
        packets_burst: 10.0,
        bytes_per_sec: 10_000.0,
        bytes_burst: 2_000.0,
    };

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(&RATE, t0);
        let passed = (0..20).filter(|_| bucket.take(&RATE, 10, t0)).count();
        assert_eq!(passed, 10, "exactly the burst passes at once");
        // 100 ms refills 10 packets.
        let t1 = t0 + Duration::from_millis(100);
        let passed = (0..20).filter(|_| bucket.take(&RATE, 10, t1)).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn bytes_limit_applies_independently() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(&RATE, t0);
        assert!(bucket.take(&RATE, 1_500, t0));
        assert!(!bucket.take(&RATE, 1_500, t0), "only 500 byte tokens left");
        assert!(bucket.take(&RATE, 500, t0));
        // 100 ms refills 1,000 bytes: not enough for 1,500, enough for 1,000.
        let t1 = t0 + Duration::from_millis(100);
        assert!(!bucket.take(&RATE, 1_500, t1));
        assert!(bucket.take(&RATE, 1_000, t1));
    }

    #[test]
    fn a_count_rate_limits_counts_alone() {
        let rate = Rate::count(10.0, 3.0);
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(&rate, t0);
        assert_eq!((0..10).filter(|_| bucket.take(&rate, 0, t0)).count(), 3);
        assert!(
            bucket.take(&rate, 0, t0 + Duration::from_millis(100)),
            "a tenth of a second refills one"
        );
        assert!(!bucket.take(&rate, 0, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(&RATE, t0);
        let passed = (0..20).filter(|_| bucket.take(&RATE, 1, t0)).count();
        assert_eq!(passed, 10);
        assert!(!bucket.take(&RATE, 1, t0 - Duration::from_secs(1)));
    }
}
