//! Liveness bookkeeping for remote replicas: up, down, permdown, and incarnations.
//!
//! One entry per replica *name* (node), holding its current incarnation. A heartbeat from a new
//! incarnation retires the old one; a heartbeat from an older incarnation than the one we know
//! is ignored, so a delayed message cannot resurrect a retired incarnation. After permdown the
//! entry becomes a tombstone remembering only the retired vsn (and whether it left gracefully),
//! and is dropped after a further permdown period; so bookkeeping never grows with the number of
//! restarts (Phoenix #179).
//! Time is passed in; nothing here reads a clock.

use std::collections::BTreeMap;

use super::types::{Millis, ReplicaName, ReplicaRef};

/// Liveness of a remote replica.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplicaStatus {
    /// Heard from within the down period.
    Up,
    /// Silent for longer than the down period: its presences are hidden.
    Down,
    /// Retired: its presences were erased. Kept only as a tombstone of the vsn.
    Permdown,
}

/// What we know of one remote replica name.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Replica {
    /// The current (or last) incarnation.
    pub r#ref: ReplicaRef,
    /// When we last heard a heartbeat from it.
    pub last_heartbeat_at: Millis,
    /// Its liveness.
    pub status: ReplicaStatus,
    /// True when it was retired by its own shutdown announcement: then even its own vsn is
    /// refused afterwards (a heartbeat overtaken by the announcement must not resurrect it).
    /// A replica retired by silence may come back with the same vsn (a long partition).
    pub graceful: bool,
}

/// A liveness transition the shard must apply to its state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Transition {
    /// Make the incarnation visible (first contact, or back from down).
    Up(ReplicaRef),
    /// Hide the incarnation.
    Down(ReplicaRef),
    /// Erase the incarnation.
    Permdown(ReplicaRef),
}

/// Outcome of recording a heartbeat.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Heartbeat {
    /// The entry before (None if the name was unknown or only a tombstone).
    pub prev: Option<Replica>,
    /// Transitions to apply, in order.
    pub transitions: Vec<Transition>,
    /// True when this incarnation was never seen before: time to ask it for a transfer.
    pub first_contact: bool,
}

/// The table of remote replicas, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replicas {
    map: BTreeMap<ReplicaName, Replica>,
}

impl Replicas {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of a name, tombstones included.
    pub fn get(&self, name: &ReplicaName) -> Option<&Replica> {
        self.map.get(name)
    }

    /// Entries that are up or down (tombstones left out).
    pub fn live(&self) -> impl Iterator<Item = &Replica> {
        self.map
            .values()
            .filter(|r| r.status != ReplicaStatus::Permdown)
    }

    /// Number of entries, tombstones included (the bookkeeping size).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True when messages from this incarnation must be ignored: an older vsn than the known
    /// one, or a retired one.
    pub fn is_stale(&self, r: &ReplicaRef) -> bool {
        self.map.get(&r.name).is_some_and(|known| {
            r.vsn < known.r#ref.vsn
                || (r.vsn == known.r#ref.vsn
                    && known.status == ReplicaStatus::Permdown
                    && known.graceful)
        })
    }

    /// Records a heartbeat (or first contact) from `r` at `now` and says what changes.
    /// Stale incarnations must be filtered with [`Replicas::is_stale`] first.
    pub fn put_heartbeat(&mut self, r: &ReplicaRef, now: Millis) -> Heartbeat {
        let new = Replica {
            r#ref: r.clone(),
            last_heartbeat_at: now,
            status: ReplicaStatus::Up,
            graceful: false,
        };
        let prev = self
            .map
            .insert(r.name.clone(), new)
            .filter(|p| p.status != ReplicaStatus::Permdown);
        let mut transitions = Vec::new();
        let mut first_contact = false;
        match &prev {
            None => {
                transitions.push(Transition::Up(r.clone()));
                first_contact = true;
            }
            Some(p) if p.r#ref == *r => {
                if p.status == ReplicaStatus::Down {
                    transitions.push(Transition::Up(r.clone()));
                }
            }
            Some(p) => {
                if p.status == ReplicaStatus::Up {
                    transitions.push(Transition::Down(p.r#ref.clone()));
                }
                transitions.push(Transition::Permdown(p.r#ref.clone()));
                transitions.push(Transition::Up(r.clone()));
                first_contact = true;
            }
        }
        Heartbeat {
            prev,
            transitions,
            first_contact,
        }
    }

    /// Retires `r` at once (graceful shutdown announcement). Returns the transitions.
    pub fn permdown_now(&mut self, r: &ReplicaRef, now: Millis) -> Vec<Transition> {
        let Some(known) = self.map.get_mut(&r.name) else {
            return Vec::new();
        };
        if known.r#ref != *r || known.status == ReplicaStatus::Permdown {
            return Vec::new();
        }
        let mut out = Vec::new();
        if known.status == ReplicaStatus::Up {
            out.push(Transition::Down(r.clone()));
        }
        out.push(Transition::Permdown(r.clone()));
        known.status = ReplicaStatus::Permdown;
        known.graceful = true;
        known.last_heartbeat_at = now;
        out
    }

    /// Ages every entry: up → down after `down_period` of silence, → permdown after
    /// `permdown_period`; tombstones are dropped `permdown_period` after retirement.
    pub fn detect_downs(
        &mut self,
        down_period: Millis,
        permdown_period: Millis,
        now: Millis,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        self.map.retain(|_, r| {
            let age = now.saturating_sub(r.last_heartbeat_at);
            match r.status {
                ReplicaStatus::Permdown => return age <= permdown_period,
                _ if age > permdown_period => {
                    if r.status == ReplicaStatus::Up {
                        out.push(Transition::Down(r.r#ref.clone()));
                    }
                    out.push(Transition::Permdown(r.r#ref.clone()));
                    r.status = ReplicaStatus::Permdown;
                    r.last_heartbeat_at = now;
                }
                ReplicaStatus::Up if age > down_period => {
                    out.push(Transition::Down(r.r#ref.clone()));
                    r.status = ReplicaStatus::Down;
                }
                _ => {}
            }
            true
        });
        out
    }
}
