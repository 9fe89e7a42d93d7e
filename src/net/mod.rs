//! The network layer: identity-bound QUIC and the framed wire protocol.
//!
//! Layout, bottom up:
//!
//! - [`tls`]: RFC 7250 raw-public-key TLS 1.3 configs bound to a node's ed25519 key. The TLS
//!   handshake *is* the identity proof: both sides learn the other's key, and a dialer that
//!   expects key K refuses any other key.
//! - [`endpoint`]: one quinn endpoint per UDP socket that both listens and dials (hole punching
//!   needs the same port both ways), with a transport tuned from [`crate::limits`].
//! - [`frame`]: sans-IO length-prefixed postcard frames ([`frame::FrameDecoder`]); [`stream`]
//!   is the thin async glue over quinn streams.
//! - [`hello`]: the first exchange on a connection (version, capabilities, role, or a goodbye).
//! - [`close`]: the application close codes every protocol error maps to.
//! - [`conn`]: [`Conn`], the opaque handle tables outside `net/` keep of a live connection.
//! - [`pin`]: trust on first use, how a dialer learns and pins a key it was not given.
//! - [`admission`]: which inbound handshakes a listener takes on (Retry under load, a cap per
//!   source address, a short deadline before validation); [`accept`] is its driver.
//!
//! Only this module (and, later, the connection actors) touches quinn.

pub mod accept;
pub mod admission;
pub mod close;
pub mod conn;
pub mod endpoint;
mod error;
pub mod frame;
pub mod hello;
pub mod listener;
pub mod pin;
pub mod stream;
pub mod target;
pub mod tls;

pub use close::CloseCode;
pub use conn::{Conn, ConnStats};
pub use endpoint::PeerEndpoint;
pub use error::{KeyMismatch, NetError};
pub use frame::{FrameDecoder, FrameError};
pub use hello::{Hello, HelloError};
