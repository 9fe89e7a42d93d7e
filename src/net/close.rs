//! Application close codes: how a protocol error ends a connection, and how the peer reads it.
//!
//! Every named protocol error maps to one code, so the side that closes and the side that is
//! closed agree on what went wrong. Codes are QUIC application error codes (RFC 9000 §20.2),
//! grouped by layer: `0x1_` framing, `0x2_` hello.

use quinn::{Connection, ConnectionError, VarInt};

/// The reason a kith connection was closed, as sent in a QUIC `CONNECTION_CLOSE` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// Orderly close; nothing went wrong.
    Normal = 0x00,
    /// A frame's length prefix exceeded the bound for its stream.
    FrameTooLarge = 0x10,
    /// A frame body did not decode (bad encoding or trailing bytes).
    FrameMalformed = 0x11,
    /// A frame decoded to a message kind this node does not know.
    UnknownMessage = 0x12,
    /// A stream ended in the middle of a frame.
    FrameTruncated = 0x13,
    /// The peers speak different protocol versions.
    VersionMismatch = 0x20,
    /// One side said goodbye during the hello (not welcome, shutting down, ...).
    Goodbye = 0x21,
    /// The hello did not complete within its bound.
    HelloTimeout = 0x22,
    /// The hello stream closed or broke before the hello completed.
    HelloAborted = 0x23,
    /// A peer claimed the switchboard role with a key that is not a member of the cluster.
    NotAClusterMember = 0x24,
    /// Two connections between the same peers (both dialled at once): this one lost the
    /// tie-break both sides evaluate alike, and the other carries on.
    Duplicate = 0x25,
    /// The peer broke the replication protocol (unsolicited feed, oversized clock, ...).
    ProtocolViolation = 0x30,
    /// The peer sent an entry that failed validation (forged signature, fork, ...).
    InvalidEntry = 0x31,
}

impl CloseCode {
    const ALL: [Self; 13] = [
        Self::Normal,
        Self::FrameTooLarge,
        Self::FrameMalformed,
        Self::UnknownMessage,
        Self::FrameTruncated,
        Self::VersionMismatch,
        Self::Goodbye,
        Self::HelloTimeout,
        Self::HelloAborted,
        Self::NotAClusterMember,
        Self::Duplicate,
        Self::ProtocolViolation,
        Self::InvalidEntry,
    ];

    /// The code as a QUIC variable-length integer.
    pub const fn varint(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }

    /// The code for a received QUIC application error code, if it is one of ours.
    pub fn from_varint(code: VarInt) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.varint() == code)
    }

    /// A short human-readable reason, sent alongside the code.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Normal => "bye",
            Self::FrameTooLarge => "frame too large",
            Self::FrameMalformed => "malformed frame",
            Self::UnknownMessage => "unknown message",
            Self::FrameTruncated => "truncated frame",
            Self::VersionMismatch => "protocol version mismatch",
            Self::Goodbye => "goodbye",
            Self::HelloTimeout => "hello timed out",
            Self::HelloAborted => "hello aborted",
            Self::NotAClusterMember => "not a member of this cluster",
            Self::Duplicate => "a connection between these peers already exists",
            Self::ProtocolViolation => "replication protocol violation",
            Self::InvalidEntry => "invalid entry",
        }
    }
}

/// Closes `conn` immediately with `code`. Unsent stream data is discarded.
pub fn close(conn: &Connection, code: CloseCode) {
    conn.close(code.varint(), code.reason().as_bytes());
}

/// The code the *peer* closed the connection with, if it closed it with one of ours.
pub fn peer_close_code(err: &ConnectionError) -> Option<CloseCode> {
    match err {
        ConnectionError::ApplicationClosed(close) => CloseCode::from_varint(close.error_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_varint() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_varint(code.varint()), Some(code));
        }
        assert_eq!(CloseCode::from_varint(VarInt::from_u32(0xdead)), None);
    }
}
