//! Property tests of the presence CRDT (proptest; failing inputs, seeds included, are printed).
//!
//! - Random operations on 3–5 replicas with random delivery order, duplication, loss and
//!   delay, and random down/up, then anti-entropy: every replica lists exactly the live rows.
//! - The diffs each replica reports, folded from empty, give its visible set: one join per
//!   admitted row, one leave per removed row.
//! - Merge is idempotent, commutative and associative; merging deltas equals merging full state.
//! - The same on the full shard protocol through the simulator, with partitions.
//!
//! Case counts add up to 10,400.

use std::collections::{BTreeMap, BTreeSet};

use kith::presence::delta::{merge_deltas, Delta, Payload};
use kith::presence::sim::{view_key, NetConfig, Sim, ViewKey};
use kith::presence::state::State;
use kith::presence::{Diff, Options, Owner, Presence, ReplicaRef};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Track {
        node: usize,
        owner: u64,
        key: u8,
    },
    Untrack {
        node: usize,
        owner: u64,
        key: u8,
    },
    UntrackOwner {
        node: usize,
        owner: u64,
    },
    Update {
        node: usize,
        owner: u64,
        key: u8,
        meta: u8,
    },
    /// Ship the node's delta to every other node; `lose` is a bitmask of lost copies.
    Flush {
        node: usize,
        lose: u8,
    },
    /// Ship a full state from one node to another.
    Transfer {
        from: usize,
        to: usize,
    },
    /// Deliver an in-flight message (chosen by index), keeping a copy when `dup`.
    Deliver {
        pick: usize,
        dup: bool,
    },
    Down {
        node: usize,
        of: usize,
    },
    Up {
        node: usize,
        of: usize,
    },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    let node = 0..n;
    prop_oneof![
        4 => (node.clone(), 0..3u64, 0..3u8).prop_map(|(node, owner, key)| Op::Track { node, owner, key }),
        2 => (node.clone(), 0..3u64, 0..3u8).prop_map(|(node, owner, key)| Op::Untrack { node, owner, key }),
        1 => (node.clone(), 0..3u64).prop_map(|(node, owner)| Op::UntrackOwner { node, owner }),
        2 => (node.clone(), 0..3u64, 0..3u8, any::<u8>()).prop_map(|(node, owner, key, meta)| Op::Update { node, owner, key, meta }),
        3 => (node.clone(), any::<u8>()).prop_map(|(node, lose)| Op::Flush { node, lose }),
        1 => (node.clone(), node.clone()).prop_map(|(from, to)| Op::Transfer { from, to }),
        6 => (any::<usize>(), any::<bool>()).prop_map(|(pick, dup)| Op::Deliver { pick, dup }),
        1 => (node.clone(), node.clone()).prop_map(|(node, of)| Op::Down { node, of }),
        1 => (node.clone(), node).prop_map(|(node, of)| Op::Up { node, of }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (3..=5usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..60)))
}

/// Replicas with their diff-folded views.
struct World {
    states: Vec<State>,
    views: Vec<BTreeMap<ViewKey, Presence>>,
    inflight: Vec<(usize, Payload)>,
}

impl World {
    fn new(n: usize) -> Self {
        let refs: Vec<ReplicaRef> = (0..n)
            .map(|i| ReplicaRef::new(&format!("r{i}"), 1))
            .collect();
        let mut states: Vec<State> = refs.iter().map(|r| State::new(r.clone())).collect();
        for s in &mut states {
            for r in &refs {
                s.replica_up(r);
            }
        }
        Self {
            states,
            views: vec![BTreeMap::new(); n],
            inflight: Vec::new(),
        }
    }

    fn fold(&mut self, node: usize, d: Diff) -> Result<(), TestCaseError> {
        let view = &mut self.views[node];
        for p in d.leaves {
            let old = view.remove(&view_key(&p));
            prop_assert_eq!(
                old.map(|o| o.dot),
                Some(p.dot.clone()),
                "leave of a row not in the view"
            );
        }
        for p in d.joins {
            let old = view.insert(view_key(&p), p.clone());
            prop_assert!(old.is_none(), "join over a visible row: {:?}", p);
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.states.len();
        let key = |k: &u8| format!("k{k}");
        let diff = match op {
            Op::Track {
                node,
                owner,
                key: k,
            } => self.states[*node]
                .track(Owner(*owner), "t", &key(k), vec![])
                .ok(),
            Op::Untrack {
                node,
                owner,
                key: k,
            } => Some(self.states[*node].untrack(Owner(*owner), "t", &key(k))),
            Op::UntrackOwner { node, owner } => {
                Some(self.states[*node].untrack_owner(Owner(*owner)))
            }
            Op::Update {
                node,
                owner,
                key: k,
                meta,
            } => self.states[*node]
                .update(Owner(*owner), "t", &key(k), |_| vec![*meta])
                .ok(),
            Op::Flush { node, lose } => {
                let d = self.states[*node].reset_delta();
                self.states[*node].compact();
                for to in (0..n).filter(|to| to != node && lose & (1 << to) == 0) {
                    self.inflight.push((to, Payload::Delta(d.clone())));
                }
                None
            }
            Op::Transfer { from, to } => {
                let (f, t) = (&self.states[*from], &self.states[*to]);
                let p = Payload::Full(f.extract(t.replica(), t.context()));
                self.inflight.push((*to, p));
                None
            }
            Op::Deliver { .. } => None,
            Op::Down { node, of } => {
                let r = self.states[*of].replica().clone();
                Some(self.states[*node].replica_down(&r))
            }
            Op::Up { node, of } => {
                let r = self.states[*of].replica().clone();
                Some(self.states[*node].replica_up(&r))
            }
        };
        let node = match op {
            Op::Track { node, .. }
            | Op::Untrack { node, .. }
            | Op::UntrackOwner { node, .. }
            | Op::Update { node, .. }
            | Op::Down { node, .. }
            | Op::Up { node, .. } => *node,
            _ => return Ok(()),
        };
        if let Some(d) = diff {
            self.fold(node, d)?;
        }
        Ok(())
    }

    fn visible(&self, node: usize) -> BTreeSet<ViewKey> {
        self.states[node]
            .visible_presences()
            .iter()
            .map(view_key)
            .collect()
    }

    fn truth(&self) -> BTreeSet<ViewKey> {
        self.states
            .iter()
            .flat_map(|s| s.rows_of(s.replica()))
            .map(|p| view_key(&p))
            .collect()
    }

    /// Everyone back up, in-flight messages lost, then full-state exchange until quiet.
    fn anti_entropy(&mut self) -> Result<(), TestCaseError> {
        let n = self.states.len();
        self.inflight.clear();
        for a in 0..n {
            for b in 0..n {
                let r = self.states[b].replica().clone();
                let d = self.states[a].replica_up(&r);
                self.fold(a, d)?;
            }
        }
        for _round in 0..2 {
            for a in 0..n {
                for b in (0..n).filter(|b| *b != a) {
                    let p =
                        self.states[b].extract(self.states[a].replica(), self.states[a].context());
                    let d = self.states[a].merge(Payload::Full(p));
                    self.fold(a, d)?;
                }
            }
        }
        Ok(())
    }
}

fn run(n: usize, ops: &[Op]) -> Result<World, TestCaseError> {
    let mut w = World::new(n);
    for op in ops {
        // Deliveries are applied here so the target is known for folding the diff.
        if let Op::Deliver { pick, dup } = op {
            if w.inflight.is_empty() {
                continue;
            }
            let i = pick % w.inflight.len();
            let (to, p) = if *dup {
                w.inflight[i].clone()
            } else {
                w.inflight.remove(i)
            };
            let d = w.states[to].merge(p);
            w.fold(to, d)?;
        } else {
            w.apply(op)?;
        }
    }
    Ok(w)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any history, any delivery, then anti-entropy: all replicas converge to the live rows,
    /// and every replica's folded diffs equal its visible set.
    #[test]
    fn replicas_converge_and_diffs_track_the_visible_set((n, ops) in scenario()) {
        let mut w = run(n, &ops)?;
        for i in 0..n {
            prop_assert_eq!(w.views[i].keys().cloned().collect::<BTreeSet<_>>(), w.visible(i), "view of r{} before anti-entropy", i);
        }
        w.anti_entropy()?;
        let truth = w.truth();
        for i in 0..n {
            prop_assert_eq!(&w.visible(i), &truth, "r{} did not converge", i);
            prop_assert_eq!(&w.views[i].keys().cloned().collect::<BTreeSet<_>>(), &truth, "view of r{}", i);
        }
    }
}

/// A state's observable content: visible rows (with dots), context and clouds.
fn observable(s: &State) -> (BTreeSet<(ViewKey, u64)>, String) {
    let vis = s
        .visible_presences()
        .iter()
        .map(|p| (view_key(p), p.dot.clock))
        .collect();
    (vis, format!("{:?}{:?}", s.context(), s.clouds()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Merge is idempotent and commutative, on deltas and full states alike.
    #[test]
    fn merge_is_idempotent_and_commutative((n, ops) in scenario(), full1 in any::<bool>(), full2 in any::<bool>()) {
        let mut w = run(n, &ops)?;
        let payload = |w: &mut World, from: usize, full: bool| -> Payload {
            if full {
                Payload::Full(w.states[from].extract(w.states[0].replica(), w.states[0].context()))
            } else {
                Payload::Delta(w.states[from].delta().clone())
            }
        };
        let (p1, p2) = (payload(&mut w, 1, full1), payload(&mut w, 2, full2));
        let mut a = w.states[0].clone();
        a.merge(p1.clone());
        let once = a.clone();
        prop_assert!(a.merge(p1.clone()).is_empty(), "re-merge reported a diff");
        prop_assert_eq!(&a, &once, "re-merge changed the state");
        a.merge(p2.clone());
        let mut b = w.states[0].clone();
        b.merge(p2);
        b.merge(p1);
        prop_assert_eq!(observable(&a), observable(&b));
    }

    /// Merge is associative for deltas, and merging all of a replica's deltas (in any order,
    /// duplicated) gives the same state as merging its full state.
    #[test]
    fn deltas_associate_and_equal_full_state(
        (n, ops) in scenario(),
        tail in prop::collection::vec((0..3u64, 0..3u8, 0..3u8), 1..12),
        order in any::<u64>(),
    ) {
        let mut w = run(n, &ops)?;
        // Fresh replica `x` whose successive deltas we keep.
        let xr = ReplicaRef::new("x", 1);
        let mut x = State::new(xr.clone());
        let mut deltas: Vec<Delta> = Vec::new();
        for (i, (owner, key, kind)) in tail.iter().enumerate() {
            let k = format!("k{key}");
            match kind {
                0 => { let _ = x.track(Owner(*owner), "t", &k, vec![]); }
                1 => { x.untrack(Owner(*owner), "t", &k); }
                _ => { let _ = x.update(Owner(*owner), "t", &k, |_| vec![i as u8]); }
            }
            if i % 2 == 1 || i + 1 == tail.len() {
                deltas.push(x.reset_delta());
            }
        }
        let mut base = w.states[0].clone();
        base.replica_up(&xr);
        w.states[0] = base.clone();
        // Associativity: (a ⊔ d1) ⊔ d2 == a ⊔ (d1 ⊔ d2) for consecutive deltas.
        if deltas.len() >= 2 {
            let joined = merge_deltas(&deltas[0], &deltas[1]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut left = base.clone();
            left.merge_delta(deltas[0].clone());
            left.merge_delta(deltas[1].clone());
            let mut right = base.clone();
            right.merge_delta(joined);
            prop_assert_eq!(observable(&left), observable(&right));
        }
        // Deltas in a random order, with one duplicate, versus the full state.
        let mut shuffled = deltas.clone();
        let len = shuffled.len();
        for i in 0..len {
            shuffled.swap(i, (order as usize).wrapping_add(i * 7) % len);
        }
        shuffled.push(deltas[(order as usize) % len].clone());
        let mut by_delta = base.clone();
        for d in shuffled {
            by_delta.merge_delta(d);
        }
        let mut by_full = base.clone();
        by_full.merge(Payload::Full(x.extract(base.replica(), base.context())));
        prop_assert_eq!(observable(&by_delta).0, observable(&by_full).0);
        prop_assert_eq!(by_delta.context().get(&xr), by_full.context().get(&xr));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_400, failure_persistence: None, ..ProptestConfig::default() })]

    /// The whole protocol through the simulator: 3–5 nodes, loss, duplication, delay and a
    /// partition, then heal and quiet: every node lists exactly the live rows.
    #[test]
    fn shards_converge_over_a_faulty_network(
        seed in any::<u64>(),
        n in 3..=5usize,
        ops in prop::collection::vec((0..5usize, 0..3u64, 0..3u8, 0..4u8), 1..25),
        cut in any::<bool>(),
    ) {
        let net = NetConfig { latency_min: 1, latency_max: 60, drop_rate: 0.2, duplicate_rate: 0.1, ..NetConfig::default() };
        let mut s = Sim::new(net.clone(), seed);
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        for name in &names {
            s.start(name, 1, Options::with_periods(100, 2, 1_500)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        if cut {
            let (a, b) = names.split_at(n / 2);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let b: Vec<&str> = b.iter().map(String::as_str).collect();
            s.partition(&[&a, &b]);
        }
        for (node, owner, key, kind) in ops {
            let name = &names[node % n];
            let k = format!("k{key}");
            s.with(name, |sh| match kind {
                0 | 1 => { let _ = sh.track(Owner(owner), "t", &k, vec![]); }
                2 => sh.untrack(Owner(owner), "t", &k),
                _ => { let _ = sh.update(Owner(owner), "t", &k, |m| [m.as_slice(), &[1]].concat()); }
            });
            let t = s.now() + 40;
            s.run_until(t);
        }
        s.heal();
        // After the heal, frames are still duplicated and reordered but no longer lost, so
        // that liveness stops flapping and "quiet" means "converged" (with 20 % loss an idle
        // peer is regularly, and rightly, marked down for a moment).
        s.set_net(NetConfig { drop_rate: 0.0, ..net });
        let t = s.now() + 3_000;
        s.run_until(t);
        let truth: BTreeSet<ViewKey> = s.nodes()
            .flat_map(|(_, nd)| nd.shard.state().rows_of(nd.shard.state().replica()))
            .map(|p| view_key(&p)).collect();
        for (name, nd) in s.nodes() {
            let vis: BTreeSet<ViewKey> = nd.shard.state().visible_presences().iter().map(view_key).collect();
            prop_assert_eq!(&vis, &truth, "seed {}: {} did not converge", seed, name);
        }
        s.check_views().map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
    }
}
