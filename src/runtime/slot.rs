//! A slot holding the current `ActorRef` of a restartable actor.
//!
//! When a supervisor restarts an actor, the new incarnation has a new `ActorRef`. Callers hold
//! the slot, not the ref; the actor puts itself in the slot in `pre_start`. This replaces global
//! registry names, which would collide when one process runs many nodes (the load-test harness).

use std::sync::{Arc, RwLock};

use ractor::{ActorRef, Message};

/// The current reference to an actor, updated on every (re)start.
pub struct Slot<M: Message> {
    current: Arc<RwLock<Option<ActorRef<M>>>>,
}

impl<M: Message> Clone for Slot<M> {
    fn clone(&self) -> Self {
        Slot {
            current: Arc::clone(&self.current),
        }
    }
}

impl<M: Message> Default for Slot<M> {
    fn default() -> Self {
        Slot {
            current: Arc::new(RwLock::new(None)),
        }
    }
}

impl<M: Message> Slot<M> {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Put the running actor's reference in the slot.
    pub fn set(&self, actor: ActorRef<M>) {
        // A poisoned lock only means a writer panicked mid-assignment of an Option: the value is
        // still a valid Option, so recover it rather than propagate the panic.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(actor);
    }

    /// The current reference, if the actor has started at least once.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
