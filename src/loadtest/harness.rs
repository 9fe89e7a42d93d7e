//! What every simulated peer shares: the switchboards, the UDP endpoints, the plan, the
//! population's ids, the recorder, and the latest presence change of each churned peer (so a
//! watcher can tell which change a notice shows, and how long it took).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ed25519_dalek::SigningKey;
use ractor::ActorRef;

use crate::identity::FeedId;
use crate::loadtest::client::{Link, SbTarget};
use crate::loadtest::graph::FollowGraph;
use crate::loadtest::lane::Lane;
use crate::loadtest::messages::PeerMsg;
use crate::loadtest::metrics::Metrics;
use crate::loadtest::plan::Plan;
use crate::loadtest::schedule::{peer_secret, Shard};
use crate::net::PeerEndpoint;

/// A presence change made by the churn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The status line became `lt <n>`.
    Status(u64),
    /// The peer left (closed its connection).
    Leave,
}

/// The latest change of one peer, with a number so a watcher counts each change once.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    /// Which change, increasing.
    pub seq: u64,
    /// When it was made.
    pub at: Instant,
    /// What it was.
    pub kind: ChangeKind,
}

/// The shared context of a run.
pub struct Harness {
    /// The switchboards, in the plan's order.
    pub targets: Vec<SbTarget>,
    /// The UDP endpoints the peers dial from, shared round-robin.
    pub endpoints: Vec<Arc<PeerEndpoint>>,
    /// The relayed pairs' own endpoints and the lane they (and the pairs' tasks) run on, if the
    /// caller gave one (see [`crate::loadtest::lane`]); without, the pairs share `endpoints`.
    probes: Option<(Lane, Vec<Arc<PeerEndpoint>>)>,
    /// Who does what.
    pub plan: Plan,
    /// This process's part of the population.
    pub shard: Shard,
    /// The run's seed (identities).
    pub seed: u64,
    /// The follow graph of the replicate part, if any.
    pub graph: Option<FollowGraph>,
    /// The recorder.
    pub metrics: Arc<Metrics>,
    /// Set when the run ends: connections that close now are not failures, loops stop.
    pub stopping: Arc<AtomicBool>,
    /// Admissions (handshake, hello, join) in flight, at most `--in-flight` (by default
    /// [`LOADTEST_HANDSHAKES_IN_FLIGHT`](crate::limits::LOADTEST_HANDSHAKES_IN_FLIGHT)).
    pub dial_slots: tokio::sync::Semaphore,
    /// The transport the peers dial their switchboard with (a daemon's by default).
    pub link: Link,
    ids: Vec<FeedId>,
    index: HashMap<FeedId, u64>,
    live: DashMap<u64, ActorRef<PeerMsg>>,
    /// Peers that moved off their planned switchboard (its connection was lost or its dial
    /// failed): how many nodes on they now dial. Only moved peers have an entry.
    moved: DashMap<u64, usize>,
    /// The node the failover scenario killed, and when.
    killed: OnceLock<(usize, Instant)>,
    /// Peers of the killed node that joined again through another node (each counted once).
    failed_over: DashMap<u64, ()>,
    changes: DashMap<u64, Change>,
    change_seq: AtomicU64,
}

impl Harness {
    /// A context for `plan.peers` local peers; their ids are derived now, once.
    pub fn new(
        targets: Vec<SbTarget>,
        endpoints: Vec<Arc<PeerEndpoint>>,
        plan: Plan,
        shard: Shard,
        seed: u64,
        graph: Option<FollowGraph>,
        metrics: Arc<Metrics>,
    ) -> Harness {
        let ids: Vec<FeedId> = (0..plan.peers)
            .map(|l| {
                FeedId::from(
                    SigningKey::from_bytes(&peer_secret(seed, shard.global(l))).verifying_key(),
                )
            })
            .collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(l, id)| (*id, l as u64))
            .collect();
        Harness {
            targets,
            endpoints,
            probes: None,
            plan,
            shard,
            seed,
            graph,
            metrics,
            stopping: Arc::new(AtomicBool::new(false)),
            dial_slots: tokio::sync::Semaphore::new(crate::limits::LOADTEST_HANDSHAKES_IN_FLIGHT),
            link: Link::Daemon,
            ids,
            index,
            live: DashMap::new(),
            moved: DashMap::new(),
            killed: OnceLock::new(),
            failed_over: DashMap::new(),
            changes: DashMap::new(),
            change_seq: AtomicU64::new(0),
        }
    }

    /// At most `n` admissions in flight (instead of
    /// [`LOADTEST_HANDSHAKES_IN_FLIGHT`](crate::limits::LOADTEST_HANDSHAKES_IN_FLIGHT)).
    pub fn with_in_flight(mut self, n: usize) -> Harness {
        self.dial_slots = tokio::sync::Semaphore::new(n);
        self
    }

    /// The relayed pairs dial from `endpoints` (driven on `lane`) and run their round trips on
    /// `lane`, instead of sharing the other peers' endpoints and runtime.
    pub fn with_probes(mut self, lane: Lane, endpoints: Vec<Arc<PeerEndpoint>>) -> Harness {
        if !endpoints.is_empty() {
            self.probes = Some((lane, endpoints));
        }
        self
    }

    /// The peers dial with the transport of `link` (instead of a daemon's).
    pub fn with_link(mut self, link: Link) -> Harness {
        self.link = link;
        self
    }

    /// The signing key of local peer `l`.
    pub fn key(&self, l: u64) -> SigningKey {
        SigningKey::from_bytes(&peer_secret(self.seed, self.shard.global(l)))
    }

    /// The id of local peer `l`.
    pub fn id(&self, l: u64) -> Option<FeedId> {
        self.ids.get(l as usize).copied()
    }

    /// Every local peer's id.
    pub fn ids(&self) -> &[FeedId] {
        &self.ids
    }

    /// The local index of `id`, if it is one of this harness's peers.
    pub fn local(&self, id: &FeedId) -> Option<u64> {
        self.index.get(id).copied()
    }

    /// The endpoint local peer `l` dials from.
    pub fn endpoint(&self, l: u64) -> Option<&Arc<PeerEndpoint>> {
        let endpoints = self.probes_for(l).map_or(&self.endpoints, |(_, e)| e);
        endpoints.get(l as usize % endpoints.len().max(1))
    }

    /// The lane local peer `l`'s relay tasks run on: the probes' for a relayed pair's peer,
    /// none (the current runtime) for the others.
    pub fn lane(&self, l: u64) -> Option<&Lane> {
        self.probes_for(l).map(|(lane, _)| lane)
    }

    /// Every endpoint the peers dial from, the probes' included.
    pub fn all_endpoints(&self) -> impl Iterator<Item = &Arc<PeerEndpoint>> {
        let probes = self.probes.iter().flat_map(|(_, e)| e.iter());
        self.endpoints.iter().chain(probes)
    }

    /// The probes' lane and endpoints, if local peer `l` is a relayed pair's and there are any.
    fn probes_for(&self, l: u64) -> Option<&(Lane, Vec<Arc<PeerEndpoint>>)> {
        self.probes
            .as_ref()
            .filter(|_| l < 2 * self.plan.relay_pairs)
    }

    /// The switchboard (an index into `targets`) local peer `l` dials now: its planned one, or
    /// the one it moved on to.
    pub fn node(&self, l: u64) -> usize {
        let n = self.targets.len().max(1);
        let moved = self.moved.get(&l).map_or(0, |m| *m);
        (self.plan.switchboard(l) + moved) % n
    }

    /// Local peer `l` lost its switchboard (or could not reach it): it dials the next node of
    /// the cluster from now on, as a daemon given the whole cluster does.
    pub fn move_on(&self, l: u64) {
        if self.targets.len() > 1 {
            *self.moved.entry(l).or_default() += 1;
        }
    }

    /// The failover scenario killed node `node` now.
    pub fn killed_now(&self, node: usize) {
        let _ = self.killed.set((node, Instant::now()));
    }

    /// The node killed and when, once it was.
    pub fn killed(&self) -> Option<(usize, Instant)> {
        self.killed.get().copied()
    }

    /// Local peer `l` joined `node`: if it is a peer of the killed node back online through
    /// another one for the first time, how long after the kill.
    pub fn rejoined(&self, l: u64, node: usize) -> Option<Duration> {
        let (dead, at) = self.killed()?;
        if self.plan.switchboard(l) != dead || node == dead {
            return None;
        }
        self.failed_over
            .insert(l, ())
            .is_none()
            .then(|| at.elapsed())
    }

    /// Peers of the killed node back online through another node.
    pub fn failed_over(&self) -> u64 {
        self.failed_over.len() as u64
    }

    /// The local peers planned on node `node`.
    pub fn planned_on(&self, node: usize) -> u64 {
        (0..self.plan.peers)
            .filter(|l| self.plan.switchboard(*l) == node)
            .count() as u64
    }

    /// Whether the run is ending.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// A peer actor (re)started: returns true if it had started before (a restart).
    pub fn register(&self, l: u64, actor: ActorRef<PeerMsg>) -> bool {
        self.live.insert(l, actor).is_some()
    }

    /// The actor of local peer `l`, if it started.
    pub fn actor(&self, l: u64) -> Option<ActorRef<PeerMsg>> {
        self.live.get(&l).map(|a| a.clone())
    }

    /// Record that local peer `l` makes a change now.
    pub fn change(&self, l: u64, kind: ChangeKind) {
        let seq = self.change_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.changes.insert(
            l,
            Change {
                seq,
                at: Instant::now(),
                kind,
            },
        );
    }

    /// The latest change of local peer `l`.
    pub fn latest_change(&self, l: u64) -> Option<Change> {
        self.changes.get(&l).map(|c| *c)
    }

    /// A fresh number for a status line.
    pub fn next_status(&self) -> u64 {
        self.change_seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}
