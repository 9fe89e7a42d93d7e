//! Node events: what one part of the node tells every interested actor, on a bounded broadcast.
//!
//! The store writer announces appended entries (so that peer connections push them live), the
//! rolodex announces changed wants and blocks, connections announce themselves. Receivers that
//! fall behind get `Lagged` and resynchronise from the store, which is the truth.

use crate::identity::FeedId;

/// Capacity of the event broadcast; a receiver further behind than this resynchronises.
pub use crate::limits::EVENTS_CAPACITY;

/// Something happened in the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The store now holds `feed` up to `seq`.
    Appended {
        /// The feed.
        feed: FeedId,
        /// Its new latest sequence.
        seq: u64,
    },
    /// The set of wanted feeds changed (follow, unfollow, block, unblock).
    WantsChanged,
    /// A switchboard says this id just came online (a dialer may try it now).
    Online(FeedId),
    /// This node's status line changed.
    StatusChanged,
    /// This id was just blocked: drop any connection with it.
    Blocked(FeedId),
    /// A connection with this peer is up.
    Connected(FeedId),
    /// The connection with this peer ended.
    Disconnected(FeedId),
    /// Who may see this node's presence may have changed otherwise than by a follow or block
    /// (a peer started or stopped asking for its feed): links and connections refresh it.
    AudienceChanged,
}

/// The sending side of the node's event broadcast.
pub type Events = tokio::sync::broadcast::Sender<NodeEvent>;

/// A fresh broadcast.
pub fn channel() -> Events {
    tokio::sync::broadcast::channel(EVENTS_CAPACITY).0
}
