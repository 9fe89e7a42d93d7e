//! The daemon's switchboard links, by target, for dialers that need an introduction, and what
//! each link last knew of its switchboard, for `kith status`.

use std::sync::Arc;

use dashmap::DashMap;
use ractor::ActorRef;
use serde::Serialize;

use crate::daemon::uplink::link::SbLinkMsg;

/// Live switchboard links. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct Relays {
    links: Arc<DashMap<String, ActorRef<SbLinkMsg>>>,
    views: Arc<DashMap<String, LinkView>>,
    configured: usize,
}

/// One switchboard link as `kith status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LinkView {
    /// The target as configured (`[@ID@]HOST:PORT`).
    pub target: String,
    /// The switchboard's key once pinned (given, or learned on first use).
    pub id: Option<String>,
    /// Where the link is.
    pub state: LinkState,
    /// Since when (ms since the epoch).
    pub since_ms: u64,
    /// This node's address as the switchboard sees it, once joined.
    pub observed: Option<String>,
    /// Why the link is not joined, if it is not.
    pub reason: Option<String>,
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

impl Relays {
    /// A table for `configured` switchboards (known before any link is up).
    pub fn new(configured: usize) -> Self {
        Relays {
            links: Arc::default(),
            views: Arc::default(),
            configured,
        }
    }

    /// How many switchboards this node is configured to use.
    pub fn configured(&self) -> usize {
        self.configured
    }

    /// A link (re)started.
    pub fn register(&self, target: &str, link: ActorRef<SbLinkMsg>) {
        self.links.insert(target.to_string(), link);
    }

    /// A link stopped.
    pub fn unregister(&self, target: &str, link: &ActorRef<SbLinkMsg>) {
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

    /// Every live link.
    pub fn links(&self) -> Vec<ActorRef<SbLinkMsg>> {
        self.links.iter().map(|l| l.value().clone()).collect()
    }
}
