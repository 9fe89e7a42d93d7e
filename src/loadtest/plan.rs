//! Sans-IO: the part each simulated peer plays, decided from its local index alone, so a peer
//! restarted by its supervisor plays the same part again.
//!
//! Local indices are split into consecutive ranges: relayed pairs first (`2k` calls `2k + 1`),
//! then the replicate scenario's follow graph, then the presence population, which churns and
//! watches. Peers go to switchboards round-robin (`l % S`), so a pair `2k, 2k + 1` crosses the
//! cluster whenever there are two nodes or more, and each presence peer watches one neighbour on
//! another node (`l + 1`) and one on its own (`l + S`).

use std::ops::Range;

use crate::loadtest::Scenario;

/// The parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Peers this harness runs.
    pub peers: u64,
    /// Switchboards they are spread over.
    pub switchboards: u64,
    /// Relayed pairs.
    pub relay_pairs: u64,
    /// Peers in the follow graph.
    pub replicate_peers: u64,
    /// What the run exercises.
    pub scenario: Scenario,
}

/// What one peer does besides joining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Joins and stays (the connect scenario, or peers beyond every part).
    Idle,
    /// Asks to be introduced to `callee` and makes round trips to it.
    Caller {
        /// The other end, a local index.
        callee: u64,
    },
    /// Accepts an introduction and echoes.
    Callee,
    /// Node `node` of the follow graph.
    Replicator {
        /// Index in the graph.
        node: u64,
    },
    /// Churns and watches `watches` (local indices).
    Presence {
        /// Whom it watches.
        watches: [u64; 2],
    },
}

impl Plan {
    /// A plan whose ranges fit in `peers` (pairs and graph cut down if needed).
    pub fn new(
        peers: u64,
        switchboards: u64,
        scenario: Scenario,
        relay_pairs: u64,
        replicate_peers: u64,
    ) -> Plan {
        let relay_pairs = match scenario.includes(Scenario::Relay) && scenario != Scenario::Connect
        {
            true => relay_pairs.min(peers / 2),
            false => 0,
        };
        let replicate_peers =
            match scenario.includes(Scenario::Replicate) && scenario != Scenario::Connect {
                true => replicate_peers.min(peers - 2 * relay_pairs),
                false => 0,
            };
        Plan {
            peers,
            switchboards: switchboards.max(1),
            relay_pairs,
            replicate_peers,
            scenario,
        }
    }

    /// The switchboard (index into the targets) of local peer `l`.
    pub fn switchboard(&self, l: u64) -> usize {
        (l % self.switchboards) as usize
    }

    /// The follow graph's peers.
    pub fn replicate_range(&self) -> Range<u64> {
        2 * self.relay_pairs..2 * self.relay_pairs + self.replicate_peers
    }

    /// The presence population (empty unless the scenario includes presence).
    pub fn presence_range(&self) -> Range<u64> {
        let start = self.replicate_range().end;
        match self.scenario.includes(Scenario::Presence) && self.scenario != Scenario::Connect {
            true => start..self.peers,
            false => start..start,
        }
    }

    /// The part of local peer `l`.
    pub fn part(&self, l: u64) -> Part {
        if l < 2 * self.relay_pairs {
            return match l % 2 {
                0 => Part::Caller { callee: l + 1 },
                _ => Part::Callee,
            };
        }
        let graph = self.replicate_range();
        if graph.contains(&l) {
            return Part::Replicator {
                node: l - graph.start,
            };
        }
        let presence = self.presence_range();
        if presence.contains(&l) && presence.end - presence.start >= 2 {
            let len = presence.end - presence.start;
            let at = |step: u64| presence.start + (l - presence.start + step) % len;
            let other = at(1);
            // Same node: S steps on; in a population too small for that, the other neighbour.
            let same = match self.switchboards < len {
                true => at(self.switchboards),
                false => at(len - 1),
            };
            return Part::Presence {
                watches: [other, same],
            };
        }
        Part::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_first_and_cross_the_cluster() {
        let plan = Plan::new(100, 3, Scenario::Mixed, 10, 20);
        assert_eq!(plan.part(0), Part::Caller { callee: 1 });
        assert_eq!(plan.part(1), Part::Callee);
        assert_ne!(plan.switchboard(0), plan.switchboard(1));
        assert_eq!(plan.part(20), Part::Replicator { node: 0 });
        assert_eq!(plan.presence_range(), 40..100);
    }

    #[test]
    fn presence_peers_watch_one_neighbour_on_each_kind_of_node() {
        let plan = Plan::new(100, 3, Scenario::Presence, 10, 20);
        assert_eq!(plan.relay_pairs, 0);
        let Part::Presence {
            watches: [other, same],
        } = plan.part(5)
        else {
            panic!("not a presence peer");
        };
        assert_ne!(plan.switchboard(other), plan.switchboard(5));
        assert_eq!(plan.switchboard(same), plan.switchboard(5));
        // The last wraps inside the range.
        let Part::Presence { watches } = plan.part(99) else {
            panic!()
        };
        assert!(watches.iter().all(|w| *w < 100 && *w != 99));
    }

    #[test]
    fn connect_has_no_parts_and_oversized_parts_are_cut() {
        let plan = Plan::new(10, 1, Scenario::Connect, 100, 100);
        assert_eq!((plan.relay_pairs, plan.replicate_peers), (0, 0));
        assert!((0..10).all(|l| plan.part(l) == Part::Idle));
        let plan = Plan::new(10, 1, Scenario::Relay, 100, 100);
        assert_eq!(plan.relay_pairs, 5);
    }
}
