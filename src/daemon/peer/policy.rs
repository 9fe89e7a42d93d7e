//! Consent: which feeds this node wants, and which it may serve to whom.
//!
//! Wants are the own feed and the followed feeds, never a blocked one: no friends of friends.
//! Serving: never to a blocked peer, never a blocked feed; with [`ServePolicy::Follows`] only to
//! peers this node follows.

use crate::identity::FeedId;
use crate::replicate::{Clock, Local};
use crate::rolodex::Rolodex;
use crate::store::Store;

/// Whom this node serves feeds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServePolicy {
    /// Anyone who is not blocked (the default).
    #[default]
    Everyone,
    /// Only ids this node follows.
    Follows,
}

impl std::str::FromStr for ServePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "everyone" => Ok(ServePolicy::Everyone),
            "follows" => Ok(ServePolicy::Follows),
            other => Err(format!(
                "`{other}` is not a serve policy: use `everyone` or `follows`"
            )),
        }
    }
}

/// This node's clock: the own feed (`me`) and every followed feed, with the latest sequence
/// held in `store`.
pub fn wants(me: FeedId, store: &Store, rolodex: &Rolodex) -> Clock {
    let heads = store.read().and_then(|r| r.heads()).unwrap_or_default();
    let held = |feed: &FeedId| {
        heads
            .iter()
            .find(|(f, _)| f == feed)
            .map_or(0, |(_, h)| h.seq)
    };
    let mut clock: Clock = rolodex
        .following()
        .into_iter()
        .map(|f| (f, held(&f)))
        .collect();
    clock.insert(me, held(&me));
    clock
}

/// The node as one replication session with `peer` sees it.
pub struct LocalView<'a> {
    /// The node's store.
    pub store: &'a Store,
    /// The node's rolodex.
    pub rolodex: &'a Rolodex,
    /// The peer.
    pub peer: FeedId,
    /// The serve policy.
    pub serve: ServePolicy,
}

impl Local for LocalView<'_> {
    fn seq(&self, feed: &FeedId) -> u64 {
        self.store
            .read()
            .and_then(|r| r.head(feed))
            .ok()
            .flatten()
            .map_or(0, |h| h.seq)
    }

    fn may_serve(&self, feed: &FeedId) -> bool {
        let rolodex = self.rolodex;
        if rolodex.is_blocked(&self.peer) || rolodex.is_blocked(feed) {
            return false;
        }
        match self.serve {
            ServePolicy::Everyone => true,
            ServePolicy::Follows => rolodex.is_following(&self.peer),
        }
    }
}
