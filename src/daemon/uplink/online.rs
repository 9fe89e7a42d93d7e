//! Who this daemon's switchboards say is online, this node's own status line, whom it lets see
//! its presence, and the status content keys: its own and those its contacts gave it.
//!
//! A cache of what the switchboards reported, read by `kith contacts` without messaging any
//! actor. It is not persisted: presence is only ever about now, and the content keys live in
//! memory only (a contact gives its key again on every new connection). Statuses arrive sealed
//! ([`crate::daemon::uplink::seal`]) and are opened when read, with the newest keys held for
//! their owner, so a key that arrives after the status it opens still opens it.

use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;

use crate::daemon::uplink::audience::{Audience, PresenceVisibility, Refresh, StatusKey};
use crate::daemon::uplink::seal::{open, seal, SealError};
use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::STATUS_KEYS_HELD_MAX;
use crate::rolodex::Rolodex;
use crate::store::{Store, StoreError};
use crate::wire::switchboard::{PeerMeta, SealedStatus};

/// Online peers as reported by switchboards, keyed by peer, then by switchboard.
#[derive(Clone)]
pub struct Online {
    map: Arc<DashMap<FeedId, Vec<(String, PeerMeta)>>>,
    status: Arc<RwLock<Option<String>>>,
    audience: Arc<Mutex<Audience>>,
    /// The two newest content keys each contact gave this node (newest first).
    keys: Arc<DashMap<FeedId, [Option<StatusKey>; 2]>>,
}

impl Default for Online {
    fn default() -> Self {
        Online::new(PresenceVisibility::default())
    }
}

/// What this node sees of an online contact: since when, and its status line if this node
/// holds the key it was sealed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Online since (ms since the epoch), as the switchboard says.
    pub since_ms: u64,
    /// The status line, opened.
    pub status: Option<String>,
}

impl Online {
    /// An empty cache for a node whose presence is shown to `mode`, with a fresh content key
    /// (its epoch starts at the clock, so a restarted node's keys are newer than its last).
    pub fn new(mode: PresenceVisibility) -> Self {
        let first = StatusKey {
            epoch: now_ms(),
            key: rand::random(),
        };
        Online {
            map: Arc::default(),
            status: Arc::default(),
            audience: Arc::new(Mutex::new(Audience::new(mode, first))),
            keys: Arc::default(),
        }
    }

    fn audience(&self) -> std::sync::MutexGuard<'_, Audience> {
        // Every step on the core is one call that cannot leave it half-changed.
        self.audience.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record what switchboard `via` says about `id` (`None`: offline there).
    pub fn report(&self, via: &str, id: FeedId, meta: Option<PeerMeta>) {
        let mut entry = self.map.entry(id).or_default();
        entry.retain(|(sb, _)| sb != via);
        if let Some(meta) = meta {
            entry.push((via.to_string(), meta));
        }
        let empty = entry.is_empty();
        drop(entry);
        if empty {
            self.map.remove_if(&id, |_, v| v.is_empty());
        }
    }

    /// What switchboard `via` last said of `id`, if it said it is online.
    pub fn reported_by(&self, via: &str, id: &FeedId) -> Option<PeerMeta> {
        self.map
            .get(id)
            .and_then(|v| v.iter().find(|(sb, _)| sb == via).map(|(_, m)| m.clone()))
    }

    /// Forget everything switchboard `via` said (its connection ended).
    pub fn forget(&self, via: &str) {
        self.map.retain(|_, v| {
            v.retain(|(sb, _)| sb != via);
            !v.is_empty()
        });
    }

    /// Whether `id` is online, and its sealed status line (from the most recent report).
    pub fn get(&self, id: &FeedId) -> Option<PeerMeta> {
        self.map
            .get(id)
            .and_then(|v| v.iter().map(|(_, m)| m.clone()).max_by_key(|m| m.since_ms))
    }

    /// Whether `id` is online, and its status line if this node holds its key.
    pub fn seen(&self, id: &FeedId) -> Option<Seen> {
        let meta = self.get(id)?;
        let status = meta.status.as_ref().and_then(|sealed| {
            let keys = self.keys.get(id)?;
            keys.iter().flatten().find_map(|key| open(id, key, sealed))
        });
        Some(Seen {
            since_ms: meta.since_ms,
            status,
        })
    }

    /// This node's status line.
    pub fn status(&self) -> Option<String> {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Set this node's status line.
    pub fn set_status(&self, text: Option<String>) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = text;
    }

    /// This node's status line (owned by `me`) sealed with its current key, and that key's
    /// epoch.
    pub fn sealed_status(&self, me: &FeedId) -> Result<(Option<SealedStatus>, u64), SealError> {
        let key = self.key();
        let sealed = match self.status() {
            Some(text) => Some(seal(me, &key, &text, &mut rand::thread_rng())?),
            None => None,
        };
        Ok((sealed, key.epoch))
    }

    /// Whom this node's presence is shown to.
    pub fn visibility(&self) -> PresenceVisibility {
        self.audience().mode()
    }

    /// Recompute whom this node's presence is shown to from the rolodex (and the followers
    /// known); the key rotates if anyone lost the view. Idempotent: every switchboard link and
    /// peer connection calls it on a change, the first one does the work.
    pub fn refresh(&self, rolodex: &Rolodex) -> Refresh {
        let following = rolodex.following();
        let blocked: Vec<FeedId> = rolodex
            .list()
            .into_iter()
            .filter(|e| e.blocked)
            .map(|e| e.id)
            .collect();
        let refresh = self
            .audience()
            .refresh(&following, &blocked, rand::random());
        if refresh.changed && refresh.left_out > 0 {
            tracing::warn!(
                left_out = refresh.left_out,
                max = crate::limits::PRESENCE_VISIBLE_IDS_MAX,
                "more contacts are allowed to see this node's presence than a switchboard takes; \
                 the others see it offline"
            );
        }
        refresh
    }

    /// The allow-list to give a switchboard (`None`: everyone).
    pub fn visible_to(&self) -> Option<Vec<FeedId>> {
        self.audience().list()
    }

    /// Whether `id` may see this node's presence and be given its key.
    pub fn allows(&self, id: &FeedId) -> bool {
        self.audience().allows(id)
    }

    /// The content key this node's status is sealed with now.
    pub fn key(&self) -> StatusKey {
        self.audience().key()
    }

    /// `id` asks this node for its feed, or no longer does; true if that changed what is known.
    pub fn note_follower(&self, id: FeedId, follows: bool) -> bool {
        self.audience().note_follower(id, follows)
    }

    /// Learn the followers known from the clocks peers last sent (those that asked for `me`'s
    /// feed), for `presence_visible_to = "followers"` after a restart. Bounded by the rolodex.
    pub fn load_followers(
        &self,
        store: &Store,
        rolodex: &Rolodex,
        me: &FeedId,
    ) -> Result<usize, StoreError> {
        let read = store.read()?;
        let mut found = 0;
        for entry in rolodex.list() {
            if read.peer_memory(&entry.id)?.received.contains_key(me) {
                self.note_follower(entry.id, true);
                found += 1;
            }
        }
        Ok(found)
    }

    /// Contact `from` gave this node its content key (over their own connection). The two
    /// newest are kept (a status sealed just before a rotation still opens); past
    /// [`STATUS_KEYS_HELD_MAX`] contacts, keys of new ones are not kept.
    pub fn receive_key(&self, from: FeedId, key: StatusKey) {
        if self.keys.len() >= STATUS_KEYS_HELD_MAX && !self.keys.contains_key(&from) {
            return;
        }
        let mut held = self.keys.entry(from).or_default();
        if held[0] != Some(key) {
            held[1] = held[0];
            held[0] = Some(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rolodex::RolodexEntry;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    #[test]
    fn a_status_opens_with_the_key_given_before_or_after_it() {
        let (alice, bob) = (Online::new(PresenceVisibility::Follows), Online::default());
        alice.set_status(Some("reading".into()));
        let (sealed, _) = alice.sealed_status(&id(1)).unwrap();
        let meta = PeerMeta {
            since_ms: 5,
            node: "n".into(),
            status: sealed,
        };
        bob.report("sb", id(1), Some(meta));
        assert_eq!(bob.seen(&id(1)).unwrap().status, None, "no key yet");
        bob.receive_key(id(1), alice.key());
        assert_eq!(bob.seen(&id(1)).unwrap().status.as_deref(), Some("reading"));
    }

    #[test]
    fn unfollowing_rotates_the_key_so_the_old_one_no_longer_opens() {
        let alice = Online::new(PresenceVisibility::Follows);
        let rolodex = Rolodex::default();
        let mut bob = RolodexEntry::new(id(2));
        bob.following = true;
        rolodex.cache(bob.clone());
        alice.refresh(&rolodex);
        assert!(alice.allows(&id(2)));
        let old = alice.key();
        bob.following = false;
        rolodex.cache(bob);
        assert!(alice.refresh(&rolodex).rotated);
        assert!(!alice.allows(&id(2)));
        alice.set_status(Some("new".into()));
        let (sealed, epoch) = alice.sealed_status(&id(1)).unwrap();
        assert_ne!(epoch, old.epoch);
        assert_eq!(open(&id(1), &old, &sealed.unwrap()), None);
    }
}
