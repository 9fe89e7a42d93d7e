//! The registry of feed replicators and their progress, read without messaging any actor.
//!
//! Each feed replicator puts itself here when it starts and takes itself out when its state is
//! dropped; connection actors look a feed's replicator up to hand it entries, and `kith status`
//! reads each feed's progress. The registry is generic over the replicators' message type
//! (`daemon::messages::ReplicatorMsg` in the daemon), so that this plumbing imports no actor
//! and no message of one.

use std::sync::Arc;

use dashmap::DashMap;
use ractor::{ActorRef, Message};
use serde::Serialize;

use crate::identity::FeedId;

/// Replication progress of one feed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FeedProgress {
    /// Latest sequence held.
    pub seq: u64,
    /// Entries stored from peers since the replicator started.
    pub received: u64,
    /// Entries refused (invalid) since the replicator started.
    pub refused: u64,
    /// When an entry last arrived (ms since the epoch).
    pub last_received_ms: Option<u64>,
    /// The peer it last came from.
    pub last_source: Option<String>,
}

struct Registered<M> {
    actor: ActorRef<M>,
    progress: FeedProgress,
}

/// Live feed replicators by feed, each an actor taking messages `M`. Cheap to clone; clones
/// share the table.
pub struct Replicators<M> {
    map: Arc<DashMap<FeedId, Registered<M>>>,
}

impl<M> Clone for Replicators<M> {
    fn clone(&self) -> Self {
        Replicators {
            map: Arc::clone(&self.map),
        }
    }
}

impl<M> Default for Replicators<M> {
    fn default() -> Self {
        Replicators {
            map: Arc::default(),
        }
    }
}

impl<M: Message> Replicators<M> {
    /// Register a (re)started replicator.
    pub fn register(&self, feed: FeedId, actor: ActorRef<M>, seq: u64) {
        let progress = FeedProgress {
            seq,
            ..FeedProgress::default()
        };
        self.map.insert(feed, Registered { actor, progress });
    }

    /// Remove a replicator, if it is this actor (a newer one may have replaced it).
    pub fn unregister(&self, feed: &FeedId, actor: &ActorRef<M>) {
        self.map
            .remove_if(feed, |_, r| r.actor.get_id() == actor.get_id());
    }

    /// The replicator of `feed`.
    pub fn get(&self, feed: &FeedId) -> Option<ActorRef<M>> {
        self.map.get(feed).map(|r| r.actor.clone())
    }

    /// Update a feed's progress.
    pub fn update(&self, feed: &FeedId, f: impl FnOnce(&mut FeedProgress)) {
        if let Some(mut r) = self.map.get_mut(feed) {
            f(&mut r.progress);
        }
    }

    /// Every feed's progress, sorted by feed.
    pub fn progress(&self) -> Vec<(FeedId, FeedProgress)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .map(|r| (*r.key(), r.progress.clone()))
            .collect();
        out.sort_by_key(|(feed, _)| *feed);
        out
    }

    /// Number of replicators.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
