//! A deterministic multi-node simulator over sans-IO shards: simulated time, a seeded network
//! with latency, loss, duplication and partitions. Used by the tests and by the bench.
//!
//! Events run in time order: shard ticks and frame deliveries. After every event the touched
//! shard's actions are drained: frames are queued with a random delay (and encoded and decoded
//! with postcard when `encode` is on), diffs are folded into a per-node view that is checked
//! against the shard's visible set, and join times are recorded for the convergence figures.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::message::{Envelope, Message};
use super::options::Options;
use super::replica::Transition;
use super::shard::{Action, Shard};
use super::types::{Diff, Dot, Millis, Owner, Presence, ReplicaName, ReplicaRef};

/// Network behaviour of a simulation.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Smallest one-way delay.
    pub latency_min: Millis,
    /// Largest one-way delay.
    pub latency_max: Millis,
    /// Probability that a frame is lost.
    pub drop_rate: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate_rate: f64,
    /// Encode and decode every frame with postcard.
    pub encode: bool,
    /// Record the time each node first saw each join (for convergence figures).
    pub record_joins: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            latency_min: 1,
            latency_max: 20,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            encode: false,
            record_joins: false,
        }
    }
}

/// Identity of a visible row in a node's view.
pub type ViewKey = (String, String, ReplicaRef, Owner);

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Its shard.
    pub shard: Shard,
    /// False while crashed.
    pub alive: bool,
    /// The visible set, as folded from the diffs.
    pub view: BTreeMap<ViewKey, Presence>,
    /// Diffs that did not fit the view (a join over a present row, a leave of an absent row).
    pub diff_violations: Vec<String>,
    /// First time this node reported a join of each dot.
    pub joined_at: HashMap<Dot, Millis>,
    /// Liveness transitions seen.
    pub transitions: Vec<Transition>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Millis,
    seq: u64,
    from: ReplicaName,
    to: ReplicaName,
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    now: Millis,
    net: NetConfig,
    rng: StdRng,
    nodes: BTreeMap<ReplicaName, SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    frames: HashMap<u64, Envelope>,
    seq: u64,
    groups: Option<Vec<BTreeSet<ReplicaName>>>,
    /// Frames sent, for statistics.
    pub frames_sent: u64,
    /// Transfer requests sent, by (from, to).
    pub transfer_reqs: BTreeMap<(ReplicaName, ReplicaName), u64>,
    /// Heartbeats broadcast, by sender.
    pub heartbeats: BTreeMap<ReplicaName, u64>,
}

impl Sim {
    /// An empty simulation.
    pub fn new(net: NetConfig, seed: u64) -> Self {
        Self {
            now: 0,
            net,
            rng: StdRng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            queue: BinaryHeap::new(),
            frames: HashMap::new(),
            seq: 0,
            groups: None,
            frames_sent: 0,
            transfer_reqs: BTreeMap::new(),
            heartbeats: BTreeMap::new(),
        }
    }

    /// Changes the network behaviour from now on (frames in flight keep their fate).
    pub fn set_net(&mut self, net: NetConfig) {
        self.net = net;
    }

    /// Current simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Starts (or restarts, with a new incarnation) a node.
    pub fn start(
        &mut self,
        name: &str,
        vsn: u64,
        opts: Options,
    ) -> Result<(), super::options::OptionsError> {
        let seed = self.rng.gen();
        let shard = Shard::new(ReplicaRef::new(name, vsn), 0, opts, seed, self.now)?;
        let node = SimNode {
            shard,
            alive: true,
            view: BTreeMap::new(),
            diff_violations: Vec::new(),
            joined_at: HashMap::new(),
            transitions: Vec::new(),
        };
        self.nodes.insert(ReplicaName::new(name), node);
        Ok(())
    }

    /// Crashes a node: it stops ticking and receiving, with no announcement.
    pub fn crash(&mut self, name: &str) {
        if let Some(n) = self.nodes.get_mut(&ReplicaName::new(name)) {
            n.alive = false;
        }
    }

    /// Suspends (false) or resumes (true) a node without losing its state.
    pub fn set_alive(&mut self, name: &str, alive: bool) {
        if let Some(n) = self.nodes.get_mut(&ReplicaName::new(name)) {
            n.alive = alive;
        }
    }

    /// Announces a graceful shutdown from a node, then crashes it.
    pub fn graceful_stop(&mut self, name: &str) {
        self.with(name, |s| s.graceful_permdown());
        self.crash(name);
    }

    /// Transfer requests sent from `from` to `to` so far.
    pub fn transfer_reqs(&self, from: &str, to: &str) -> u64 {
        self.transfer_reqs
            .get(&(ReplicaName::new(from), ReplicaName::new(to)))
            .copied()
            .unwrap_or(0)
    }

    /// Visible keys of a topic on a node, as the shard lists them.
    pub fn listed(&self, name: &str, topic: &str) -> Vec<String> {
        self.node(name)
            .map(|n| {
                n.shard
                    .state()
                    .list(topic)
                    .into_iter()
                    .map(|p| p.row.key.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks that every node's diff-folded view equals its visible set, and that no diff
    /// broke the one-join-one-leave rule. Returns a description of the first problem.
    pub fn check_views(&self) -> Result<(), String> {
        for (name, n) in &self.nodes {
            if let Some(v) = n.diff_violations.first() {
                return Err(format!("{name}: {v}"));
            }
            let visible: BTreeMap<ViewKey, Presence> = n
                .shard
                .state()
                .visible_presences()
                .into_iter()
                .map(|p| (view_key(&p), p))
                .collect();
            if visible != n.view {
                return Err(format!(
                    "{name}: view {} rows, state {} rows",
                    n.view.len(),
                    visible.len()
                ));
            }
        }
        Ok(())
    }

    /// A node.
    pub fn node(&self, name: &str) -> Option<&SimNode> {
        self.nodes.get(&ReplicaName::new(name))
    }

    /// Every node.
    pub fn nodes(&self) -> impl Iterator<Item = (&ReplicaName, &SimNode)> {
        self.nodes.iter()
    }

    /// Runs a client operation on a node's shard and processes its actions.
    pub fn with<T>(&mut self, name: &str, f: impl FnOnce(&mut Shard) -> T) -> Option<T> {
        let key = ReplicaName::new(name);
        let out = f(&mut self.nodes.get_mut(&key)?.shard);
        self.flush(&key);
        Some(out)
    }

    /// Splits the network into groups; nodes in different groups cannot talk.
    pub fn partition(&mut self, groups: &[&[&str]]) {
        let gs = groups
            .iter()
            .map(|g| g.iter().map(|n| ReplicaName::new(n)).collect())
            .collect();
        self.groups = Some(gs);
    }

    /// Heals every partition and tells each shard its links came back (as a QUIC transport
    /// would on reconnect).
    pub fn heal(&mut self) {
        self.groups = None;
        let names: Vec<ReplicaName> = self.nodes.keys().cloned().collect();
        for a in &names {
            for b in names.iter().filter(|b| *b != a) {
                if let Some(n) = self.nodes.get_mut(a) {
                    n.shard.peer_connected(b);
                }
            }
            self.flush(a);
        }
    }

    fn linked(&self, a: &ReplicaName, b: &ReplicaName) -> bool {
        match &self.groups {
            None => true,
            Some(gs) => gs.iter().any(|g| g.contains(a) && g.contains(b)),
        }
    }

    /// Runs every event up to and including time `until`.
    pub fn run_until(&mut self, until: Millis) {
        while let Some(t) = self.next_event_time() {
            if t > until {
                break;
            }
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds (checked after each event) or `until` passes; returns the time.
    pub fn run_until_pred(
        &mut self,
        until: Millis,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Millis> {
        while let Some(t) = self.next_event_time() {
            if done(self) {
                return Some(self.now);
            }
            if t > until {
                break;
            }
            self.step();
        }
        done(self).then_some(self.now)
    }

    fn next_event_time(&self) -> Option<Millis> {
        let tick = self
            .nodes
            .values()
            .filter(|n| n.alive)
            .map(|n| n.shard.next_tick())
            .min();
        let frame = self.queue.peek().map(|Reverse(f)| f.at);
        match (tick, frame) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes the earliest event.
    pub fn step(&mut self) {
        let tick = self
            .nodes
            .iter()
            .filter(|(_, n)| n.alive)
            .min_by_key(|(_, n)| n.shard.next_tick());
        let tick = tick.map(|(k, n)| (n.shard.next_tick(), k.clone()));
        let frame_at = self.queue.peek().map(|Reverse(f)| f.at);
        match (tick, frame_at) {
            (Some((t, name)), f) if f.is_none_or(|f| t <= f) => {
                self.now = self.now.max(t);
                if let Some(n) = self.nodes.get_mut(&name) {
                    n.shard.tick(self.now);
                }
                self.flush(&name);
            }
            (_, Some(_)) => self.deliver_next(),
            _ => {}
        }
    }

    fn deliver_next(&mut self) {
        let Some(Reverse(f)) = self.queue.pop() else {
            return;
        };
        self.now = self.now.max(f.at);
        let Some(env) = self.frames.remove(&f.seq) else {
            return;
        };
        if !self.linked(&f.from, &f.to) {
            return;
        }
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&f.to).filter(|n| n.alive) {
            n.shard.receive(&f.from, env, now);
            self.flush(&f.to);
        }
    }

    fn send(&mut self, from: &ReplicaName, to: &ReplicaName, env: &Envelope) {
        self.frames_sent += 1;
        if let Message::TransferReq { .. } = env.message {
            *self
                .transfer_reqs
                .entry((from.clone(), to.clone()))
                .or_default() += 1;
        }
        if !self.linked(from, to) || self.rng.gen_bool(self.net.drop_rate) {
            return;
        }
        let copies = if self.rng.gen_bool(self.net.duplicate_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let env = if self.net.encode {
                roundtrip(env)
            } else {
                Some(env.clone())
            };
            let Some(env) = env else { continue };
            let delay = self
                .rng
                .gen_range(self.net.latency_min..=self.net.latency_max);
            self.seq += 1;
            self.frames.insert(self.seq, env);
            let f = InFlight {
                at: self.now + delay,
                seq: self.seq,
                from: from.clone(),
                to: to.clone(),
            };
            self.queue.push(Reverse(f));
        }
    }

    fn flush(&mut self, name: &ReplicaName) {
        let Some(node) = self.nodes.get_mut(name) else {
            return;
        };
        let actions = node.shard.drain_actions();
        let alive = node.alive;
        for a in actions {
            match a {
                Action::Broadcast(env) if alive => {
                    if let Message::Heartbeat { .. } = env.message {
                        *self.heartbeats.entry(name.clone()).or_default() += 1;
                    }
                    let peers: Vec<ReplicaName> =
                        self.nodes.keys().filter(|k| *k != name).cloned().collect();
                    for p in peers {
                        self.send(name, &p, &env);
                    }
                }
                Action::SendTo(to, env) if alive => self.send(name, &to, &env),
                Action::Diff(d) => self.fold(name, d),
                Action::Replica(t) => {
                    if let Some(n) = self.nodes.get_mut(name) {
                        n.transitions.push(t);
                    }
                }
                _ => {}
            }
        }
    }

    fn fold(&mut self, name: &ReplicaName, diff: Diff) {
        let now = self.now;
        let record = self.net.record_joins;
        let Some(n) = self.nodes.get_mut(name) else {
            return;
        };
        for p in diff.leaves {
            let k = view_key(&p);
            if n.view.remove(&k).is_none_or(|old| old.dot != p.dot) {
                n.diff_violations.push(format!("leave of absent {p:?}"));
            }
        }
        for p in diff.joins {
            if record {
                n.joined_at.entry(p.dot.clone()).or_insert(now);
            }
            if let Some(old) = n.view.insert(view_key(&p), p) {
                n.diff_violations.push(format!("join over present {old:?}"));
            }
        }
    }
}

/// The view key of a presence.
pub fn view_key(p: &Presence) -> ViewKey {
    (
        p.row.topic.clone(),
        p.row.key.clone(),
        p.dot.replica.clone(),
        p.row.owner,
    )
}

fn roundtrip(env: &Envelope) -> Option<Envelope> {
    let bytes = env.encode().ok()?;
    Envelope::decode(&bytes).ok()
}
