//! What every simulated peer shares: the switchboards, the UDP endpoints, the plan, the
//! population's ids, the recorder, and the latest presence change of each churned peer (so a
//! watcher can tell which change a notice shows, and how long it took).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use ed25519_dalek::SigningKey;
use ractor::ActorRef;

use crate::identity::FeedId;
use crate::loadtest::client::SbTarget;
use crate::loadtest::graph::FollowGraph;
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
    /// Admissions (handshake, hello, join) in flight, at most
    /// [`LOADTEST_HANDSHAKES_IN_FLIGHT`](crate::limits::LOADTEST_HANDSHAKES_IN_FLIGHT).
    pub dial_slots: tokio::sync::Semaphore,
    ids: Vec<FeedId>,
    index: HashMap<FeedId, u64>,
    live: DashMap<u64, ActorRef<PeerMsg>>,
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
            plan,
            shard,
            seed,
            graph,
            metrics,
            stopping: Arc::new(AtomicBool::new(false)),
            dial_slots: tokio::sync::Semaphore::new(crate::limits::LOADTEST_HANDSHAKES_IN_FLIGHT),
            ids,
            index,
            live: DashMap::new(),
            changes: DashMap::new(),
            change_seq: AtomicU64::new(0),
        }
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
        self.endpoints.get(l as usize % self.endpoints.len().max(1))
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
