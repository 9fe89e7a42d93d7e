//! The network seam between tracker shards on different nodes.
//!
//! Outbound, a tracker needs only [`Transport::send`] to one node and the list of peers for a
//! broadcast. Inbound, whatever receives frames (the QUIC cluster, or the in-memory network of
//! the tests) hands them to an [`Inbound`] (the tracker handle), with the authenticated name of
//! the sending node. Frames are opaque bytes here; the tracker encodes and decodes them.

use bytes::Bytes;

use crate::presence::types::ReplicaName;

/// A frame could not be handed to the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No route to that node (unknown or disconnected).
    #[error("no route to {0}")]
    Unreachable(ReplicaName),
    /// The outbound queue for that node is full.
    #[error("outbound queue to {0} is full")]
    Full(ReplicaName),
}

/// Outbound side: how a tracker reaches other nodes. Sends are fire-and-forget: gossip
/// tolerates loss, and anti-entropy repairs it.
pub trait Transport: Send + Sync + 'static {
    /// This node's name.
    fn local(&self) -> ReplicaName;

    /// The nodes currently reachable (this node excluded).
    fn peers(&self) -> Vec<ReplicaName>;

    /// Sends one frame to one node.
    fn send(&self, to: &ReplicaName, frame: Bytes) -> Result<(), TransportError>;

    /// Sends one frame to every peer; failures to single peers are logged, not returned.
    fn broadcast(&self, frame: Bytes) {
        for peer in self.peers() {
            if let Err(e) = self.send(&peer, frame.clone()) {
                tracing::debug!(%peer, error = %e, "presence broadcast frame not sent");
            }
        }
    }
}

/// Inbound side: what the network calls when a frame or a connection arrives.
pub trait Inbound: Send + Sync + 'static {
    /// A frame from node `from` (authenticated by the transport).
    fn deliver(&self, from: ReplicaName, frame: Bytes);

    /// A link to `peer` was (re)established.
    fn peer_connected(&self, peer: ReplicaName);
}
