//! Vector-clock algebra: dominance, bounds, and the choice of which peers to pull from.
//!
//! A clock maps a replica to the length of the contiguous prefix of its events that we have seen.
//! The functions are generic over the key so that the tests can use short names; the tracker uses
//! [`ReplicaRef`](super::types::ReplicaRef) keys. Semantics follow Phoenix.Tracker.Clock (see
//! `research/tracker-spec.md` §3).

use std::collections::BTreeMap;

/// A version vector: replica to the highest contiguous event seen.
pub type Clock<K> = BTreeMap<K, u64>;

/// `c1` dominates `c2` when it has every key of `c2` with a value at least as large (missing
/// keys count as 0). Reflexive. A clock with fewer keys never dominates.
pub fn dominates<K: Ord>(c1: &Clock<K>, c2: &Clock<K>) -> bool {
    c1.len() >= c2.len()
        && c2
            .iter()
            .all(|(k, v)| c1.get(k).copied().unwrap_or(0) >= *v)
}

/// For every key of `c1`, `c1` is at least `c2` (a key missing in `c2` counts as 0). Used on
/// delta ranges. Two empty clocks are equal; an empty `c1` against a non-empty `c2` is false.
pub fn dominates_or_equal<K: Ord>(c1: &Clock<K>, c2: &Clock<K>) -> bool {
    if c1.is_empty() {
        return c2.is_empty();
    }
    c1.iter()
        .all(|(k, v)| *v >= c2.get(k).copied().unwrap_or(0))
}

/// Key-wise maximum over the union of keys.
pub fn upperbound<K: Ord + Clone>(c1: &Clock<K>, c2: &Clock<K>) -> Clock<K> {
    let mut out = c1.clone();
    for (k, v) in c2 {
        let e = out.entry(k.clone()).or_insert(*v);
        *e = (*e).max(*v);
    }
    out
}

/// Key-wise minimum over the union of keys; a key on one side only keeps its value.
pub fn lowerbound<K: Ord + Clone>(c1: &Clock<K>, c2: &Clock<K>) -> Clock<K> {
    let mut out = c1.clone();
    for (k, v) in c2 {
        let e = out.entry(k.clone()).or_insert(*v);
        *e = (*e).min(*v);
    }
    out
}

/// The clock restricted to the given keys.
pub fn filter_replicas<'a, K: Ord + Clone + 'a>(
    c: &Clock<K>,
    keep: impl IntoIterator<Item = &'a K>,
) -> Clock<K> {
    keep.into_iter()
        .filter_map(|k| c.get(k).map(|v| (k.clone(), *v)))
        .collect()
}

/// The keys of a clock.
pub fn replicas<K: Ord + Clone>(c: &Clock<K>) -> Vec<K> {
    c.keys().cloned().collect()
}

/// Adds a peer's clock to a set of candidate clocks, keeping only clocks that might know
/// something the others do not. An empty clock changes nothing; a clock dominating all of the
/// set replaces it; a clock dominated by the set's upper bound is dropped; otherwise the members
/// it dominates are dropped and it is inserted unless every remaining member dominates it.
pub fn append_clock<N: Clone, K: Ord + Clone>(
    set: Vec<(N, Clock<K>)>,
    entry: (N, Clock<K>),
) -> Vec<(N, Clock<K>)> {
    let (node, clock) = entry;
    if clock.is_empty() {
        return set;
    }
    let big = set
        .iter()
        .fold(Clock::new(), |acc, (_, c)| upperbound(&acc, c));
    if dominates(&clock, &big) {
        return vec![(node, clock)];
    }
    if dominates(&big, &clock) {
        return set;
    }
    let mut insert = false;
    let mut kept = Vec::with_capacity(set.len() + 1);
    for (n2, c2) in set {
        if dominates(&clock, &c2) {
            insert = true;
        } else {
            insert = insert || !dominates(&c2, &clock);
            kept.push((n2, c2));
        }
    }
    if insert {
        kept.push((node, clock));
    }
    kept
}

/// The nodes of a clock set.
pub fn clockset_replicas<N: Clone, K>(set: &[(N, Clock<K>)]) -> Vec<N> {
    set.iter().map(|(n, _)| n.clone()).collect()
}
