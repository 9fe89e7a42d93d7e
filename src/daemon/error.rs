//! The daemon's error types, in one file at the bottom of the daemon's import graph.
//!
//! [`NodeError`] is what a client request to the node can fail with; the actors' replies carry
//! it, so it lives below both the message types ([`crate::daemon::messages`]) and the actors.
//! [`ConnectError`] (`kith connect`) and [`IntroError`] (a switchboard link's answer to an
//! introduction request) live here too because `NodeError` and `ConnectError` contain them.
//! Every message is the text users saw before these were typed; tests may match it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::daemon::uplink::status_file::StatusFileError;
use crate::feed::FeedError;
use crate::identity::{FeedId, IdentityError};
use crate::ingest::IngestError;
use crate::net::pin::PinError;
use crate::net::{HelloError, NetError};
use crate::rolodex::RolodexError;
use crate::store::StoreError;
use crate::supervisor::SupervisorError;

/// Why a request to the node failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The entry was refused.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The rolodex change was refused.
    #[error(transparent)]
    Rolodex(#[from] RolodexError),
    /// The write failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A read failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An actor this request needs is not running (it may be restarting).
    #[error("{0} is not running (it may be restarting); try again in a moment")]
    Unavailable(&'static str),
    /// An actor did not answer in time.
    #[error("{0} did not answer within {1:?}; the daemon may be overloaded")]
    Timeout(&'static str, Duration),
    /// The request names something unknown.
    #[error("{0}")]
    NotFound(String),
    /// Dialling a peer failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The status line could not be saved.
    #[error(transparent)]
    Status(#[from] StatusFileError),
    /// A blob operation was refused or failed.
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    /// A query's `--limit` is out of range (0, or more than the most one answer holds).
    #[error("--limit {got} is out of range: give 1 to {max}")]
    BadLimit {
        /// The limit asked for.
        got: usize,
        /// The most one answer holds ([`QUERY_LIMIT_MAX`](crate::limits::QUERY_LIMIT_MAX)).
        max: usize,
    },
}

/// Why `kith connect` could not connect to a peer.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The id given (or its key) is not valid.
    #[error(transparent)]
    BadId(#[from] IdentityError),
    /// The target does not resolve to an address.
    #[error("`{0}` is not an address: expected HOST:PORT or @ID@HOST:PORT")]
    NotAnAddress(String),
    /// Dialling the address failed (the first-use probe or the dial itself).
    #[error("dialling {addr}: {source}")]
    Dial {
        /// The address dialled.
        addr: SocketAddr,
        /// Why it failed.
        source: NetError,
    },
    /// No key could be learned at the address (it is this node itself).
    #[error(transparent)]
    Pin(PinError),
    /// The peer is blocked.
    #[error("{0} is blocked; run `kith unblock {0}` first")]
    Blocked(FeedId),
    /// The hello failed, or the connection actor could not be started.
    #[error(transparent)]
    Start(#[from] StartPeerError),
    /// A bare id needs a switchboard, and none is connected.
    #[error("no switchboard is connected; start the daemon with --switchboard HOST:PORT, or give HOST:PORT")]
    NoSwitchboard,
    /// Every switchboard was tried, and none led to the peer.
    #[error("could not reach {peer} through the switchboards: {}", joined(.reasons))]
    Unreachable {
        /// The peer.
        peer: FeedId,
        /// What went wrong at each switchboard, in order.
        reasons: Vec<RelayFailure>,
    },
}

impl ConnectError {
    /// A failed first-use probe of `addr`: a dial failure is reported as one.
    pub fn probe(addr: SocketAddr, error: PinError) -> ConnectError {
        match error {
            PinError::Probe(source) => ConnectError::Dial { addr, source },
            other => ConnectError::Pin(other),
        }
    }
}

/// Why one switchboard did not lead to a peer.
#[derive(Debug, thiserror::Error)]
pub enum RelayFailure {
    /// The link refused the introduction (or the switchboard did).
    #[error(transparent)]
    Refused(#[from] IntroError),
    /// The link did not answer in time (or is gone).
    #[error("a switchboard link did not answer")]
    NoAnswer,
    /// The dial through the relay failed.
    #[error("relayed dial failed: {0}")]
    Dial(NetError),
    /// The relayed connection came up but did not become a connection actor.
    #[error("relayed connection not started: {0}")]
    Start(StartPeerError),
}

fn joined(reasons: &[RelayFailure]) -> String {
    let texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// Why a switchboard link gives no relayed path to a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntroError {
    /// The link is not connected (the target names the switchboard).
    #[error("not connected to the switchboard {0}")]
    NotConnected(String),
    /// The link cannot carry relayed packets (the target names the switchboard).
    #[error("the switchboard {0} cannot relay on this path")]
    CannotRelay(String),
    /// Too many introductions are waiting for an answer on this link.
    #[error("too many introductions pending")]
    TooManyPending,
    /// A newer request for the same id replaced this one.
    #[error("superseded by a newer request")]
    Superseded,
    /// The switchboard connection ended before the answer.
    #[error("the switchboard connection ended")]
    ConnectionEnded,
    /// The relayed endpoint closed before the answer.
    #[error("the relayed endpoint is gone")]
    RelayGone,
    /// The switchboard refused, with its reason.
    #[error("{0}")]
    Refused(String),
    /// The callee itself refused (it does not follow this node), as the switchboard said.
    #[error("{0}")]
    Declined(String),
}

/// Why a new connection with a peer did not become a connection actor.
#[derive(Debug, thiserror::Error)]
pub enum StartPeerError {
    /// The peer is blocked: never dialled.
    #[error("refusing to talk to blocked {0}")]
    Blocked(FeedId),
    /// The hello failed (goodbye, version, timeout, broken stream).
    #[error("hello with {peer}: {source}")]
    Hello {
        /// The peer.
        peer: FeedId,
        /// Why.
        source: HelloError,
    },
    /// The connection actor could not be started.
    #[error(transparent)]
    Start(#[from] SupervisorError),
}
