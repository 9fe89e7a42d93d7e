//! kith — a decentralized social network node, in the spirit of Secure Scuttlebutt.
//!
//! The library holds everything that is not a supervision tree: identity, the feed format, the
//! store, the rolodex, the presence CRDT, the supervision engine and the worker actors. The trees
//! that wire them together, and the `kith` binary, live in the `kith-supervisors` crate.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod limits;
pub mod net;
pub mod presence;
pub mod supervisor;
pub mod feed;
pub mod identity;
pub mod rolodex;
pub mod store;
pub mod ingest;
pub mod actors;
pub mod node;
pub mod control;
pub mod bench;
pub mod replicate;
pub mod events;
pub mod peer;
pub mod switchboard;
pub mod relay;
