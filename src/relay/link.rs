//! The outer link a virtual socket's packets ride on, and the pump that feeds it received frames.
//!
//! [`DatagramLink`] is all a [`super::VirtualSocket`] needs from its outer connection: send one
//! unreliable datagram, and know the largest one that fits. It is a trait so that the socket can
//! be tested in memory; [`quinn::Connection`] implements it with QUIC DATAGRAM frames.
//!
//! Sending is direct: `send_datagram` hands the frame to quinn, which drops the *oldest* queued
//! datagram when its send buffer ([`crate::limits::DATAGRAM_SEND_BUFFER_BYTES`]) is full; inner
//! QUIC sees that as loss and backs off.

use std::sync::Arc;

use bytes::Bytes;
use quinn::SendDatagramError;

use super::vsock::VirtualSocket;

/// Why a datagram could not be handed to the outer link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The datagram is larger than the link can carry right now.
    #[error("datagram too large for the outer link")]
    TooLarge,
    /// The link does not carry datagrams (the peer or the local config disabled them).
    #[error("the outer link does not carry datagrams")]
    Unsupported,
    /// The outer connection is gone.
    #[error("the outer link is closed")]
    Closed,
    /// The link's queue has no room (a link that queues instead of dropping the oldest).
    #[error("the outer link's queue is full")]
    Full,
}

/// An unreliable datagram channel to the switchboard.
pub trait DatagramLink: Send + Sync + 'static {
    /// Queues one datagram for sending; never waits.
    fn send(&self, datagram: Bytes) -> Result<(), LinkError>;
    /// The largest datagram the link carries now (it changes with path MTU); `None` if the link
    /// carries no datagrams at all.
    fn max_size(&self) -> Option<usize>;
    /// Bytes the link's send queue can still take before it would drop a datagram.
    fn room(&self) -> usize;
}

impl DatagramLink for quinn::Connection {
    fn send(&self, datagram: Bytes) -> Result<(), LinkError> {
        self.send_datagram(datagram).map_err(|err| match err {
            SendDatagramError::TooLarge => LinkError::TooLarge,
            SendDatagramError::UnsupportedByPeer | SendDatagramError::Disabled => {
                LinkError::Unsupported
            }
            SendDatagramError::ConnectionLost(_) => LinkError::Closed,
        })
    }

    fn max_size(&self) -> Option<usize> {
        self.max_datagram_size()
    }

    fn room(&self) -> usize {
        self.datagram_send_buffer_space()
    }
}

/// Reads every datagram of the outer connection `conn` into `socket` until the connection
/// closes; then closes the socket (its sends fail, so inner connections end promptly) and
/// returns why the connection ended.
pub async fn pump(conn: quinn::Connection, socket: Arc<VirtualSocket>) -> quinn::ConnectionError {
    loop {
        match conn.read_datagram().await {
            Ok(frame) => {
                socket.deliver(frame);
            }
            Err(err) => {
                socket.close();
                return err;
            }
        }
    }
}

/// Runs [`pump`] on its own task.
pub fn spawn_pump(
    conn: quinn::Connection,
    socket: Arc<VirtualSocket>,
) -> tokio::task::JoinHandle<quinn::ConnectionError> {
    tokio::spawn(pump(conn, socket))
}
