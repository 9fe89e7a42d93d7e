//! Tracker timing and sizing options, validated before any shard starts.

use super::types::Millis;
use crate::limits;

/// Options of a tracker (every shard of a pool uses the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Interval between heartbeat ticks (Phoenix default 1.5 s).
    pub broadcast_period: Millis,
    /// An idle shard still sends an empty heartbeat every this many ticks (0 and 1 both mean
    /// every tick); so idle heartbeats are [`Options::idle_heartbeat`] apart.
    pub max_silent_periods: u32,
    /// Silence after which a replica is marked down (default `broadcast * max_silent * 2`).
    /// Must exceed [`Options::idle_heartbeat`], with a margin for the network's delay
    /// variation and timer lateness: a gap between two heartbeats of an idle peer is the idle
    /// heartbeat interval plus that variation.
    pub down_period: Millis,
    /// Silence after which a replica is erased (default 20 min).
    pub permdown_period: Millis,
    /// The shard decides whom to pull from once every this many ticks.
    pub clock_sample_periods: u32,
    /// Caps of the delta-generation ladder (ascending).
    pub max_delta_sizes: Vec<usize>,
    /// Number of shards; must be the same on every node.
    pub shard_count: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self::with_periods(1_500, 10, 1_200_000)
    }
}

/// Invalid options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The broadcast period is zero.
    #[error("broadcast_period must be positive")]
    ZeroBroadcast,
    /// Down period below two broadcast periods.
    #[error("down_period must be at least twice as large as the broadcast_period")]
    DownBelowBroadcast,
    /// Down period not above the idle heartbeat interval ([`Options::idle_heartbeat`]): idle
    /// peers would flap.
    #[error("down_period must be larger than max(max_silent_periods, 1) * broadcast_period")]
    DownBelowIdleHeartbeat,
    /// Permdown not above down.
    #[error("permdown_period must be larger than the down_period")]
    PermdownBelowDown,
    /// Shard count outside `1..=MAX_PRESENCE_SHARDS`.
    #[error("shard_count must be between 1 and {}", limits::MAX_PRESENCE_SHARDS)]
    ShardCount,
    /// Generation caps empty, not ascending, too many or too large.
    #[error(
        "max_delta_sizes must be 1..={} ascending sizes up to {}",
        limits::MAX_DELTA_GENERATIONS,
        limits::MAX_DELTA_GENERATION_SIZE
    )]
    DeltaSizes,
    /// Clock sample periods is zero.
    #[error("clock_sample_periods must be positive")]
    ZeroSample,
}

impl Options {
    /// Options with the given broadcast period, idle heartbeat count and permdown period; the
    /// down period takes Phoenix's default of `broadcast * max_silent * 2`.
    pub fn with_periods(
        broadcast_period: Millis,
        max_silent_periods: u32,
        permdown_period: Millis,
    ) -> Self {
        Self {
            broadcast_period,
            max_silent_periods,
            down_period: broadcast_period * u64::from(max_silent_periods) * 2,
            permdown_period,
            clock_sample_periods: 2,
            max_delta_sizes: vec![100, 1_000, 10_000],
            shard_count: 1,
        }
    }

    /// The idle heartbeat interval: the shard sends an empty heartbeat on the
    /// `max_silent_periods`-th silent tick (every tick when it is 0 or 1).
    pub fn idle_heartbeat(&self) -> Millis {
        self.broadcast_period
            .saturating_mul(u64::from(self.max_silent_periods.max(1)))
    }

    /// Checks the options against each other and against the limits.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.broadcast_period == 0 {
            return Err(OptionsError::ZeroBroadcast);
        }
        if self.down_period < 2 * self.broadcast_period {
            return Err(OptionsError::DownBelowBroadcast);
        }
        if self.down_period <= self.idle_heartbeat() {
            return Err(OptionsError::DownBelowIdleHeartbeat);
        }
        if self.permdown_period <= self.down_period {
            return Err(OptionsError::PermdownBelowDown);
        }
        if self.shard_count == 0 || self.shard_count > limits::MAX_PRESENCE_SHARDS {
            return Err(OptionsError::ShardCount);
        }
        if self.clock_sample_periods == 0 {
            return Err(OptionsError::ZeroSample);
        }
        let sizes = &self.max_delta_sizes;
        let ascending = sizes.windows(2).all(|w| w[0] < w[1]);
        let bounded = sizes
            .iter()
            .all(|s| *s <= limits::MAX_DELTA_GENERATION_SIZE);
        if sizes.is_empty() || sizes.len() > limits::MAX_DELTA_GENERATIONS || !ascending || !bounded
        {
            return Err(OptionsError::DeltaSizes);
        }
        Ok(())
    }
}
