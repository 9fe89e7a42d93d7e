//! What every actor of a switchboard node shares.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use std::sync::Mutex;

use dashmap::DashMap;
use ractor::ActorRef;

use crate::identity::FeedId;
use crate::net::PeerEndpoint;
use crate::presence::driver::pool::Tracker;
use crate::supervisor::DynamicSupervisorHandle;
use crate::switchboard::cluster::members::Members;
use crate::switchboard::cluster::nodes::NodeLinks;
use crate::switchboard::cluster::presence_link::QuicPresence;
use crate::switchboard::hub::Hub;
use crate::switchboard::intro::{IntroError, RefusalKind};
use crate::switchboard::invites::InviteFile;
use crate::switchboard::join_guesses::JoinGuesses;
use crate::switchboard::messages::SbSessionMsg;
use crate::switchboard::watchers::Watchers;
use crate::wire::switchboard::JoinRefusal;

/// Counters only: a switchboard keeps no log of who talked to whom.
#[derive(Debug, Default)]
pub struct Counters {
    /// Peers connected now.
    pub connected: AtomicU64,
    /// Peers admitted since start.
    pub joins: AtomicU64,
    /// Hellos that failed.
    pub refused: AtomicU64,
    /// Joins refused without their invite code being checked, because the key or its address
    /// sent too many wrong codes (also counted in `refused`).
    pub join_guesses_throttled: AtomicU64,
    /// Hellos that claimed the switchboard role from a key outside the cluster's members.
    pub nodes_refused: AtomicU64,
    /// Messages from a cluster node that its own state does not allow (an introduction for a
    /// client it does not hold, an answer nobody asked it for, a packet from a client that is
    /// not its own): dropped.
    pub node_msgs_refused: AtomicU64,
    /// Presence notices sent to watchers.
    pub notices: AtomicU64,
    /// Introductions made (both sides agreed).
    pub introductions: AtomicU64,
    /// Introductions refused (callee said no, or is not here).
    pub introductions_refused: AtomicU64,
    /// Introductions refused, by [`RefusalKind`] (in [`RefusalKind::ALL`]'s order).
    pub introductions_refused_by: [AtomicU64; RefusalKind::ALL.len()],
    /// Joins refused (part of `refused`), by [`JoinRefusal`] (invite, busy, other).
    pub joins_refused_by: [AtomicU64; 3],
    /// Hellos that failed before a join could be asked (part of `refused`).
    pub hellos_failed: AtomicU64,
}

/// A snapshot of the counters, for `kith status` on a switchboard.
#[derive(Clone, Debug, Serialize)]
pub struct CountersView {
    /// Peers connected now.
    pub connected: u64,
    /// Peers admitted since start.
    pub joins: u64,
    /// Joins refused.
    pub refused: u64,
    /// Joins refused unchecked after too many wrong invite codes (part of `refused`).
    pub join_guesses_throttled: u64,
    /// Hellos claiming the switchboard role from a key outside the cluster's members.
    pub nodes_refused: u64,
    /// Cluster-node messages dropped because the sending node had no right to send them.
    pub node_msgs_refused: u64,
    /// Presence notices sent.
    pub notices: u64,
    /// Introductions made.
    pub introductions: u64,
    /// Introductions refused.
    pub introductions_refused: u64,
    /// Introductions refused, by reason (`declined`, `not_connected`, `over_rate`, …).
    pub introductions_refused_by: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// Add one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a refused introduction, under its reason too.
    pub fn refuse_introduction(&self, error: &IntroError) {
        Self::bump(&self.introductions_refused);
        Self::bump(&self.introductions_refused_by[error.kind() as usize]);
    }

    /// Count a refused join, under its reason too.
    pub fn refuse_join(&self, why: JoinRefusal) {
        Self::bump(&self.refused);
        Self::bump(&self.joins_refused_by[join_refusal_index(why)]);
    }

    /// Joins refused by reason (`invite`, `busy`, `other`) and failed hellos (`hello`).
    pub fn joins_refused(&self) -> [(&'static str, u64); 4] {
        let get = |i: usize| self.joins_refused_by[i].load(Ordering::Relaxed);
        [
            ("invite", get(join_refusal_index(JoinRefusal::Invite))),
            ("busy", get(join_refusal_index(JoinRefusal::Busy))),
            ("other", get(join_refusal_index(JoinRefusal::Other))),
            ("hello", self.hellos_failed.load(Ordering::Relaxed)),
        ]
    }

    /// A snapshot.
    pub fn view(&self) -> CountersView {
        CountersView {
            connected: self.connected.load(Ordering::Relaxed),
            joins: self.joins.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            join_guesses_throttled: self.join_guesses_throttled.load(Ordering::Relaxed),
            nodes_refused: self.nodes_refused.load(Ordering::Relaxed),
            node_msgs_refused: self.node_msgs_refused.load(Ordering::Relaxed),
            notices: self.notices.load(Ordering::Relaxed),
            introductions: self.introductions.load(Ordering::Relaxed),
            introductions_refused: self.introductions_refused.load(Ordering::Relaxed),
            introductions_refused_by: RefusalKind::ALL
                .iter()
                .map(|k| {
                    let n = self.introductions_refused_by[*k as usize].load(Ordering::Relaxed);
                    (k.name(), n)
                })
                .collect(),
        }
    }
}

fn join_refusal_index(why: JoinRefusal) -> usize {
    match why {
        JoinRefusal::Invite => 0,
        JoinRefusal::Busy => 1,
        JoinRefusal::Other => 2,
    }
}

/// The shared parts of a switchboard node. Cheap to clone.
#[derive(Clone)]
pub struct SbContext {
    /// This node's name in the cluster (its id).
    pub node: String,
    /// The presence tracker.
    pub tracker: Tracker,
    /// The QUIC endpoint peers connect to.
    pub endpoint: Arc<PeerEndpoint>,
    /// Where per-client session actors are started.
    pub clients: DynamicSupervisorHandle,
    /// Counters.
    pub counters: Arc<Counters>,
    /// The relay hub.
    pub hub: Hub,
    /// Joined sessions by peer, for introductions and presence notices.
    pub sessions: Arc<DashMap<FeedId, ActorRef<SbSessionMsg>>>,
    /// Who watches whom, for presence notices.
    pub watchers: Watchers,
    /// The other cluster nodes' control streams (introductions, relayed frames).
    pub nodes: NodeLinks,
    /// Presence links to the other switchboards of the cluster (the tracker's transport).
    pub cluster: QuicPresence,
    /// The keys that may act as nodes of this cluster.
    pub members: Members,
    /// Invite codes, when the switchboard is invite-only (`None`: open membership).
    pub invites: Option<Arc<Mutex<InviteFile>>>,
    /// Wrong invite codes by client key and source address (locked after `invites`).
    pub join_guesses: Arc<Mutex<JoinGuesses>>,
}

impl SbContext {
    /// The other cluster nodes this node has a presence link to.
    pub fn cluster_nodes(&self) -> Vec<String> {
        use crate::presence::driver::transport::Transport;
        self.cluster
            .peers()
            .iter()
            .map(|n| n.as_str().to_string())
            .collect()
    }
}
