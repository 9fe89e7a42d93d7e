//! The messages of the daemon's worker actors that other files send or hold references for.
//!
//! The node handle and the store writer's API send to the store writer and the rolodex actor, the
//! replicators registry and the switchboard links table hold references to feed replicators and
//! links, and dialers ask links for introductions. Keeping the message types here, below both
//! the actors and that plumbing, lets imports run one way: plumbing and handles import this
//! file, actors import the plumbing, and nothing below imports an actor.

use std::net::SocketAddr;
use std::sync::Arc;

use ractor::RpcReplyPort;

use crate::daemon::error::{IntroError, NodeError};
use crate::daemon::events::NodeEvent;
use crate::feed::FeedError;
use crate::identity::FeedId;
use crate::ingest::{IngestError, Op, OpOutcome};
use crate::net::PeerEndpoint;
use crate::replicate::WireEntry;
use crate::rolodex::{RolodexChange, RolodexEntry};
use crate::wire::switchboard::ServerMsg;

/// The answer to one submission: an outcome per op, or a failure of the whole batch.
pub type IngestReply = Result<Vec<Result<OpOutcome, FeedError>>, IngestError>;

/// Messages to the store writer ([`crate::daemon::store_writer`]).
pub enum StoreWriterMsg {
    /// Write these ops; reply once they are durable.
    Submit(Vec<Op>, RpcReplyPort<IngestReply>),
    /// Write everything pending now.
    Flush,
    /// The committer failed a batch: crash so that the supervisor restarts the writer.
    CommitFailed(String),
}

/// Messages to the rolodex actor ([`crate::daemon::rolodex`]).
pub enum RolodexMsg {
    /// Apply a change to one entry; reply with the new entry once it is durable.
    Change(
        FeedId,
        RolodexChange,
        RpcReplyPort<Result<RolodexEntry, NodeError>>,
    ),
}

/// Messages to a feed replicator ([`crate::daemon::replicator`]).
pub enum ReplicatorMsg {
    /// Entries of this feed from `from`; reply with the first refusal, if any, once durable.
    Ingest {
        /// The peer they came from.
        from: FeedId,
        /// The entries, in order.
        entries: Vec<WireEntry>,
        /// `Ok(None)`: all stored (or already held); `Ok(Some(e))`: an entry was refused.
        reply: RpcReplyPort<Result<Option<FeedError>, NodeError>>,
    },
}

/// Messages to a switchboard link ([`crate::daemon::switchboard_link`]).
pub enum SbLinkMsg {
    /// Connect now.
    Connect,
    /// A message from the switchboard.
    Frame(ServerMsg),
    /// A node event (wants or status changed).
    Event(NodeEvent),
    /// Ask the switchboard to introduce this node to an id; the reply carries the relayed
    /// endpoint and the address to dial them at through it, or why not.
    Introduce(FeedId, RpcReplyPort<Result<Relayed, IntroError>>),
    /// The connection ended.
    Closed(String),
    /// `kith switchboards forget`: close the link and dial no more (until the daemon restarts
    /// with this switchboard given again).
    Forget,
}

/// A relayed path to a peer: dial `addr` on `endpoint` (the inner QUIC endpoint over the
/// switchboard link).
#[derive(Clone)]
pub struct Relayed {
    /// The inner endpoint.
    pub endpoint: Arc<PeerEndpoint>,
    /// The peer's address on it.
    pub addr: SocketAddr,
    /// Where the switchboard sees the peer (for a direct attempt first).
    pub observed: Option<SocketAddr>,
}
