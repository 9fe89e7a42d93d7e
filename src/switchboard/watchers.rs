//! Who watches whom on one switchboard node: the index that turns a presence diff into notices
//! for exactly the sessions that asked about the ids it touches.
//!
//! Without it every session would look at every diff, which is quadratic in connected peers
//! (5,000 joins would be 25 million looks). The index is keyed by the watched id; each session
//! replaces its own entries when its watch list changes and removes them when it ends. It lives
//! for the connection only, like the watch lists themselves: no social graph is stored.
//!
//! Beside it, the views revoked by a client of another node ([`NodeMsg::Revoke`]) that the
//! presence CRDT has not yet carried here: an unfollow hides a peer from its former watcher on
//! every node within a round trip, not at the next presence broadcast. Each is kept until the
//! CRDT's meta catches up, for at most [`PRESENCE_REVOCATION_TTL`], and at most
//! [`PRESENCE_REVOCATIONS_MAX`] at once (past it the broadcast alone hides them). In memory only.
//!
//! [`NodeMsg::Revoke`]: crate::wire::switchboard::NodeMsg::Revoke

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;

use crate::identity::FeedId;
use crate::limits::{PRESENCE_REVOCATIONS_MAX, PRESENCE_REVOCATION_TTL};

/// A view revoked: the owner's connection (`since_ms`), the meta version that revoked it, when
/// this node heard of it.
#[derive(Clone, Copy, Debug)]
struct Revoked {
    since_ms: u64,
    seq: u64,
    at: Instant,
}

/// Watched id → the peers (by their session's id) watching it. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct Watchers {
    by_id: Arc<DashMap<FeedId, HashSet<FeedId>>>,
    /// (owner, watcher) → the revocation not yet carried here by the CRDT.
    revoked: Arc<DashMap<(FeedId, FeedId), Revoked>>,
}

impl Watchers {
    /// `owner` (connected since `since_ms`) no longer shows itself to `watcher` from meta
    /// version `seq` on. False if the table is full (the presence broadcast will hide it).
    pub fn revoke(
        &self,
        owner: FeedId,
        watcher: FeedId,
        since_ms: u64,
        seq: u64,
        now: Instant,
    ) -> bool {
        if self.revoked.len() >= PRESENCE_REVOCATIONS_MAX {
            self.revoked
                .retain(|_, r| now.duration_since(r.at) < PRESENCE_REVOCATION_TTL);
            if self.revoked.len() >= PRESENCE_REVOCATIONS_MAX {
                return false;
            }
        }
        let r = Revoked {
            since_ms,
            seq,
            at: now,
        };
        self.revoked.insert((owner, watcher), r);
        true
    }

    /// Whether `watcher`'s view of `owner`, whose newest meta here is version `seq` of its
    /// connection since `since_ms`, was revoked by a newer version not yet here. An entry the
    /// meta caught up with (or an expired one) is dropped.
    pub fn is_revoked(
        &self,
        owner: FeedId,
        watcher: FeedId,
        since_ms: u64,
        seq: u64,
        now: Instant,
    ) -> bool {
        let key = (owner, watcher);
        let Some(r) = self.revoked.get(&key).map(|r| *r) else {
            return false;
        };
        let pending = r.since_ms == since_ms
            && seq < r.seq
            && now.duration_since(r.at) < PRESENCE_REVOCATION_TTL;
        if !pending {
            self.revoked.remove(&key);
        }
        pending
    }

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

    #[test]
    fn a_revocation_holds_until_the_meta_catches_up_or_it_expires() {
        let w = Watchers::default();
        let now = Instant::now();
        assert!(w.revoke(id(1), id(2), 100, 5, now));
        assert!(
            w.is_revoked(id(1), id(2), 100, 4, now),
            "older meta: hidden"
        );
        assert!(!w.is_revoked(id(1), id(3), 100, 4, now), "another watcher");
        assert!(!w.is_revoked(id(1), id(2), 100, 5, now), "caught up");
        assert!(!w.is_revoked(id(1), id(2), 100, 4, now), "and forgotten");
        assert!(w.revoke(id(1), id(2), 100, 5, now));
        assert!(
            !w.is_revoked(id(1), id(2), 200, 1, now),
            "a newer connection decides"
        );
        assert!(w.revoke(id(1), id(2), 100, 5, now));
        let later = now + PRESENCE_REVOCATION_TTL;
        assert!(!w.is_revoked(id(1), id(2), 100, 4, later), "expired");
    }
}
