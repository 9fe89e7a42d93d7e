//! The hello: the first frame each way on a connection's first bidirectional stream.
//!
//! The dialer opens the stream and sends its [`Hello`] (protocol version, [`Capabilities`],
//! [`NodeRole`]). The acceptor answers with its own hello, or with a goodbye when the versions
//! differ or it will not serve this peer. Both sides then know the [`Agreed`] terms, and the
//! stream stays open as the connection's control stream.
//!
//! **Pipelining.** The dialer may send its first frames behind the hello without waiting for the
//! answer ([`dial_hello_pipelined`]: a daemon's join then costs one round trip with the hello,
//! not two). This is safe because the acceptor reads exactly one frame, the hello, before it
//! decides ([`accept_hello`] never reads past it), and hands the rest of the stream on only with
//! an agreed hello: after a refusal or a version mismatch it says goodbye and closes, and the
//! frames behind the hello are never read. Whatever they ask (a join) is therefore refused with
//! the hello, and frames after a hello are processed in the order sent, as without pipelining.
//!
//! On the wire a hello frame body is the sender's version (postcard `u16`) followed by the
//! message, so a peer of another version is recognised (and told so) before we try to decode
//! anything whose layout may have changed. The decisions are pure functions ([`parse`],
//! [`respond`], [`conclude`]); [`dial_hello`] and [`accept_hello`] are thin async glue.

use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use serde::{Deserialize, Serialize};

use super::close::{close, peer_close_code, CloseCode};
use super::frame::{self, FrameError};
use super::stream;
use crate::limits;

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// What kind of node is speaking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRole {
    /// A user's node: holds feeds, replicates them.
    Daemon,
    /// A rendezvous node: presence, introductions and relaying.
    Switchboard,
}

/// One optional protocol feature a node may offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Feed replication.
    Replicate,
    /// Forwarding opaque packets between two other peers.
    Relay,
    /// Presence gossip.
    Presence,
}

impl Capability {
    const fn bit(self) -> u32 {
        match self {
            Self::Replicate => 1 << 0,
            Self::Relay => 1 << 1,
            Self::Presence => 1 << 2,
        }
    }
}

/// A set of [`Capability`]s. Bits this build does not know are kept but never agreed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities(u32);

impl Capabilities {
    /// The empty set.
    pub const NONE: Self = Self(0);

    /// The set holding exactly `caps`.
    pub fn of(caps: &[Capability]) -> Self {
        caps.iter().fold(Self::NONE, |set, &c| set.with(c))
    }

    /// This set plus `cap`.
    pub const fn with(self, cap: Capability) -> Self {
        Self(self.0 | cap.bit())
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// The capabilities both sets hold.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

/// A node's opening statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version the sender speaks.
    pub version: u16,
    /// What the sender offers.
    pub capabilities: Capabilities,
    /// What kind of node the sender is.
    pub role: NodeRole,
}

impl Hello {
    /// A hello for this build's [`PROTOCOL_VERSION`].
    pub fn new(role: NodeRole, capabilities: Capabilities) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            capabilities,
            role,
        }
    }
}

/// Why a node ends the conversation during the hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoodbyeReason {
    /// The sender does not speak the peer's protocol version.
    VersionMismatch,
    /// The sender will not serve this peer (blocked, not followed, full, ...).
    NotWelcome,
    /// The sender is shutting down.
    ShuttingDown,
    /// The peer claimed the switchboard role, but its key is not a member of the sender's
    /// cluster.
    NotAClusterMember,
}

/// The hello frame body after the version.
#[derive(Serialize, Deserialize)]
enum Message {
    Hello {
        capabilities: Capabilities,
        role: NodeRole,
    },
    Goodbye {
        reason: GoodbyeReason,
    },
}

/// The whole hello frame body: the version first, so it decodes whatever follows.
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u16,
    message: Message,
}

/// A hello-stream message from the peer, already checked for our version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The peer's hello.
    Hello(Hello),
    /// The peer ends the conversation.
    Goodbye(GoodbyeReason),
}

/// What the acceptor sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Its own hello.
    Hello(Hello),
    /// A goodbye.
    Goodbye(GoodbyeReason),
}

impl Reply {
    /// The reply as a frame, stamped with `version`.
    pub fn frame(self, version: u16) -> Result<Vec<u8>, FrameError> {
        match self {
            Self::Hello(hello) => hello_frame(&hello),
            Self::Goodbye(reason) => goodbye_frame(version, reason),
        }
    }
}

/// Whether the acceptor will serve this peer (decided by the application, e.g. from its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it.
    Welcome,
    /// Say goodbye with this reason.
    Refuse(GoodbyeReason),
    /// Serve it, unless its hello claims `role`: then say goodbye with `reason` (a switchboard
    /// welcomes any client but only the nodes of its cluster).
    RefuseRole(NodeRole, GoodbyeReason),
}

/// The terms both sides agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// The protocol version in use.
    pub version: u16,
    /// The peer's role.
    pub peer_role: NodeRole,
    /// Everything the peer offered.
    pub peer_capabilities: Capabilities,
    /// What both sides offer: the features usable on this connection.
    pub common: Capabilities,
}

/// Why the hello failed.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// The peers speak different protocol versions.
    #[error("protocol version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// The peer said goodbye.
    #[error("peer said goodbye: {0:?}")]
    PeerSaidGoodbye(GoodbyeReason),
    /// We said goodbye (the application refused the peer).
    #[error("refused the peer: {0:?}")]
    Refused(GoodbyeReason),
    /// The hello frame was too large, malformed or of an unknown kind, or the stream broke.
    #[error("hello frame: {0}")]
    Frame(#[from] FrameError),
    /// The stream ended before a hello arrived.
    #[error("hello stream ended before the hello")]
    StreamEnded,
    /// The connection failed while opening or accepting the hello stream.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The hello did not finish in time.
    #[error("hello did not finish within {0:?}")]
    Timeout(Duration),
}

impl HelloError {
    /// The code to close the connection with, or `None` when the transport already failed.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Self::VersionMismatch { .. } => Some(CloseCode::VersionMismatch),
            Self::PeerSaidGoodbye(GoodbyeReason::NotAClusterMember)
            | Self::Refused(GoodbyeReason::NotAClusterMember) => Some(CloseCode::NotAClusterMember),
            Self::PeerSaidGoodbye(_) | Self::Refused(_) => Some(CloseCode::Goodbye),
            Self::Frame(err) => err.close_code(),
            Self::StreamEnded => Some(CloseCode::HelloAborted),
            Self::Connection(_) => None,
            Self::Timeout(_) => Some(CloseCode::HelloTimeout),
        }
    }

    /// If the hello failed because the peer closed the connection with one of our codes, that code.
    pub fn peer_close_code(&self) -> Option<CloseCode> {
        match self {
            Self::Frame(err) => err.peer_close_code(),
            Self::Connection(err) => peer_close_code(err),
            _ => None,
        }
    }
}

/// `hello` as a frame (prefix and body).
pub fn hello_frame(hello: &Hello) -> Result<Vec<u8>, FrameError> {
    let message = Message::Hello {
        capabilities: hello.capabilities,
        role: hello.role,
    };
    frame::encode(
        &Wire {
            version: hello.version,
            message,
        },
        limits::HELLO_FRAME_BYTES_MAX,
    )
}

/// A goodbye for `reason` as a frame, stamped with `version`.
pub fn goodbye_frame(version: u16, reason: GoodbyeReason) -> Result<Vec<u8>, FrameError> {
    let message = Message::Goodbye { reason };
    frame::encode(&Wire { version, message }, limits::HELLO_FRAME_BYTES_MAX)
}

/// Parses a hello frame body: its version first, then (only if it is `ours`) the message.
pub fn parse(ours: u16, body: &[u8]) -> Result<Received, HelloError> {
    let (theirs, _) = postcard::take_from_bytes::<u16>(body)
        .map_err(|_| FrameError::Malformed("hello without a version"))?;
    if theirs != ours {
        return Err(HelloError::VersionMismatch { ours, theirs });
    }
    let wire: Wire = frame::decode_body(body)?;
    Ok(match wire.message {
        Message::Hello { capabilities, role } => Received::Hello(Hello {
            version: wire.version,
            capabilities,
            role,
        }),
        Message::Goodbye { reason } => Received::Goodbye(reason),
    })
}

/// The terms of a conversation between `ours` and `theirs` (same version).
pub fn agree(ours: &Hello, theirs: &Hello) -> Agreed {
    debug_assert_eq!(ours.version, theirs.version);
    Agreed {
        version: ours.version,
        peer_role: theirs.role,
        peer_capabilities: theirs.capabilities,
        common: ours.capabilities.intersection(theirs.capabilities),
    }
}

/// The acceptor's move: what to send back to the dialer's hello `body`, and the outcome.
pub fn respond(
    ours: &Hello,
    body: &[u8],
    admission: Admission,
) -> (Option<Reply>, Result<Agreed, HelloError>) {
    match (parse(ours.version, body), admission) {
        (Ok(Received::Hello(theirs)), Admission::RefuseRole(role, reason))
            if theirs.role == role =>
        {
            (
                Some(Reply::Goodbye(reason)),
                Err(HelloError::Refused(reason)),
            )
        }
        (Ok(Received::Hello(theirs)), Admission::Welcome | Admission::RefuseRole(..)) => {
            (Some(Reply::Hello(*ours)), Ok(agree(ours, &theirs)))
        }
        (Ok(Received::Hello(_)), Admission::Refuse(reason)) => (
            Some(Reply::Goodbye(reason)),
            Err(HelloError::Refused(reason)),
        ),
        (Ok(Received::Goodbye(reason)), _) => (None, Err(HelloError::PeerSaidGoodbye(reason))),
        (Err(err @ HelloError::VersionMismatch { .. }), _) => (
            Some(Reply::Goodbye(GoodbyeReason::VersionMismatch)),
            Err(err),
        ),
        (Err(err), _) => (None, Err(err)),
    }
}

/// The dialer's move: the outcome of the acceptor's reply `body` to our hello.
pub fn conclude(ours: &Hello, body: &[u8]) -> Result<Agreed, HelloError> {
    match parse(ours.version, body)? {
        Received::Hello(theirs) => Ok(agree(ours, &theirs)),
        Received::Goodbye(reason) => Err(HelloError::PeerSaidGoodbye(reason)),
    }
}

/// A connection past its hello: the agreed terms and the open control stream.
#[derive(Debug)]
pub struct Greeted {
    /// The agreed terms.
    pub agreed: Agreed,
    /// Our half of the control stream (the hello stream, kept open).
    pub send: SendStream,
    /// The peer's half of the control stream.
    pub recv: RecvStream,
}

/// Dialer side: opens the first stream, says hello, reads the answer.
///
/// On failure the connection is closed with the error's [`CloseCode`].
pub async fn dial_hello(conn: &Connection, ours: &Hello) -> Result<Greeted, HelloError> {
    dial_hello_pipelined(conn, ours, &[]).await
}

/// [`dial_hello`] that sends `then` (encoded frames of the protocol that follows the hello, such
/// as a switchboard join) right behind the hello, in the same write, without waiting for the
/// answer. The acceptor reads them only if it agrees to the hello (see the module doc); their
/// answers follow the hello's answer on `recv`.
pub async fn dial_hello_pipelined(
    conn: &Connection,
    ours: &Hello,
    then: &[u8],
) -> Result<Greeted, HelloError> {
    let result = tokio::time::timeout(limits::HELLO_TIMEOUT, dial_steps(conn, ours, then))
        .await
        .unwrap_or(Err(HelloError::Timeout(limits::HELLO_TIMEOUT)));
    close_on_error(conn, result)
}

async fn dial_steps(conn: &Connection, ours: &Hello, then: &[u8]) -> Result<Greeted, HelloError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut opening = hello_frame(ours)?;
    opening.extend_from_slice(then);
    stream::write_raw(&mut send, &opening).await?;
    let body = stream::read_frame_raw(&mut recv, limits::HELLO_FRAME_BYTES_MAX)
        .await?
        .ok_or(HelloError::StreamEnded)?;
    let agreed = conclude(ours, &body)?;
    Ok(Greeted { agreed, send, recv })
}

/// Acceptor side: takes the first stream, reads the hello, answers per `admission`.
///
/// On failure the connection is closed with the error's [`CloseCode`]; after a goodbye we first
/// give the peer up to [`limits::GOODBYE_LINGER`] to read it and close.
pub async fn accept_hello(
    conn: &Connection,
    ours: &Hello,
    admission: Admission,
) -> Result<Greeted, HelloError> {
    let mut said_goodbye = false;
    let steps = accept_steps(conn, ours, admission, &mut said_goodbye);
    let result = tokio::time::timeout(limits::HELLO_TIMEOUT, steps)
        .await
        .unwrap_or(Err(HelloError::Timeout(limits::HELLO_TIMEOUT)));
    if said_goodbye {
        // Closing at once could discard the goodbye in flight: let the peer read it and close.
        let _ = tokio::time::timeout(limits::GOODBYE_LINGER, conn.closed()).await;
    }
    close_on_error(conn, result)
}

async fn accept_steps(
    conn: &Connection,
    ours: &Hello,
    admission: Admission,
    said_goodbye: &mut bool,
) -> Result<Greeted, HelloError> {
    let (mut send, mut recv) = conn.accept_bi().await?;
    let body = stream::read_frame_raw(&mut recv, limits::HELLO_FRAME_BYTES_MAX)
        .await?
        .ok_or(HelloError::StreamEnded)?;
    let (reply, outcome) = respond(ours, &body, admission);
    if let Some(reply) = reply {
        stream::write_raw(&mut send, &reply.frame(ours.version)?).await?;
    }
    match outcome {
        Ok(agreed) => Ok(Greeted { agreed, send, recv }),
        Err(err) => {
            *said_goodbye = reply.is_some();
            let _ = send.finish();
            Err(err)
        }
    }
}

fn close_on_error<T>(conn: &Connection, result: Result<T, HelloError>) -> Result<T, HelloError> {
    if let Err(code) = result.as_ref().map_err(HelloError::close_code) {
        close(conn, code.unwrap_or(CloseCode::HelloAborted));
    }
    result
}
