//! kith — a decentralized social network node, in the spirit of Secure Scuttlebutt.
//!
//! The library holds everything that is not a supervision tree: identity, the feed format, the
//! store, the rolodex, the presence CRDT, the supervision engine and the worker actors. The trees
//! that wire them together, and the `kith` binary, live in the `kith-supervisors` crate.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod limits;

// Shared cores and plumbing, used by more than one role.
pub mod bench;
pub mod feed;
pub mod identity;
pub mod ingest;
pub mod net;
pub mod presence;
pub mod relay;
pub mod replicate;
pub mod rolodex;
pub mod runtime;
pub mod store;
pub mod supervisor;
pub mod wire;

// The bounded polling helper of the tests; only with the `test-utils` feature.
#[cfg(feature = "test-utils")]
pub mod testing;

// One folder per process role.
pub mod daemon;
pub mod switchboard;
// The load-test harness (`kith loadtest`): simulated peers against real switchboards.
pub mod loadtest;
