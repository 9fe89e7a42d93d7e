//! Whom this node's presence is shown to (`presence_visible_to`), as a sans-IO core: the
//! allow-list a daemon gives its switchboards, and the content key its status line is sealed
//! with, rotated whenever someone loses the view.
//!
//! Why a core of its own: the decision (who is in, when the key must change) is the privacy
//! promise of issue 19, so it is a pure function of the rolodex, the followers known and a fresh
//! key handed in, tested without a network. The driver ([`crate::daemon::uplink::Online`]) holds
//! it under a lock; the switchboard links and peer connections read it.
//!
//! - `follows` (the default): the ids this node follows (never a blocked one).
//! - `followers`: the ids known to follow this node (they asked it for its feed), never a
//!   blocked one.
//! - `everyone`: no list; the status key goes to every peer that connects (not blocked).
//!
//! The list is bounded ([`PRESENCE_VISIBLE_IDS_MAX`]): past it the first ids in id order are
//! sent and [`Refresh::left_out`] says how many were not. The key rotates when an id leaves the
//! list (or, with `everyone`, when an id is blocked), so whoever lost the view cannot open a
//! status sealed after that; the new key is given to those still allowed.

use std::collections::BTreeSet;

use crate::identity::FeedId;
use crate::limits::{FOLLOWERS_KNOWN_MAX, PRESENCE_VISIBLE_IDS_MAX};

/// Who may see this node's presence (the `presence_visible_to` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PresenceVisibility {
    /// The ids this node follows (the default: the people you chose).
    #[default]
    Follows,
    /// The ids known to follow this node.
    Followers,
    /// Anyone who is not blocked.
    Everyone,
}

impl std::str::FromStr for PresenceVisibility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "follows" => Ok(PresenceVisibility::Follows),
            "followers" => Ok(PresenceVisibility::Followers),
            "everyone" => Ok(PresenceVisibility::Everyone),
            other => Err(format!(
                "`{other}` is not a presence visibility: use `follows`, `followers` or `everyone`"
            )),
        }
    }
}

/// A content key a status line is sealed with, named by its epoch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StatusKey {
    /// Which key (grows with each rotation; a restart starts from the clock).
    pub epoch: u64,
    /// The key.
    pub key: [u8; 32],
}

impl std::fmt::Debug for StatusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatusKey(epoch {})", self.epoch)
    }
}

/// What a refresh changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Refresh {
    /// The allow-list changed: tell the switchboards.
    pub changed: bool,
    /// The key rotated: seal the status again, give the new key to those allowed.
    pub rotated: bool,
    /// Allowed ids left off the list past its bound.
    pub left_out: usize,
}

/// The audience core. See the module doc.
#[derive(Clone, Debug)]
pub struct Audience {
    mode: PresenceVisibility,
    /// Ids known to follow this node (bounded).
    followers: BTreeSet<FeedId>,
    /// The current allow-list (`None`: everyone). Nobody until the first refresh.
    allowed: Option<BTreeSet<FeedId>>,
    /// With `everyone`: the blocked ids at the last refresh.
    blocked: BTreeSet<FeedId>,
    key: StatusKey,
}

impl Audience {
    /// A core for `mode`, with its first key.
    pub fn new(mode: PresenceVisibility, first: StatusKey) -> Self {
        Audience {
            mode,
            followers: BTreeSet::new(),
            allowed: Some(BTreeSet::new()),
            blocked: BTreeSet::new(),
            key: first,
        }
    }

    /// The setting.
    pub fn mode(&self) -> PresenceVisibility {
        self.mode
    }

    /// The key the status line is sealed with now.
    pub fn key(&self) -> StatusKey {
        self.key
    }

    /// The allow-list to give a switchboard (`None`: everyone).
    pub fn list(&self) -> Option<Vec<FeedId>> {
        self.allowed
            .as_ref()
            .map(|ids| ids.iter().copied().collect())
    }

    /// Whether `id` may see this node's presence and status (and so be given the key).
    pub fn allows(&self, id: &FeedId) -> bool {
        match &self.allowed {
            None => !self.blocked.contains(id),
            Some(ids) => ids.contains(id),
        }
    }

    /// `id` asked this node for its feed (`follows`), or stopped asking. True if the set of
    /// known followers changed. Past [`FOLLOWERS_KNOWN_MAX`] new followers are not recorded.
    pub fn note_follower(&mut self, id: FeedId, follows: bool) -> bool {
        match follows {
            true if self.followers.len() >= FOLLOWERS_KNOWN_MAX => false,
            true => self.followers.insert(id),
            false => self.followers.remove(&id),
        }
    }

    /// Recompute the allow-list from the ids this node follows and blocks; `fresh` (with
    /// `epoch` above the current one) becomes the key if anyone lost the view.
    pub fn refresh(
        &mut self,
        following: &[FeedId],
        blocked: &[FeedId],
        fresh: [u8; 32],
    ) -> Refresh {
        let blocked: BTreeSet<FeedId> = blocked.iter().copied().collect();
        let mut refresh = Refresh::default();
        let allowed = match self.mode {
            PresenceVisibility::Everyone => None,
            PresenceVisibility::Follows => Some(self.bounded(
                following.iter().filter(|id| !blocked.contains(id)),
                &mut refresh,
            )),
            PresenceVisibility::Followers => {
                let followers = self.followers.clone();
                Some(self.bounded(
                    followers.iter().filter(|id| !blocked.contains(id)),
                    &mut refresh,
                ))
            }
        };
        let lost = match (&self.allowed, &allowed) {
            (Some(old), Some(new)) => !old.is_subset(new),
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => !blocked.is_subset(&self.blocked),
        };
        refresh.changed = allowed != self.allowed;
        if lost {
            self.key = StatusKey {
                epoch: self.key.epoch.wrapping_add(1),
                key: fresh,
            };
            refresh.rotated = true;
        }
        self.allowed = allowed;
        self.blocked = blocked;
        refresh
    }

    fn bounded<'a>(
        &self,
        ids: impl Iterator<Item = &'a FeedId>,
        refresh: &mut Refresh,
    ) -> BTreeSet<FeedId> {
        let all: BTreeSet<FeedId> = ids.copied().collect();
        refresh.left_out = all.len().saturating_sub(PRESENCE_VISIBLE_IDS_MAX);
        all.into_iter().take(PRESENCE_VISIBLE_IDS_MAX).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    fn key(epoch: u64) -> StatusKey {
        StatusKey {
            epoch,
            key: [epoch as u8; 32],
        }
    }

    #[test]
    fn nobody_sees_until_the_first_refresh_then_the_follows_do() {
        let mut a = Audience::new(PresenceVisibility::Follows, key(10));
        assert_eq!(a.list(), Some(vec![]));
        assert!(!a.allows(&id(1)));
        let r = a.refresh(&[id(1), id(2)], &[], [9; 32]);
        assert!(r.changed && !r.rotated, "a grant needs no new key: {r:?}");
        assert_eq!(a.list(), Some(vec![id(1), id(2)]));
        assert!(a.allows(&id(1)) && !a.allows(&id(3)));
        assert_eq!(a.key(), key(10));
        assert_eq!(a.refresh(&[id(2), id(1)], &[], [9; 32]), Refresh::default());
    }

    #[test]
    fn losing_someone_rotates_the_key_and_a_block_removes_a_follow() {
        let mut a = Audience::new(PresenceVisibility::Follows, key(10));
        a.refresh(&[id(1), id(2)], &[], [9; 32]);
        let r = a.refresh(&[id(1)], &[], [7; 32]);
        assert!(r.changed && r.rotated);
        assert_eq!(a.key().epoch, 11);
        assert_eq!(a.key().key, [7; 32]);
        assert!(!a.allows(&id(2)));
        // Blocked while still followed (the rolodex never lists such an id, but the core does
        // not rely on it).
        let r = a.refresh(&[id(1)], &[id(1)], [5; 32]);
        assert!(r.rotated && !a.allows(&id(1)));
        assert_eq!(a.list(), Some(vec![]));
    }

    #[test]
    fn followers_are_those_who_asked_for_the_feed() {
        let mut a = Audience::new(PresenceVisibility::Followers, key(1));
        assert!(a.note_follower(id(3), true));
        assert!(!a.note_follower(id(3), true));
        a.refresh(&[id(1)], &[], [2; 32]);
        assert_eq!(
            a.list(),
            Some(vec![id(3)]),
            "follows do not count, followers do"
        );
        assert!(a.note_follower(id(3), false));
        let r = a.refresh(&[id(1)], &[], [2; 32]);
        assert!(r.rotated && !a.allows(&id(3)));
    }

    #[test]
    fn everyone_has_no_list_and_a_block_rotates() {
        let mut a = Audience::new(PresenceVisibility::Everyone, key(1));
        let r = a.refresh(&[], &[], [2; 32]);
        assert!(r.changed && !r.rotated);
        assert_eq!(a.list(), None);
        assert!(a.allows(&id(8)));
        let r = a.refresh(&[], &[id(8)], [3; 32]);
        assert!(!r.changed && r.rotated);
        assert!(!a.allows(&id(8)) && a.allows(&id(9)));
        assert!(
            !a.refresh(&[], &[], [4; 32]).rotated,
            "an unblock loses nobody"
        );
    }

    #[test]
    fn the_list_is_bounded_and_says_how_many_were_left_out() {
        let mut a = Audience::new(PresenceVisibility::Follows, key(1));
        let many: Vec<FeedId> = (0..PRESENCE_VISIBLE_IDS_MAX + 3)
            .map(|n| {
                let mut b = [0u8; 32];
                b[..8].copy_from_slice(&(n as u64).to_be_bytes());
                FeedId(b)
            })
            .collect();
        let r = a.refresh(&many, &[], [2; 32]);
        assert_eq!(r.left_out, 3);
        assert_eq!(a.list().map(|l| l.len()), Some(PRESENCE_VISIBLE_IDS_MAX));
    }

    #[test]
    fn the_setting_parses_and_defaults_to_follows() {
        assert_eq!(PresenceVisibility::default(), PresenceVisibility::Follows);
        assert_eq!("followers".parse(), Ok(PresenceVisibility::Followers));
        assert_eq!("everyone".parse(), Ok(PresenceVisibility::Everyone));
        assert!("friends".parse::<PresenceVisibility>().is_err());
    }
}
