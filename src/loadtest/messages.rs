//! The messages a simulated peer takes, below both the peer actor and the harness context that
//! holds the peers' refs, so imports only run downward.

use crate::identity::FeedId;
use crate::wire::switchboard::ServerMsg;

/// Messages to a simulated peer.
#[derive(Debug)]
pub enum PeerMsg {
    /// Connect (or reconnect) and join.
    Connect,
    /// A message from the switchboard on connection `generation`.
    Frame(u64, ServerMsg),
    /// Connection `generation`'s control stream ended, with why.
    Closed(u64, String),
    /// Set a fresh status line (the churn).
    ChangeStatus,
    /// Leave (close the connection) and rejoin after [`LOADTEST_AWAY`](crate::limits::LOADTEST_AWAY) (the churn).
    Leave,
    /// Ask the switchboard for an introduction to this peer (one the plan says to reach).
    Introduce(FeedId),
    /// Introduction number `.1` to `.0` may have gone unanswered: ask again if it is still
    /// pending.
    IntroTimeout(FeedId, u32),
    /// Post to the own feed (the replicate scenario).
    Post,
}
