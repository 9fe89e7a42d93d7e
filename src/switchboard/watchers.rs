//! Who watches whom on one switchboard node: the index that turns a presence diff into notices
//! for exactly the sessions that asked about the ids it touches.
//!
//! Without it every session would look at every diff, which is quadratic in connected peers
//! (5,000 joins would be 25 million looks). The index is keyed by the watched id; each session
//! replaces its own entries when its watch list changes and removes them when it ends. It lives
//! for the connection only, like the watch lists themselves: no social graph is stored.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;

use crate::identity::FeedId;

/// Watched id → the peers (by their session's id) watching it. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct Watchers {
    by_id: Arc<DashMap<FeedId, HashSet<FeedId>>>,
}

impl Watchers {
    /// `watcher` now watches `new` instead of `old`.
    pub fn replace(&self, watcher: FeedId, old: &HashSet<FeedId>, new: &HashSet<FeedId>) {
        self.remove(watcher, old.difference(new));
        for id in new.difference(old) {
            self.by_id.entry(*id).or_default().insert(watcher);
        }
    }

    /// `watcher` no longer watches `ids`.
    pub fn remove<'a>(&self, watcher: FeedId, ids: impl IntoIterator<Item = &'a FeedId>) {
        for id in ids {
            self.by_id.remove_if_mut(id, |_, set| {
                set.remove(&watcher);
                set.is_empty()
            });
        }
    }

    /// The peers watching `id`.
    pub fn of(&self, id: &FeedId) -> Vec<FeedId> {
        self.by_id
            .get(id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Ids watched by anyone.
    pub fn watched(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    fn set(ids: &[u8]) -> HashSet<FeedId> {
        ids.iter().map(|n| id(*n)).collect()
    }

    #[test]
    fn replacing_and_removing_keep_only_live_entries() {
        let w = Watchers::default();
        w.replace(id(1), &set(&[]), &set(&[7, 8]));
        w.replace(id(2), &set(&[]), &set(&[8]));
        assert_eq!(w.of(&id(7)), vec![id(1)]);
        let mut of8 = w.of(&id(8));
        of8.sort_by_key(|f| f.0);
        assert_eq!(of8, vec![id(1), id(2)]);
        w.replace(id(1), &set(&[7, 8]), &set(&[8, 9]));
        assert!(w.of(&id(7)).is_empty());
        assert_eq!(w.of(&id(9)), vec![id(1)]);
        w.remove(id(1), &set(&[8, 9]));
        w.remove(id(2), &set(&[8]));
        assert_eq!(w.watched(), 0, "no empty entries are left behind");
    }
}
