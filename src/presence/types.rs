//! The vocabulary of presence: replica names and incarnations, dots, rows, presences and diffs.
//!
//! A *replica* is one incarnation of one shard on one node: `(name, vsn)`. The name is the node id
//! and stays the same across restarts; the `vsn` is fresh on every start, which is how a restart is
//! told apart from a reconnect. A *dot* `(replica, n)` names the n-th event of a replica; every row
//! of the CRDT carries exactly one dot.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds on the caller's monotonic clock. The sans-IO core never reads a clock itself.
pub type Millis = u64;

/// The opaque, application-defined metadata of a presence (for example a postcard-encoded struct).
pub type Meta = Vec<u8>;

/// The name of a node (its id); shared by every incarnation of that node. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaName(Arc<str>);

impl ReplicaName {
    /// Makes a name from any string.
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ReplicaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ReplicaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ReplicaName {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl Serialize for ReplicaName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReplicaName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::new(&s))
    }
}

/// One incarnation of a replica: its name plus a version that is fresh on every start.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplicaRef {
    /// The node name, stable across restarts.
    pub name: ReplicaName,
    /// The incarnation; a larger vsn is a later start.
    pub vsn: u64,
}

impl ReplicaRef {
    /// Makes a reference from a name and an incarnation.
    pub fn new(name: &str, vsn: u64) -> Self {
        Self {
            name: ReplicaName::new(name),
            vsn,
        }
    }
}

impl fmt::Debug for ReplicaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.vsn)
    }
}

/// A dot: the `clock`-th event of `replica`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that made the event.
    pub replica: ReplicaRef,
    /// Its position in that replica's event sequence, from 1.
    pub clock: u64,
}

/// The actor or session holding a presence (Phoenix's `pid`). Local to its replica: two replicas
/// may use the same number for different owners, so rows are told apart by `(replica, owner)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Owner(pub u64);

/// The payload of one CRDT row, as stored and as sent on the wire (the dot travels beside it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The topic the presence is in (for example a room).
    pub topic: String,
    /// The key inside the topic (for example a user id).
    pub key: String,
    /// Who holds it.
    pub owner: Owner,
    /// Application metadata.
    pub meta: Meta,
}

/// A row shared between the CRDT, the diffs and the read views: cloning it is a reference
/// count, not three string copies. On the wire it is a plain [`Row`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SharedRow(Arc<Row>);

impl std::ops::Deref for SharedRow {
    type Target = Row;
    fn deref(&self) -> &Row {
        &self.0
    }
}

impl SharedRow {
    /// How many holders share this row (tests check that a replaced version is let go).
    #[cfg(test)]
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl From<Row> for SharedRow {
    fn from(row: Row) -> Self {
        Self(Arc::new(row))
    }
}

impl Serialize for SharedRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Row::deserialize(d).map(Self::from)
    }
}

/// A presence as seen by readers and diff subscribers.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Presence {
    /// The row.
    pub row: SharedRow,
    /// The dot of this version of the row: it plays the part of Phoenix's `phx_ref`.
    pub dot: Dot,
}

impl Presence {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.row.topic
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.row.key
    }
}

/// What changed in the visible set: exactly one join per admitted row and one leave per removed
/// row. An update is one diff holding both the leave of the old version and the join of the new.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Diff {
    /// Presences that became visible.
    pub joins: Vec<Presence>,
    /// Presences that stopped being visible.
    pub leaves: Vec<Presence>,
}

impl Diff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// Appends another diff.
    pub fn extend(&mut self, other: Diff) {
        self.joins.extend(other.joins);
        self.leaves.extend(other.leaves);
    }
}
