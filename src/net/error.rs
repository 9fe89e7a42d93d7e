//! [`NetError`]: what can go wrong while setting up, dialing or accepting a connection.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use super::tls::KeyHex;

/// Errors from building endpoints and establishing authenticated connections.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// rustls refused the configuration (never expected with the fixed ring provider).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// quinn refused the rustls configuration (no TLS 1.3 initial cipher suite).
    #[error("QUIC crypto configuration: {0}")]
    QuicCrypto(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A transport parameter from `limits` is out of QUIC's range.
    #[error("transport configuration: {0}")]
    Config(&'static str),
    /// The UDP socket could not be bound or queried.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// quinn refused to start the dial (endpoint stopping, bad address, ...).
    #[error("cannot dial: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The peer proved a different key from the one we dialed: impersonation or a stale address.
    #[error("peer key mismatch: expected {}, presented {}", KeyHex(&.0.expected), KeyHex(&.0.presented))]
    PeerKeyMismatch(Box<KeyMismatch>),
    /// The QUIC or TLS handshake failed (wrong TLS mode, no client key, bad ALPN, timeout, ...).
    #[error("handshake failed: {0}")]
    Handshake(#[source] quinn::ConnectionError),
    /// The handshake did not complete within the bound.
    #[error("handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The connection carries no ed25519 raw public key (it was not built by [`super::tls`]).
    #[error("peer presented no ed25519 raw public key")]
    NoPeerKey,
}

/// The keys involved in a [`NetError::PeerKeyMismatch`] (boxed: decoded keys are large).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The key we dialed.
    pub expected: VerifyingKey,
    /// The key the peer proved.
    pub presented: VerifyingKey,
}
