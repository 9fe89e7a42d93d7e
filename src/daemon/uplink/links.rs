//! The daemon's switchboard links, by target, for dialers that need an introduction, what
//! each link last knew of its switchboard, for `kith status`, and the outcome of the last
//! introduction asked for each id ([`Outcome`], for `kith contacts`). The table is generic over the
//! links' message type (`daemon::messages::SbLinkMsg` in the daemon), so that this plumbing
//! imports no actor and no message of one.

use std::sync::Arc;

use dashmap::DashMap;
use ractor::{ActorRef, Message};
use serde::Serialize;

use crate::identity::FeedId;
use crate::limits::INTRO_OUTCOMES_MAX;

/// Live switchboard links, each an actor taking messages `M`. Cheap to clone; clones share the
/// table.
pub struct Relays<M> {
    links: Arc<DashMap<String, ActorRef<M>>>,
    views: Arc<DashMap<String, LinkView>>,
    outcomes: Arc<DashMap<FeedId, Outcome>>,
    configured: usize,
}

impl<M> Clone for Relays<M> {
    fn clone(&self) -> Self {
        Relays {
            links: Arc::clone(&self.links),
            views: Arc::clone(&self.views),
            outcomes: Arc::clone(&self.outcomes),
            configured: self.configured,
        }
    }
}

impl<M> Default for Relays<M> {
    fn default() -> Self {
        Relays {
            links: Arc::default(),
            views: Arc::default(),
            outcomes: Arc::default(),
            configured: 0,
        }
    }
}

/// How the last introduction this node asked for an id ended.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// What the callee (or the switchboard) answered.
    pub answer: OutcomeKind,
    /// The switchboard's sentence, for a refusal.
    pub reason: Option<String>,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// The kinds of [`Outcome`].
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Introduced with addresses: a direct path may be punched.
    Direct,
    /// Introduced through the relay only: neither side learns the other's address.
    RelayOnly,
    /// The callee refused: it does not follow this node.
    Refused,
    /// No switchboard could introduce them (not online, no answer, …).
    Failed,
}

/// One switchboard link as `kith status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LinkView {
    /// The target as configured (`[@ID@]HOST:PORT`).
    pub target: String,
    /// The switchboard's key once pinned (given, or learned on first use); for a cluster, the
    /// key of the member the link is on (or the first key known while it is on none).
    pub id: Option<String>,
    /// The address of the member the link is on (a cluster has several), while connected.
    pub member: Option<String>,
    /// Where the link is.
    pub state: LinkState,
    /// Since when (ms since the epoch).
    pub since_ms: u64,
    /// This node's address as the switchboard sees it, once joined.
    pub observed: Option<String>,
    /// Why the link is not joined, if it is not.
    pub reason: Option<String>,
    /// When the link dials again (ms since the epoch), if it is waiting to.
    pub next_attempt_ms: Option<u64>,
    /// The switchboard refused this node's invite code (or it had none): the link waits for the
    /// user to give a new one.
    pub waiting_for_invite: bool,
}

/// The states of a switchboard link.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Dialling, or waiting to dial again.
    Connecting,
    /// Connected and admitted.
    Joined,
    /// Connected, but the switchboard refused to admit this node.
    Refused,
}

impl<M: Message> Relays<M> {
    /// A table for `configured` switchboards (known before any link is up).
    pub fn new(configured: usize) -> Self {
        Relays {
            links: Arc::default(),
            views: Arc::default(),
            outcomes: Arc::default(),
            configured,
        }
    }

    /// Record how the last introduction to `id` ended (the oldest record goes past
    /// [`INTRO_OUTCOMES_MAX`]).
    pub fn note_outcome(&self, id: FeedId, outcome: Outcome) {
        if self.outcomes.len() >= INTRO_OUTCOMES_MAX && !self.outcomes.contains_key(&id) {
            let oldest = self
                .outcomes
                .iter()
                .min_by_key(|o| o.at_ms)
                .map(|o| *o.key());
            if let Some(oldest) = oldest {
                self.outcomes.remove(&oldest);
            }
        }
        self.outcomes.insert(id, outcome);
    }

    /// How the last introduction to `id` ended, if one was asked.
    pub fn outcome(&self, id: &FeedId) -> Option<Outcome> {
        self.outcomes.get(id).map(|o| o.value().clone())
    }

    /// Forget the link to `target` and what it knew (`kith switchboards forget`).
    pub fn forget(&self, target: &str) {
        self.links.remove(target);
        self.views.remove(target);
    }

    /// How many switchboards this node is configured to use (given at start, or linked since).
    pub fn configured(&self) -> usize {
        self.configured.max(self.links.len())
    }

    /// A link (re)started.
    pub fn register(&self, target: &str, link: ActorRef<M>) {
        self.links.insert(target.to_string(), link);
    }

    /// A link stopped.
    pub fn unregister(&self, target: &str, link: &ActorRef<M>) {
        self.links
            .remove_if(target, |_, l| l.get_id() == link.get_id());
    }

    /// What the link to `view.target` knows now; `since_ms` is kept while the state stays.
    pub fn report(&self, mut view: LinkView) {
        if let Some(old) = self
            .views
            .get(&view.target)
            .filter(|old| old.state == view.state)
        {
            view.since_ms = old.since_ms;
        }
        self.views.insert(view.target.clone(), view);
    }

    /// Every link's view, by target.
    pub fn views(&self) -> Vec<LinkView> {
        let mut out: Vec<LinkView> = self.views.iter().map(|v| v.value().clone()).collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    /// The live link to `target`, if any.
    pub fn link(&self, target: &str) -> Option<ActorRef<M>> {
        self.links.get(target).map(|l| l.value().clone())
    }

    /// Every live link.
    pub fn links(&self) -> Vec<ActorRef<M>> {
        self.links.iter().map(|l| l.value().clone()).collect()
    }
}
