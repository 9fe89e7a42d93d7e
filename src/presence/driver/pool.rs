//! The tracker pool: the description a supervision tree needs to start the shards, and the
//! client handle that routes calls to shards and reads their views.
//!
//! Topics are hashed to shards with a hash that is the same on every node (blake3, not the
//! per-process SipHash), and every node must run the same shard count: frames from a node with
//! another count are refused by the shards. Each shard puts its reference in its [`Slot`] when it
//! (re)starts, so a restarted shard is found again without a process-global name (a load-test
//! process runs many trackers).

use std::sync::Arc;

use bytes::Bytes;
use ractor::{call, Actor, ActorRef};
use tokio::sync::broadcast;

use super::incarnation::Incarnations;
use super::shard_actor::{ShardActor, ShardArgs, ShardMsg};
use super::transport::{Inbound, Transport};
use super::view::ShardView;
use crate::limits;
use crate::presence::message::Envelope;
use crate::presence::options::{Options, OptionsError};
use crate::presence::replica::Replica;
use crate::presence::shard::ShardError;
use crate::presence::types::{Diff, Meta, Owner, Presence, ReplicaName};
use crate::runtime::Slot;

/// A tracker call failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The options are invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The shard refused the operation.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// The shard actor is not running or did not answer.
    #[error("presence shard {0} unavailable: {1}")]
    Unavailable(u16, String),
    /// A shard actor failed to start.
    #[error("presence shard failed to start: {0}")]
    Spawn(String),
}

/// What a supervision tree needs to start a tracker: the options (shard count included).
#[derive(Clone, Debug)]
pub struct TrackerPool {
    /// Options shared by every shard.
    pub options: Options,
}

/// The shard a topic belongs to, identical on every node.
pub fn shard_for(topic: &str, shard_count: u16) -> u16 {
    let h = blake3::hash(topic.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(first) % u64::from(shard_count.max(1))) as u16
}

impl TrackerPool {
    /// A validated pool description.
    pub fn new(options: Options) -> Result<Self, OptionsError> {
        options.validate()?;
        Ok(Self { options })
    }

    /// The shared parts of a tracker on `node`: one view per shard and the diff channel. Its
    /// incarnations are monotonic in this process only (no data directory).
    pub fn handle(&self, node: &str) -> Tracker {
        self.handle_with(node, Arc::new(Incarnations::in_memory()))
    }

    /// [`TrackerPool::handle`] with the node's incarnation source (a file-backed one keeps
    /// vsns monotonic across process restarts).
    pub fn handle_with(&self, node: &str, incarnations: Arc<Incarnations>) -> Tracker {
        let (diffs, _) = broadcast::channel(limits::PRESENCE_DIFF_CHANNEL);
        let count = self.options.shard_count;
        Tracker {
            node: ReplicaName::new(node),
            count,
            views: (0..count).map(|_| Arc::new(ShardView::new())).collect(),
            slots: (0..count).map(|_| Slot::new()).collect(),
            diffs,
            incarnations,
        }
    }

    /// Start arguments of shard `index` of `tracker` (for a ChildSpec).
    pub fn shard_args(
        &self,
        tracker: &Tracker,
        index: u16,
        transport: Arc<dyn Transport>,
        seed: u64,
    ) -> ShardArgs {
        ShardArgs {
            node: tracker.node.clone(),
            index,
            opts: self.options.clone(),
            seed: seed ^ u64::from(index),
            transport,
            view: tracker.views[usize::from(index)].clone(),
            slot: tracker.slots[usize::from(index)].clone(),
            diffs: tracker.diffs.clone(),
            incarnations: Arc::clone(&tracker.incarnations),
        }
    }

    /// Starts every shard unsupervised (tests and standalone use); a tree uses
    /// [`TrackerPool::shard_args`] with its own ChildSpecs instead.
    pub async fn start(
        &self,
        node: &str,
        transport: Arc<dyn Transport>,
        seed: u64,
    ) -> Result<Tracker, TrackerError> {
        self.start_handle(self.handle(node), transport, seed).await
    }

    /// Starts every shard of `tracker` (from [`TrackerPool::handle_with`]) unsupervised.
    pub async fn start_handle(
        &self,
        tracker: Tracker,
        transport: Arc<dyn Transport>,
        seed: u64,
    ) -> Result<Tracker, TrackerError> {
        for i in 0..self.options.shard_count {
            let args = self.shard_args(&tracker, i, transport.clone(), seed);
            ShardActor::spawn(None, ShardActor, args)
                .await
                .map_err(|e| TrackerError::Spawn(e.to_string()))?;
        }
        Ok(tracker)
    }
}

/// The client handle of a tracker on one node. Cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    node: ReplicaName,
    count: u16,
    views: Vec<Arc<ShardView>>,
    slots: Vec<Slot<ShardMsg>>,
    diffs: broadcast::Sender<Arc<Diff>>,
    incarnations: Arc<Incarnations>,
}

impl Tracker {
    /// This node.
    pub fn node(&self) -> &ReplicaName {
        &self.node
    }

    fn shard(&self, index: u16) -> Result<ActorRef<ShardMsg>, TrackerError> {
        self.slots
            .get(usize::from(index))
            .and_then(Slot::get)
            .ok_or_else(|| TrackerError::Unavailable(index, "not running".into()))
    }

    /// The running actor of shard `index` (for supervision tests and diagnostics).
    pub fn shard_actor(&self, index: u16) -> Option<ActorRef<ShardMsg>> {
        self.shard(index).ok()
    }

    fn view(&self, topic: &str) -> &ShardView {
        &self.views[usize::from(shard_for(topic, self.count))]
    }

    /// Tracks a presence.
    pub async fn track(
        &self,
        owner: Owner,
        topic: &str,
        key: &str,
        meta: Meta,
    ) -> Result<Presence, TrackerError> {
        let i = shard_for(topic, self.count);
        let (topic, key) = (topic.to_string(), key.to_string());
        let r = call!(self.shard(i)?, |reply| ShardMsg::Track {
            owner,
            topic,
            key,
            meta,
            reply
        });
        r.map_err(|e| TrackerError::Unavailable(i, e.to_string()))?
            .map_err(Into::into)
    }

    /// Untracks one presence (no error if absent).
    pub async fn untrack(&self, owner: Owner, topic: &str, key: &str) -> Result<(), TrackerError> {
        let i = shard_for(topic, self.count);
        let (topic, key) = (topic.to_string(), key.to_string());
        call!(self.shard(i)?, |reply| ShardMsg::Untrack {
            owner,
            topic,
            key,
            reply
        })
        .map_err(|e| TrackerError::Unavailable(i, e.to_string()))
    }

    /// Untracks every presence of an owner, in every shard.
    pub async fn untrack_owner(&self, owner: Owner) -> Result<(), TrackerError> {
        for i in 0..self.count {
            call!(self.shard(i)?, |reply| ShardMsg::UntrackOwner {
                owner,
                reply
            })
            .map_err(|e| TrackerError::Unavailable(i, e.to_string()))?;
        }
        Ok(())
    }

    /// Replaces a presence's meta with `f(old)`; one diff carries the leave and the join.
    pub async fn update(
        &self,
        owner: Owner,
        topic: &str,
        key: &str,
        f: impl FnOnce(&Meta) -> Meta + Send + 'static,
    ) -> Result<Presence, TrackerError> {
        let i = shard_for(topic, self.count);
        let (topic, key) = (topic.to_string(), key.to_string());
        let f: super::shard_actor::UpdateFn = Box::new(f);
        let r = call!(self.shard(i)?, |reply| ShardMsg::Update {
            owner,
            topic,
            key,
            f,
            reply
        });
        r.map_err(|e| TrackerError::Unavailable(i, e.to_string()))?
            .map_err(Into::into)
    }

    /// Visible presences of a topic, read from the view without messaging the shard.
    pub fn list(&self, topic: &str) -> Vec<Presence> {
        self.view(topic).list(topic)
    }

    /// Visible presences of one key of a topic, read from the view.
    pub fn get_by_key(&self, topic: &str, key: &str) -> Vec<Presence> {
        self.view(topic).get_by_key(topic, key)
    }

    /// Subscribes to diffs (bounded; a lagging subscriber is told how many it missed).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Diff>> {
        self.diffs.subscribe()
    }

    /// The replica table of one shard.
    pub async fn replicas(&self, index: u16) -> Result<Vec<Replica>, TrackerError> {
        call!(self.shard(index)?, ShardMsg::Replicas)
            .map_err(|e| TrackerError::Unavailable(index, e.to_string()))
    }

    /// Announces a graceful shutdown from every shard and stops them.
    pub async fn graceful_permdown(&self) -> Result<(), TrackerError> {
        for i in 0..self.count {
            call!(self.shard(i)?, ShardMsg::GracefulPermdown)
                .map_err(|e| TrackerError::Unavailable(i, e.to_string()))?;
        }
        Ok(())
    }
}

impl Inbound for Tracker {
    fn deliver(&self, from: ReplicaName, frame: Bytes) {
        let env = match Envelope::decode(&frame) {
            Ok(env) => env,
            Err(e) => return tracing::warn!(%from, error = %e, "undecodable presence frame"),
        };
        // A frame for an index we do not have (another shard count) still goes to shard 0,
        // which refuses it with a logged reason.
        let index = if env.shard < self.count { env.shard } else { 0 };
        if let Ok(shard) = self.shard(index) {
            let _ = shard.cast(ShardMsg::Inbound { from, env });
        }
    }

    fn peer_connected(&self, peer: ReplicaName) {
        for i in 0..self.count {
            if let Ok(shard) = self.shard(i) {
                let _ = shard.cast(ShardMsg::PeerConnected(peer.clone()));
            }
        }
    }
}
