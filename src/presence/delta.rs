//! Deltas and full-state payloads: what one replica ships to another.
//!
//! A [`Delta`] is a delta-interval: the join of a replica's recent mutations, with the range of
//! clocks it spans. Its `clouds` name exactly the dots it covers (a dot in the clouds without a
//! value is a remove), so a delta never claims a dot it left out (DeltaCrdt #65). A
//! [`FullState`] is the fallback when no delta fits: a context pruned to the replicas the
//! receiver knows, plus every value of those replicas.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::clock::{dominates_or_equal, lowerbound, upperbound, Clock};
use super::types::{ReplicaRef, SharedRow};

/// A causal context keyed by replica incarnation.
pub type Ctx = Clock<ReplicaRef>;

/// Dots seen beyond the contiguous prefix of a context (or, in a delta, the dots it covers).
pub type Clouds = BTreeMap<ReplicaRef, BTreeSet<u64>>;

/// Rows of a delta, by replica then by clock.
pub type DeltaValues = BTreeMap<ReplicaRef, BTreeMap<u64, SharedRow>>;

/// A delta-interval: mutations from `start` (exclusive) to `end` (inclusive).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The clocks before the first mutation of the interval.
    pub start: Ctx,
    /// The clocks after the last mutation of the interval.
    pub end: Ctx,
    /// Every dot the interval covers.
    pub clouds: Clouds,
    /// The rows the interval adds; a covered dot without a row is a remove.
    pub values: DeltaValues,
}

/// The two deltas do not touch, so their join would claim events neither holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deltas are not contiguous")]
pub struct NotContiguous;

impl Delta {
    /// An empty delta starting and ending at `clock` for `me`.
    pub fn empty_at(me: &ReplicaRef, clock: u64) -> Self {
        let at: Ctx = [(me.clone(), clock)].into_iter().collect();
        Self {
            start: at.clone(),
            end: at,
            ..Self::default()
        }
    }

    /// Number of values plus number of covered dots: the measure the generation caps bound.
    pub fn size(&self) -> usize {
        self.values.values().map(BTreeMap::len).sum::<usize>()
            + self.clouds.values().map(BTreeSet::len).sum::<usize>()
    }

    /// True when the delta covers at least one dot (something happened).
    pub fn has_dots(&self) -> bool {
        self.clouds.values().any(|c| !c.is_empty())
    }

    /// True when the delta covers `(replica, clock)`.
    pub fn covers(&self, replica: &ReplicaRef, clock: u64) -> bool {
        self.clouds.get(replica).is_some_and(|c| c.contains(&clock))
    }

    /// Number of rows carried.
    pub fn value_count(&self) -> usize {
        self.values.values().map(BTreeMap::len).sum()
    }

    /// Drops everything about a retired replica.
    pub fn prune(&mut self, replica: &ReplicaRef) {
        self.start.remove(replica);
        self.end.remove(replica);
        self.clouds.remove(replica);
        self.values.remove(replica);
    }

    /// The delta cut down to the replicas a receiver knows.
    pub fn restrict(&self, known: &Ctx) -> Delta {
        let keep = |r: &ReplicaRef| known.contains_key(r);
        Delta {
            start: self
                .start
                .iter()
                .filter(|(r, _)| keep(r))
                .map(|(r, v)| (r.clone(), *v))
                .collect(),
            end: self
                .end
                .iter()
                .filter(|(r, _)| keep(r))
                .map(|(r, v)| (r.clone(), *v))
                .collect(),
            clouds: self
                .clouds
                .iter()
                .filter(|(r, _)| keep(r))
                .map(|(r, c)| (r.clone(), c.clone()))
                .collect(),
            values: self
                .values
                .iter()
                .filter(|(r, _)| keep(r))
                .map(|(r, v)| (r.clone(), v.clone()))
                .collect(),
        }
    }

    /// Adds one covered dot.
    pub(crate) fn cover(&mut self, replica: &ReplicaRef, clock: u64) {
        self.clouds
            .entry(replica.clone())
            .or_default()
            .insert(clock);
    }

    /// Removes a row, if present, keeping its dot covered (a remove).
    pub(crate) fn drop_value(&mut self, replica: &ReplicaRef, clock: u64) {
        if let Some(vals) = self.values.get_mut(replica) {
            vals.remove(&clock);
            if vals.is_empty() {
                self.values.remove(replica);
            }
        }
    }
}

/// Joins two contiguous deltas (used to build the generation ladder).
///
/// Values that the other side covers without holding are removes and are dropped: this is an
/// observed remove inside the delta group. Tombstones (covered dots without values) survive.
pub fn merge_deltas(a: &Delta, b: &Delta) -> Result<Delta, NotContiguous> {
    if !(dominates_or_equal(&b.end, &a.start) && dominates_or_equal(&a.end, &b.start)) {
        return Err(NotContiguous);
    }
    let mut values = DeltaValues::new();
    keep_values(&mut values, a, b, false);
    keep_values(&mut values, b, a, true);
    let mut clouds = a.clouds.clone();
    for (r, c) in &b.clouds {
        clouds
            .entry(r.clone())
            .or_default()
            .extend(c.iter().copied());
    }
    Ok(Delta {
        start: lowerbound(&a.start, &b.start),
        end: upperbound(&a.end, &b.end),
        clouds,
        values,
    })
}

/// Copies `from`'s values that survive against `other` into `out`.
fn keep_values(out: &mut DeltaValues, from: &Delta, other: &Delta, skip_shared: bool) {
    for (r, vals) in &from.values {
        let theirs = other.values.get(r);
        for (n, row) in vals {
            let shared = theirs.is_some_and(|t| t.contains_key(n));
            if skip_shared && shared {
                continue;
            }
            if shared || !other.covers(r, *n) {
                out.entry(r.clone()).or_default().insert(*n, row.clone());
            }
        }
    }
}

/// The whole CRDT as shipped to one receiver: context and clouds pruned to the replicas it
/// knows, and every row of those replicas except the receiver's own.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct FullState {
    /// Contiguous prefixes seen, for the replicas the receiver knows.
    pub context: Ctx,
    /// Dots seen beyond those prefixes.
    pub clouds: Clouds,
    /// Rows by replica.
    pub values: Vec<(ReplicaRef, Vec<(u64, SharedRow)>)>,
}

impl FullState {
    /// True when the sender's context or clouds cover `(replica, clock)`.
    pub fn covers(&self, replica: &ReplicaRef, clock: u64) -> bool {
        self.context.get(replica).is_some_and(|c| *c >= clock)
            || self.clouds.get(replica).is_some_and(|c| c.contains(&clock))
    }

    /// Number of rows carried.
    pub fn value_count(&self) -> usize {
        self.values.iter().map(|(_, v)| v.len()).sum()
    }
}

/// What a transfer carries: a delta when one satisfies the receiver's clock, else full state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Payload {
    /// A delta-interval.
    Delta(Delta),
    /// The full-state fallback.
    Full(FullState),
}
