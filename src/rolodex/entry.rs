//! One rolodex entry: everything this node knows about one user.

use serde::{Deserialize, Serialize};

use crate::identity::FeedId;
use crate::limits::{ADDRESS_HINTS_MAX, NAME_BYTES_MAX};

/// What we know about one user. Stored in LMDB as postcard; cached in the rolodex table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolodexEntry {
    /// Their id.
    pub id: FeedId,
    /// A local name this user gave them (never published).
    pub petname: Option<String>,
    /// The name they gave themselves in an about entry.
    pub name: Option<String>,
    /// Where they may be dialled directly (`host:port`), newest first.
    pub addrs: Vec<String>,
    /// Switchboards they are known to use.
    pub switchboards: Vec<String>,
    /// Whether we replicate them.
    pub following: bool,
    /// Whether we refuse them everything. Local only, never published.
    pub blocked: bool,
    /// When we last had a connection with them (ms since the epoch).
    pub last_seen_ms: Option<u64>,
    /// Latest sequence of their feed held in our store.
    pub latest_seq: u64,
}

impl RolodexEntry {
    /// A fresh entry for `id`, neither followed nor blocked.
    pub fn new(id: FeedId) -> Self {
        RolodexEntry {
            id,
            petname: None,
            name: None,
            addrs: Vec::new(),
            switchboards: Vec::new(),
            following: false,
            blocked: false,
            last_seen_ms: None,
            latest_seq: 0,
        }
    }

    /// Remember an address hint, newest first, keeping at most [`ADDRESS_HINTS_MAX`].
    pub fn add_address(&mut self, addr: &str) {
        self.addrs.retain(|a| a != addr);
        self.addrs.insert(0, addr.to_string());
        self.addrs.truncate(ADDRESS_HINTS_MAX);
    }

    /// Set the name from an about entry, bounded.
    pub fn set_name(&mut self, name: &str) {
        let mut end = name.len().min(NAME_BYTES_MAX);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        self.name = Some(name[..end].to_string());
    }

    /// Whether this entry carries nothing worth keeping (it may be forgotten).
    pub fn is_empty(&self) -> bool {
        !self.following && !self.blocked && self.petname.is_none() && self.latest_seq == 0
    }
}
