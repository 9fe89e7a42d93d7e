//! kith — a decentralized social network node, in the spirit of Secure Scuttlebutt.
//!
//! The library holds everything that is not a supervision tree: identity, the feed format, the
//! store, the rolodex, the presence CRDT, the supervision engine and the worker actors. The trees
//! that wire them together, and the `kith` binary, live in the `kith-supervisors` crate.
//!
//! # Layout
//!
//! A file's folder says which process runs it (`ARCHITECTURE.md` has the whole map):
//!
//! - [`daemon`]: a person's node (`kith daemon`): the store writer, the rolodex actor, feed
//!   replicators, peer connections, dialers, the links to switchboards, the control answers.
//! - [`switchboard`]: a switchboard node (`kith switchboard`): sessions, introductions, the relay
//!   hub, presence notices, membership, and [`switchboard::cluster`] for the other nodes.
//! - [`loadtest`]: the load-test harness (`kith loadtest`): simulated peers and scenarios.
//!
//! Shared by the roles:
//!
//! - sans-IO cores: [`feed`] (the signed entry format), [`replicate`] (the replication session),
//!   [`presence`] (the delta CRDT; its actors in [`presence::driver`]), [`supervisor`]'s restart
//!   decisions, [`relay`]'s router, [`wire`] (the protocols' message types);
//! - plumbing: [`store`] (LMDB, the only user of heed), [`ingest`] (batched verification and
//!   commits), [`rolodex`] (the concurrent table), [`net`] (identity-bound QUIC, hello, frames,
//!   handshake admission), [`relay`] (the virtual socket), [`runtime`] (slots, owned tasks,
//!   backoff, the control socket's server), [`identity`], [`limits`] (every bound, named);
//! - [`bench`]: the library side of the built-in benchmarks.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod limits;

// Shared cores and plumbing, used by more than one role.
pub mod bench;
// Files by BLAKE3 hash, the blob store and verified streaming (issue 15).
pub mod blob;
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
// `--metrics ADDR`: the Prometheus text endpoint of switchboards and daemons.
pub mod metrics;
pub mod wire;

// The bounded polling helper of the tests; only with the `test-utils` feature.
#[cfg(feature = "test-utils")]
pub mod testing;

// One folder per process role.
pub mod daemon;
pub mod switchboard;
// The load-test harness (`kith loadtest`): simulated peers against real switchboards.
pub mod loadtest;
