//! Who may be a node of this switchboard's cluster: an explicit set of node keys.
//!
//! A connection whose hello claims the switchboard role is a cluster node: it exchanges
//! presence (every online user and their status line) and relays for its clients. So the role is
//! granted only to keys the operator listed: the ids pinned by `--join @ID@HOST:PORT`, each
//! `--cluster-key @ID`, and the lines of a `--cluster-keys FILE`, plus a `--join HOST:PORT`
//! node's key once its link has pinned it on first use. Anyone else who claims the role is
//! refused in the hello with [`CloseCode::NotAClusterMember`](crate::net::CloseCode) and
//! counted; clients (the daemon role) go through `Join` and the invite policy instead.
//!
//! The set is small and read once per accepted connection, so a lock around a `BTreeSet` is
//! enough; it only grows while the process runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::identity::FeedId;
use crate::limits::CLUSTER_MEMBERS_MAX;

/// Why a member list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    /// The file could not be read.
    #[error("cluster keys file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a node id.
    #[error("cluster keys file {path}, line {line}: '{text}' is not a node id (@….ed25519)")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What the line says.
        text: String,
    },
    /// More keys than the bound.
    #[error("a cluster has at most {CLUSTER_MEMBERS_MAX} nodes")]
    TooMany,
}

/// The keys allowed to act as nodes of this cluster. Cheap to clone; clones share the set.
#[derive(Clone, Debug, Default)]
pub struct Members {
    keys: Arc<RwLock<BTreeSet<FeedId>>>,
}

impl Members {
    /// A set of `keys` (at most [`CLUSTER_MEMBERS_MAX`]).
    pub fn new(keys: impl IntoIterator<Item = FeedId>) -> Result<Members, MembersError> {
        let keys: BTreeSet<FeedId> = keys.into_iter().collect();
        if keys.len() > CLUSTER_MEMBERS_MAX {
            return Err(MembersError::TooMany);
        }
        Ok(Members {
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    /// Whether `id` may act as a node of this cluster.
    pub fn contains(&self, id: &FeedId) -> bool {
        self.read().contains(id)
    }

    /// Admit `id` as a node (a `--join` target's key pinned on first use); false if the set is
    /// full.
    pub fn add(&self, id: FeedId) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= CLUSTER_MEMBERS_MAX && !keys.contains(&id) {
            return false;
        }
        keys.insert(id);
        true
    }

    /// The member keys, sorted.
    pub fn list(&self) -> Vec<FeedId> {
        self.read().iter().copied().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<FeedId>> {
        // Inserting one key cannot leave the set half-changed, so a poisoned lock is consistent.
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The node ids in a `--cluster-keys` file: one `@….ed25519` per line; blank lines and lines
/// starting with `#` are skipped.
pub fn read_keys_file(path: &Path) -> Result<Vec<FeedId>, MembersError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| MembersError::Read {
        path: name.clone(),
        source,
    })?;
    parse_keys(&name, &text)
}

fn parse_keys(name: &str, text: &str) -> Result<Vec<FeedId>, MembersError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = line.parse::<FeedId>().map_err(|_| MembersError::BadLine {
            path: name.to_string(),
            line: i + 1,
            text: line.chars().take(80).collect(),
        })?;
        if keys.len() >= CLUSTER_MEMBERS_MAX {
            return Err(MembersError::TooMany);
        }
        keys.push(id);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> FeedId {
        crate::identity::Identity::from_seed([n; 32]).id()
    }

    #[test]
    fn only_listed_keys_are_members_and_the_set_is_bounded() {
        let members = Members::new([id(1), id(2)]).unwrap();
        assert!(members.contains(&id(1)));
        assert!(!members.contains(&id(3)));
        assert!(members.add(id(3)));
        assert!(members.contains(&id(3)));
        let many = (0..=CLUSTER_MEMBERS_MAX).map(|n| id((n % 250) as u8 + 1));
        assert!(Members::new(many).is_ok(), "duplicates count once");
    }

    #[test]
    fn the_keys_file_skips_comments_and_names_a_bad_line() {
        let text = format!("# nodes\n\n{}\n  {}  \n", id(1), id(2));
        assert_eq!(parse_keys("f", &text).unwrap(), vec![id(1), id(2)]);
        let err = parse_keys("f", &format!("{}\nnot-a-key\n", id(1))).unwrap_err();
        assert!(
            matches!(err, MembersError::BadLine { line: 2, .. }),
            "{err}"
        );
    }
}
