//! [`Conn`]: a live connection as a table outside `net/` holds it.
//!
//! Tables such as the daemon's connections table keep a connection to read its counters, to
//! tell it apart from a newer one and to close it when a newer one replaces it. They hold this
//! handle rather than a `quinn::Connection`, so that only `net/`, `relay/` and the connection
//! actors touch quinn.

use std::time::Duration;

use crate::net::close::{close, CloseCode};

/// A live QUIC connection, opaque: what a table needs of it and nothing more. Cheap to clone;
/// clones are the same connection.
#[derive(Clone, Debug)]
pub struct Conn(quinn::Connection);

/// A connection's counters, for status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes sent on the UDP path.
    pub bytes_sent: u64,
    /// Bytes received on the UDP path.
    pub bytes_received: u64,
    /// Round-trip time estimate.
    pub rtt: Duration,
}

impl Conn {
    /// An id that tells this connection apart from any other live one (quinn's stable id).
    pub fn stable_id(&self) -> usize {
        self.0.stable_id()
    }

    /// Its counters now.
    pub fn stats(&self) -> ConnStats {
        let stats = self.0.stats();
        ConnStats {
            bytes_sent: stats.udp_tx.bytes,
            bytes_received: stats.udp_rx.bytes,
            rtt: self.0.rtt(),
        }
    }

    /// Close it with `code` (see [`close`]).
    pub fn close(&self, code: CloseCode) {
        close(&self.0, code);
    }
}

impl Conn {
    /// Open a stream of its own on this connection (a blob fetch: `daemon/blob/`).
    pub async fn open_stream(
        &self,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), quinn::ConnectionError> {
        self.0.open_bi().await
    }
}

impl From<quinn::Connection> for Conn {
    fn from(conn: quinn::Connection) -> Self {
        Conn(conn)
    }
}
