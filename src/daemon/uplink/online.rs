//! Who this daemon's switchboards say is online, and this node's own status line.
//!
//! A cache of what the switchboards reported, read by `kith contacts` without messaging any
//! actor. It is not persisted: presence is only ever about now.

use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use crate::identity::FeedId;
use crate::wire::switchboard::PeerMeta;

/// Online peers as reported by switchboards, keyed by peer, then by switchboard.
#[derive(Clone, Default)]
pub struct Online {
    map: Arc<DashMap<FeedId, Vec<(String, PeerMeta)>>>,
    status: Arc<RwLock<Option<String>>>,
}

impl Online {
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

    /// Whether `id` is online, and its status line (from the most recent report).
    pub fn get(&self, id: &FeedId) -> Option<PeerMeta> {
        self.map
            .get(id)
            .and_then(|v| v.iter().map(|(_, m)| m.clone()).max_by_key(|m| m.since_ms))
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
}
