//! The relay core: two peers run their own end-to-end encrypted QUIC session through a
//! switchboard that only forwards opaque packets.
//!
//! - [`addr`]: a deterministic fake IPv6 address per peer key, and the bounded table back.
//! - [`vsock`]: [`VirtualSocket`], a quinn `AsyncUdpSocket` whose packets ride the outer
//!   connection's QUIC datagrams as `[32-byte key][inner packet]`.
//! - [`link`]: the [`DatagramLink`] the socket sends on (a `quinn::Connection`, or a test
//!   double) and the receive [`pump`].
//! - [`router`]: the switchboard's **sans-IO** forwarding core: introductions, source stamping,
//!   per-client limits, named refusal counters.
//! - [`bucket`]: the packet-and-byte token bucket the router applies per client.
//! - [`config`]: the outer transport a relay link needs (a larger initial MTU).
//! - [`idle_poll`]: the switchboard runtime's adaptive poll of its socket before a worker
//!   sleeps (a relayed packet then finds it awake instead of waking a halted CPU).
//!
//! See `ARCHITECTURE.md` and the research note `relay-virtual-socket.md` for the design.

pub mod addr;
pub mod bucket;
pub mod config;
pub mod idle_poll;
pub mod link;
pub mod router;
pub mod vsock;

pub use addr::{fake_addr, AddrBook, AddrError};
pub use link::{pump, spawn_pump, DatagramLink, LinkError};
pub use router::{Action, RateError, Refusal, Router, RouterConfig, RouterError, RouterStats};
pub use vsock::{VirtualSocket, VsockStats};
