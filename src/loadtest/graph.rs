//! Sans-IO: the replicate scenario's follow graph, seeded. Who is followed follows a power law
//! (Zipf over a random ranking: a few peers have many followers, most have few), as in real
//! social graphs; each peer follows between 1 and `mean * 2 - 1` others, never itself, never
//! twice, at most [`LOADTEST_FOLLOWS_MAX`].

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::limits::LOADTEST_FOLLOWS_MAX;

/// Zipf exponent of popularity (1.0: the k-th most popular has 1/k of the top one's weight).
const ZIPF_EXPONENT: f64 = 1.0;

/// Who follows whom among `n` nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowGraph {
    follows: Vec<Vec<u32>>,
    followers: Vec<Vec<u32>>,
}

impl FollowGraph {
    /// A graph of `n` nodes where each follows `mean` others on average, from `seed`.
    pub fn new(n: usize, mean: usize, seed: u64) -> FollowGraph {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ranking: Vec<u32> = (0..n as u32).collect();
        ranking.shuffle(&mut rng);
        // Cumulative Zipf weights over the ranking.
        let mut cumulative = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 0..n {
            total += 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT);
            cumulative.push(total);
        }
        let most = LOADTEST_FOLLOWS_MAX.min(n.saturating_sub(1));
        let mut follows = vec![Vec::new(); n];
        for (node, out) in follows.iter_mut().enumerate() {
            let want = match most {
                0 => 0,
                _ => rng.gen_range(1..=(2 * mean.max(1) - 1)).min(most),
            };
            // Bounded: a node whose draws keep landing on itself or on repeats stops early.
            for _ in 0..want * 8 {
                if out.len() >= want {
                    break;
                }
                let x = rng.gen_range(0.0..total);
                let rank = cumulative.partition_point(|c| *c < x).min(n - 1);
                let target = ranking[rank];
                if target as usize != node && !out.contains(&target) {
                    out.push(target);
                }
            }
        }
        let mut followers = vec![Vec::new(); n];
        for (node, out) in follows.iter().enumerate() {
            for &t in out {
                followers[t as usize].push(node as u32);
            }
        }
        FollowGraph { follows, followers }
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.follows.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.follows.is_empty()
    }

    /// Whom `node` follows.
    pub fn follows(&self, node: usize) -> &[u32] {
        self.follows.get(node).map_or(&[], |v| v.as_slice())
    }

    /// Who follows `node`.
    pub fn followers(&self, node: usize) -> &[u32] {
        self.followers.get(node).map_or(&[], |v| v.as_slice())
    }

    /// Whom `node` dials for replication: one connection per pair of nodes with a follow
    /// between them (either way), dialled by the follower, or by the lower index when each
    /// follows the other. A replication session is symmetric (each side serves what the other
    /// wants), so one connection per pair carries both directions.
    pub fn dials(&self, node: usize) -> Vec<u32> {
        let me = node as u32;
        self.follows(node)
            .iter()
            .copied()
            .filter(|&f| !(self.follows(f as usize).contains(&me) && f < me))
            .collect()
    }

    /// Whether `caller` dials `node` (the callee's accept policy: only the pairs of the graph).
    pub fn is_dialled_by(&self, node: usize, caller: usize) -> bool {
        self.dials(caller).contains(&(node as u32))
    }

    /// Follow edges in all.
    pub fn edges(&self) -> usize {
        self.follows.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_graph_other_seed_other_graph() {
        assert_eq!(FollowGraph::new(200, 5, 1), FollowGraph::new(200, 5, 1));
        assert_ne!(FollowGraph::new(200, 5, 1), FollowGraph::new(200, 5, 2));
    }

    #[test]
    fn no_self_follow_no_repeat_and_bounded() {
        let g = FollowGraph::new(500, 10, 3);
        for node in 0..g.len() {
            let f = g.follows(node);
            assert!(!f.contains(&(node as u32)));
            let mut d = f.to_vec();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), f.len());
            assert!(f.len() <= LOADTEST_FOLLOWS_MAX && !f.is_empty());
        }
    }

    #[test]
    fn followers_follow_a_power_law() {
        let g = FollowGraph::new(2_000, 5, 9);
        let mut counts: Vec<usize> = (0..g.len()).map(|n| g.followers(n).len()).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let median = counts[counts.len() / 2];
        // The most followed has far more than the median: a heavy tail, not a uniform spread.
        assert!(
            counts[0] > 20 * median.max(1),
            "top {} median {median}",
            counts[0]
        );
        assert_eq!(g.edges(), counts.iter().sum::<usize>());
    }

    #[test]
    fn each_related_pair_has_exactly_one_dialler() {
        let g = FollowGraph::new(300, 5, 4);
        for a in 0..g.len() {
            for b in 0..g.len() {
                let related =
                    g.follows(a).contains(&(b as u32)) || g.follows(b).contains(&(a as u32));
                let dialled = usize::from(g.dials(a).contains(&(b as u32)))
                    + usize::from(g.dials(b).contains(&(a as u32)));
                assert_eq!(dialled, usize::from(related), "pair {a} {b}");
                assert_eq!(g.is_dialled_by(b, a), g.dials(a).contains(&(b as u32)));
            }
        }
    }

    #[test]
    fn tiny_graphs_work() {
        assert_eq!(FollowGraph::new(1, 5, 1).edges(), 0);
        assert!(FollowGraph::new(0, 5, 1).is_empty());
        assert_eq!(FollowGraph::new(2, 5, 1).follows(0), &[1]);
    }
}
