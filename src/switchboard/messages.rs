//! The messages a switchboard session takes, and where the answer to an introduction goes.
//!
//! Why a file of its own: the shared context (which maps peers to their sessions), the cluster's
//! node links and the notifier all send to sessions, and the session actor uses all of them. With
//! the message types here, below every actor that uses them, imports only run downward: nothing
//! under the session actor imports the actor's file.

use std::net::SocketAddr;

use ractor::{ActorRef, RpcReplyPort};

use crate::identity::FeedId;
use crate::switchboard::intro::IntroError;
use crate::wire::switchboard::ClientMsg;

/// Messages to a switchboard session.
pub enum SbSessionMsg {
    /// A frame from the peer; the reply says whether to keep reading.
    Frame(ClientMsg, RpcReplyPort<bool>),
    /// The presence of an id this peer watches may have changed.
    Notice(FeedId),
    /// Notices may have been missed: tell the peer the presence of every watched id again.
    Resync,
    /// Another peer asks to be introduced to this one.
    IntroRequest {
        /// Who asks.
        from: FeedId,
        /// Where the answer goes.
        asker: Asker,
        /// Their observed address.
        observed: SocketAddr,
    },
    /// The answer to this peer's introduction request.
    IntroResult {
        /// Whom this peer asked for.
        to: FeedId,
        /// Their observed address (a direct answer), none (relay only), or why it was refused.
        result: Result<Option<SocketAddr>, IntroError>,
    },
    /// The connection ended.
    Closed(String),
}

/// Where the answer to an introduction request goes.
pub enum Asker {
    /// The caller's session on this node.
    Local(ActorRef<SbSessionMsg>),
    /// The cluster node the caller is connected to.
    Node(FeedId),
}
