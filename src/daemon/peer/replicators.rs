//! The registry of feed replicators and their progress, read without messaging any actor.
//!
//! Each feed replicator puts itself here when it starts and takes itself out when its state is
//! dropped; connection actors look a feed's replicator up to hand it entries, and `kith status`
//! reads each feed's progress.

use std::sync::Arc;

use dashmap::DashMap;
use ractor::ActorRef;
use serde::Serialize;

use crate::daemon::replicator::ReplicatorMsg;
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

#[derive(Clone)]
struct Registered {
    actor: ActorRef<ReplicatorMsg>,
    progress: FeedProgress,
}

/// Live feed replicators by feed. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct Replicators {
    map: Arc<DashMap<FeedId, Registered>>,
}

impl Replicators {
    /// Register a (re)started replicator.
    pub fn register(&self, feed: FeedId, actor: ActorRef<ReplicatorMsg>, seq: u64) {
        let progress = FeedProgress {
            seq,
            ..FeedProgress::default()
        };
        self.map.insert(feed, Registered { actor, progress });
    }

    /// Remove a replicator, if it is this actor (a newer one may have replaced it).
    pub fn unregister(&self, feed: &FeedId, actor: &ActorRef<ReplicatorMsg>) {
        self.map
            .remove_if(feed, |_, r| r.actor.get_id() == actor.get_id());
    }

    /// The replicator of `feed`.
    pub fn get(&self, feed: &FeedId) -> Option<ActorRef<ReplicatorMsg>> {
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
