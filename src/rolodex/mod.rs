//! The rolodex: every user this node knows, in a concurrent table backed by LMDB.
//!
//! The table is the ETS analogue: any actor reads it directly, without a message. It is a cache;
//! LMDB is the truth, and `Store::load_rolodex` rebuilds the table from the store on start
//! (through [`Rolodex::from_records`], so this module never imports the store). Changes
//! are computed by the pure [`apply`], made durable by the store writer, and only then cached.
//! The map is behind this small type, whose API never hands out a guard, so that no caller can
//! hold a dashmap lock across an `.await` (a known deadlock) and so the map could be swapped.

mod change;
mod entry;

use std::sync::Arc;

use dashmap::DashMap;

pub use change::{apply, RolodexChange, RolodexError};
pub use entry::RolodexEntry;

use crate::identity::FeedId;

/// The in-memory rolodex table. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct Rolodex {
    map: Arc<DashMap<FeedId, RolodexEntry>>,
}

impl Rolodex {
    /// Build the table from durable records, with each feed's latest sequence taken from the
    /// feed heads (`(feed, latest sequence)`: the durable record of replication progress).
    pub fn from_records(
        records: impl IntoIterator<Item = RolodexEntry>,
        heads: impl IntoIterator<Item = (FeedId, u64)>,
    ) -> Rolodex {
        let rolodex = Rolodex::default();
        for entry in records {
            rolodex.map.insert(entry.id, entry);
        }
        for (id, seq) in heads {
            if let Some(mut entry) = rolodex.map.get_mut(&id) {
                entry.latest_seq = seq;
            }
        }
        rolodex
    }

    /// A copy of one entry.
    pub fn get(&self, id: &FeedId) -> Option<RolodexEntry> {
        self.map.get(id).map(|r| r.value().clone())
    }

    /// Whether we follow `id`.
    pub fn is_following(&self, id: &FeedId) -> bool {
        self.map.get(id).is_some_and(|r| r.following && !r.blocked)
    }

    /// Whether we block `id`.
    pub fn is_blocked(&self, id: &FeedId) -> bool {
        self.map.get(id).is_some_and(|r| r.blocked)
    }

    /// The ids we follow (and do not block).
    pub fn following(&self) -> Vec<FeedId> {
        self.map
            .iter()
            .filter(|r| r.following && !r.blocked)
            .map(|r| *r.key())
            .collect()
    }

    /// Every entry, sorted by id so listings are stable.
    pub fn list(&self) -> Vec<RolodexEntry> {
        let mut all: Vec<RolodexEntry> = self.map.iter().map(|r| r.value().clone()).collect();
        all.sort_by_key(|e| e.id);
        all
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Cache an entry that has been made durable.
    pub fn cache(&self, entry: RolodexEntry) {
        self.map.insert(entry.id, entry);
    }

    /// Record replication progress for a known id (durable through the feed heads).
    pub fn note_seq(&self, id: &FeedId, seq: u64) {
        if let Some(mut entry) = self.map.get_mut(id) {
            entry.latest_seq = entry.latest_seq.max(seq);
        }
    }
}
