//! The delta-generation ladder: a few merged recent deltas of growing size, used to answer a
//! transfer request with a delta-interval instead of the full state.
//!
//! Generation *i* absorbs every pushed delta while its size stays under `caps[i]`; past that it
//! restarts from the previous rung. A transfer picks the first rung the requester can apply
//! causally (it has everything before the rung, and lacks something in it), else full state.
//! The ladder is only an optimisation: correctness rests on the full-state fallback.

use super::clock::{dominates, dominates_or_equal, Clock};
use super::delta::{merge_deltas, Ctx, Delta, Payload};
use super::state::State;
use super::types::ReplicaRef;

/// The ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generations {
    caps: Vec<usize>,
    gens: Vec<Delta>,
}

impl Generations {
    /// An empty ladder with the given caps (ascending sizes).
    pub fn new(caps: Vec<usize>) -> Self {
        Self {
            caps,
            gens: Vec::new(),
        }
    }

    /// The rungs, smallest first (empty until the first push).
    pub fn rungs(&self) -> &[Delta] {
        &self.gens
    }

    /// Forgets every rung (after a full state was received).
    pub fn clear(&mut self) {
        self.gens.clear();
    }

    /// Adds a delta to every rung. `parent` is the state's current (fresh) delta, used to seed
    /// an empty ladder.
    pub fn push(&mut self, parent: &Delta, d: &Delta) {
        if self.gens.is_empty() {
            self.gens = vec![parent.clone(); self.caps.len()];
        }
        let mut prev = d.clone();
        for (g, cap) in self.gens.iter_mut().zip(&self.caps) {
            match merge_deltas(g, d) {
                Ok(m) => {
                    let next = if m.size() <= *cap { m.clone() } else { prev };
                    prev = m;
                    *g = next;
                }
                Err(_) => prev = g.clone(),
            }
        }
    }

    /// Drops a retired replica from every rung.
    pub fn prune(&mut self, replica: &ReplicaRef) {
        for g in &mut self.gens {
            g.prune(replica);
        }
    }

    /// The smallest rung the requester can apply and that brings it up to `ours` on the
    /// replicas it knows, cut to those replicas.
    pub fn fitting(&self, remote_ctx: &Ctx, ours: &Ctx) -> Option<Delta> {
        self.gens
            .iter()
            .find(|g| fits(g, remote_ctx, ours))
            .map(|g| g.restrict(remote_ctx))
    }

    /// What to answer a transfer request with: a fitting rung, else the full state. Neither
    /// carries the requester's own rows (it has them, and ignores them on merge). The rung
    /// loses the requester's range and clouds too, not just its values: a covered dot without
    /// a value reads as a remove, and the requester pushes the delta into its own ladder.
    pub fn extract(&self, state: &State, remote: &ReplicaRef, remote_ctx: &Ctx) -> Payload {
        match self.fitting(remote_ctx, state.context()) {
            Some(mut d) => {
                d.prune(remote);
                Payload::Delta(d)
            }
            None => Payload::Full(state.extract(remote, remote_ctx)),
        }
    }
}

/// The causal delta-merging condition, on the replicas the requester knows, plus (unlike
/// Phoenix) completeness: after the rung the requester must have all we have of those replicas.
/// Phoenix serves the first rung that merely applies, so a newcomer could get one peer's recent
/// rows and wait for the next idle heartbeat (15 s) to pull the rest.
fn fits(g: &Delta, remote: &Ctx, ours: &Ctx) -> bool {
    let cut = |c: &Ctx| -> Ctx {
        c.iter()
            .filter(|(r, _)| remote.contains_key(*r))
            .map(|(r, v)| (r.clone(), *v))
            .collect()
    };
    let (start, end): (Clock<ReplicaRef>, Clock<ReplicaRef>) = (cut(&g.start), cut(&g.end));
    let non_empty = !dominates_or_equal(&start, &end);
    let complete = ours
        .iter()
        .filter(|(r, _)| remote.contains_key(*r))
        .all(|(r, v)| {
            let after = remote
                .get(r)
                .copied()
                .unwrap_or(0)
                .max(end.get(r).copied().unwrap_or(0));
            after >= *v
        });
    non_empty && complete && dominates_or_equal(remote, &start) && !dominates(remote, &end)
}
