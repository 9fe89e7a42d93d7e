//! The replication messages, as they travel in frames after the hello.

use serde::{Deserialize, Serialize};

use crate::feed::Entry;
use crate::identity::FeedId;

/// One feed in a clock: the sender holds `seq` of it; `want: false` withdraws an earlier want.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The feed.
    pub feed: FeedId,
    /// Latest sequence the sender holds (0: none).
    pub seq: u64,
    /// Whether the sender wants this feed.
    pub want: bool,
}

/// An entry on the wire, with its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// The exact signed bytes.
    pub entry: Entry,
    /// The payload, unless its author deleted it.
    pub payload: Option<Vec<u8>>,
    /// Without a payload: the author's delete entry that covers it (without one the entry is
    /// refused, so a relaying node cannot strip payloads).
    pub tombstone: Option<crate::feed::deletion::Tombstone>,
}

/// A replication message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// The sender's wants: all of them (`full`) or those changed since it last told this peer.
    Clock {
        /// Whether the receiver should forget its view of the sender's clock first.
        full: bool,
        /// The notes.
        notes: Vec<Note>,
        /// BLAKE3 of the sender's whole clock, to detect a stale view.
        digest: [u8; 32],
    },
    /// "My view of your clock is stale: send it all."
    ResendFull,
    /// Consecutive entries of one feed, in order.
    Entries {
        /// The feed.
        feed: FeedId,
        /// The entries.
        entries: Vec<WireEntry>,
    },
    /// The content key the sender's status line is sealed with, given only to the peers it
    /// lets see its presence, over this end-to-end connection and never through a switchboard
    /// (`daemon::uplink::seal`). Not replication: the daemon's connection takes it, the session
    /// ignores it.
    StatusKey {
        /// Which key.
        epoch: u64,
        /// The key.
        key: [u8; 32],
    },
}
