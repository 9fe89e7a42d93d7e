//! The daemon's switchboard links, by target, for dialers that need an introduction.

use std::sync::Arc;

use dashmap::DashMap;
use ractor::ActorRef;

use crate::actors::sb_link::SbLinkMsg;

/// Live switchboard links. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct Relays {
    links: Arc<DashMap<String, ActorRef<SbLinkMsg>>>,
    configured: usize,
}

impl Relays {
    /// A table for `configured` switchboards (known before any link is up).
    pub fn new(configured: usize) -> Self {
        Relays { links: Arc::default(), configured }
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
        self.links.remove_if(target, |_, l| l.get_id() == link.get_id());
    }

    /// Every live link.
    pub fn links(&self) -> Vec<ActorRef<SbLinkMsg>> {
        self.links.iter().map(|l| l.value().clone()).collect()
    }
}
