//! The harness's errors, one variant per failure a caller can act on.

use crate::net::hello::HelloError;
use crate::net::NetError;

/// Why a load-test step failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    /// A command-line value is outside its bound or malformed; the text says which and how.
    #[error("{0}")]
    Invalid(&'static str),
    /// A switchboard address could not be parsed.
    #[error("`{0}` is not a switchboard address: expected [@ID@]HOST:PORT")]
    Target(String),
    /// A shard could not be parsed.
    #[error("`{0}` is not a shard: expected I/N with 0 <= I < N")]
    Shard(String),
    /// A scenario name is unknown.
    #[error("unknown scenario `{0}`: expected connect, presence, relay, replicate or mixed")]
    Scenario(String),
    /// The QUIC or TLS layer failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// No key could be learned for a switchboard given without one (trust on first use).
    #[error("learning the switchboard's key: {0}")]
    Pin(#[from] crate::net::pin::PinError),
    /// A connection attempt failed.
    #[error("connection: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// A connection failed after it was made.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The hello exchange failed.
    #[error("hello: {0}")]
    Hello(#[from] HelloError),
    /// Reading or writing a frame failed.
    #[error("frame: {0}")]
    Frame(#[from] crate::net::FrameError),
    /// The switchboard did not admit the peer.
    #[error("not admitted: {0}")]
    Refused(String),
    /// The switchboard answered with something unexpected or closed the stream.
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// A histogram could not be decoded, encoded or merged.
    #[error("histogram: {0}")]
    Histogram(String),
    /// A replication session's peer broke the protocol.
    #[error("replication: {0}")]
    Session(#[from] crate::replicate::SessionError),
    /// An entry replicated to a simulated peer, or its own post, was refused by the feed rules.
    #[error("replicated entry: {0}")]
    Replica(#[from] crate::loadtest::replica::ReplicaError),
    /// The supervision engine refused (e.g. the peers supervisor is not running).
    #[error(transparent)]
    Supervisor(#[from] crate::supervisor::SupervisorError),
    /// A file or /proc entry could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A report could not be encoded or decoded.
    #[error("report: {0}")]
    Json(#[from] serde_json::Error),
}
