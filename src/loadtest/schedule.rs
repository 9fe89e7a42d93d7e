//! Sans-IO decisions about *when* and *who*: the ramp (how many peers should have started by
//! now), shards (which peers of the population this harness process runs), and each peer's
//! identity, derived from the seed so that a rerun, or another shard, names the same peers.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::LOADTEST_SHARDS_MAX;
use crate::loadtest::LoadtestError;

/// What a run exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// The ramp alone: handshakes, failures, time to all joined, memory per client.
    Connect,
    /// Join/leave churn and status changes seen by watching peers; ghosts at the end.
    Presence,
    /// Introduced pairs making inner QUIC round trips through the switchboards.
    Relay,
    /// Posts replicated along a follow graph over relayed inner QUIC.
    Replicate,
    /// All of the above at once.
    Mixed,
    /// On a cluster the harness spawned: one node killed (SIGKILL) mid-run; its peers move to
    /// the other nodes, and the dead node's presence must leave every other node.
    Failover,
}

impl Scenario {
    /// Whether this run includes `part` (mixed includes every part).
    pub fn includes(self, part: Scenario) -> bool {
        self == part || self == Scenario::Mixed || part == Scenario::Connect
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Presence => "presence",
            Scenario::Relay => "relay",
            Scenario::Replicate => "replicate",
            Scenario::Mixed => "mixed",
            Scenario::Failover => "failover",
        }
    }
}

impl FromStr for Scenario {
    type Err = LoadtestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "connect" => Scenario::Connect,
            "presence" => Scenario::Presence,
            "relay" => Scenario::Relay,
            "replicate" => Scenario::Replicate,
            "mixed" => Scenario::Mixed,
            "failover" => Scenario::Failover,
            other => return Err(LoadtestError::Scenario(other.to_string())),
        })
    }
}

/// This process's part of a population split over `count` harness processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = LoadtestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LoadtestError::Shard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) =
            (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if count == 0 || index >= count || count > LOADTEST_SHARDS_MAX {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Peers of a population of `total` this shard runs: global ids `index, index + count, …`.
    pub fn local_count(self, total: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count));
        total.saturating_sub(i).div_ceil(n)
    }

    /// The global id of this shard's `local`-th peer.
    pub fn global(self, local: u64) -> u64 {
        local * u64::from(self.count) + u64::from(self.index)
    }

    /// This shard's share of a population-wide rate (at least a little, never zero).
    pub fn share(self, rate: f64) -> f64 {
        (rate / f64::from(self.count)).max(f64::MIN_POSITIVE)
    }

    /// The seed of this shard's own random choices (churn), distinct per shard.
    pub fn seed(self, seed: u64) -> u64 {
        let bytes = blake3::hash(&[&seed.to_le_bytes()[..], &self.index.to_le_bytes()].concat());
        let mut out = [0u8; 8];
        out.copy_from_slice(&bytes.as_bytes()[..8]);
        u64::from_le_bytes(out)
    }
}

/// The secret key of the population's peer `global` in a run seeded with `seed`: the same in
/// every shard and every rerun, distinct per peer.
pub fn peer_secret(seed: u64, global: u64) -> [u8; 32] {
    let mut input = Vec::with_capacity(32);
    input.extend_from_slice(b"kith-loadtest-peer");
    input.extend_from_slice(&seed.to_le_bytes());
    input.extend_from_slice(&global.to_le_bytes());
    *blake3::hash(&input).as_bytes()
}

/// The ramp: `peers` started at `per_s` per second, the first at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ramp {
    /// Peers to start.
    pub peers: u64,
    /// Starts per second.
    pub per_s: f64,
}

impl Ramp {
    /// How many should have started `elapsed` after the ramp began.
    pub fn due(&self, elapsed: Duration) -> u64 {
        let due = (elapsed.as_secs_f64() * self.per_s).floor() as u64 + 1;
        due.min(self.peers)
    }

    /// How long the whole ramp takes.
    pub fn length(&self) -> Duration {
        Duration::from_secs_f64(self.peers.saturating_sub(1) as f64 / self.per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_starts_one_at_once_then_at_its_rate_and_stops_at_the_total() {
        let ramp = Ramp {
            peers: 1_000,
            per_s: 100.0,
        };
        assert_eq!(ramp.due(Duration::ZERO), 1);
        assert_eq!(ramp.due(Duration::from_millis(500)), 51);
        assert_eq!(ramp.due(Duration::from_secs(60)), 1_000);
        assert_eq!(ramp.length(), Duration::from_secs_f64(9.99));
    }

    #[test]
    fn shards_split_the_population_exactly() {
        let total = 10;
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut all: Vec<u64> = shards
            .iter()
            .flat_map(|s| (0..s.local_count(total)).map(move |l| s.global(l)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<_>>());
        assert_ne!(shards[0].seed(7), shards[1].seed(7));
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!(
            "1/4".parse::<Shard>().ok(),
            Some(Shard { index: 1, count: 4 })
        );
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn identities_are_seeded_and_distinct() {
        assert_eq!(peer_secret(1, 5), peer_secret(1, 5));
        assert_ne!(peer_secret(1, 5), peer_secret(1, 6));
        assert_ne!(peer_secret(1, 5), peer_secret(2, 5));
    }

    #[test]
    fn mixed_includes_every_part_and_connect_is_always_in() {
        assert!(Scenario::Mixed.includes(Scenario::Relay));
        assert!(Scenario::Relay.includes(Scenario::Connect));
        assert!(!Scenario::Relay.includes(Scenario::Presence));
        assert_eq!("relay".parse::<Scenario>().ok(), Some(Scenario::Relay));
    }
}
