//! Consent: which feeds this node wants, which it may serve to whom, and how it answers a
//! switchboard's introduction.
//!
//! Wants are the own feed and the followed feeds, never a blocked one: no friends of friends.
//! Serving: never to a blocked peer, never a blocked feed; with [`ServePolicy::Follows`] only to
//! peers this node follows. Introductions ([`IntroPolicy`], [`intro_answer`]): a direct path
//! (addresses revealed, hole punching) for ids this node follows, the relay only (neither side
//! learns the other's address) for anyone else it would serve, and a refusal for blocked ids and
//! for ids it would not serve.

use crate::identity::FeedId;
use crate::replicate::{Clock, Local};
use crate::rolodex::Rolodex;
use crate::store::Store;
use crate::wire::switchboard::IntroAnswer;

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

/// How this node answers introductions from ids it does not follow (those it follows always get
/// a direct path; blocked ids are always refused). The setting `introductions` in config.toml,
/// or `kith daemon --introductions`; the default follows the serve policy
/// ([`IntroPolicy::default_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntroPolicy {
    /// Only ids this node follows; everyone else is refused ("they do not follow you").
    Follows,
    /// Ids this node follows directly; anyone else not blocked through the relay only, without
    /// learning this node's address.
    Relay,
    /// Anyone not blocked gets a direct path (this node's address is revealed to them).
    Everyone,
}

impl IntroPolicy {
    /// The default for a serve policy: with [`ServePolicy::Everyone`] a stranger may fetch the
    /// public feed, so it may reach this node through the relay; with [`ServePolicy::Follows`]
    /// there is nothing to give it, so it is refused.
    pub fn default_for(serve: ServePolicy) -> Self {
        match serve {
            ServePolicy::Everyone => IntroPolicy::Relay,
            ServePolicy::Follows => IntroPolicy::Follows,
        }
    }
}

impl std::str::FromStr for IntroPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "follows" => Ok(IntroPolicy::Follows),
            "relay" => Ok(IntroPolicy::Relay),
            "everyone" => Ok(IntroPolicy::Everyone),
            other => Err(format!(
                "`{other}` is not an introductions policy: use `follows`, `relay` or `everyone`"
            )),
        }
    }
}

/// The answer to an introduction from an id this node follows (or not) and has blocked (or
/// not), under `policy`.
pub fn intro_answer(policy: IntroPolicy, following: bool, blocked: bool) -> IntroAnswer {
    match (blocked, following, policy) {
        (true, _, _) => IntroAnswer::Refuse,
        (false, true, _) | (false, false, IntroPolicy::Everyone) => IntroAnswer::Direct,
        (false, false, IntroPolicy::Relay) => IntroAnswer::RelayOnly,
        (false, false, IntroPolicy::Follows) => IntroAnswer::Refuse,
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

#[cfg(test)]
mod tests {
    use super::*;
    use IntroAnswer::{Direct, Refuse, RelayOnly};

    #[test]
    fn followed_ids_go_direct_strangers_by_policy_and_blocked_ids_never() {
        use IntroPolicy::{Everyone, Follows, Relay};
        for policy in [Follows, Relay, Everyone] {
            assert_eq!(intro_answer(policy, true, false), Direct);
            assert_eq!(intro_answer(policy, true, true), Refuse);
            assert_eq!(intro_answer(policy, false, true), Refuse);
        }
        assert_eq!(intro_answer(Follows, false, false), Refuse);
        assert_eq!(intro_answer(Relay, false, false), RelayOnly);
        assert_eq!(intro_answer(Everyone, false, false), Direct);
    }

    #[test]
    fn the_default_follows_the_serve_policy_and_the_setting_parses() {
        assert_eq!(
            IntroPolicy::default_for(ServePolicy::Everyone),
            IntroPolicy::Relay
        );
        assert_eq!(
            IntroPolicy::default_for(ServePolicy::Follows),
            IntroPolicy::Follows
        );
        assert_eq!("relay".parse(), Ok(IntroPolicy::Relay));
        assert_eq!("everyone".parse(), Ok(IntroPolicy::Everyone));
        assert_eq!("follows".parse(), Ok(IntroPolicy::Follows));
        assert!("all".parse::<IntroPolicy>().is_err());
    }
}
