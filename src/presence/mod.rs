//! Presence: a Phoenix.Tracker-style delta-state CRDT, with Phoenix's known bugs fixed.
//!
//! Layout (sans-IO core first, drivers last):
//! - [`types`]: replicas, dots, rows, presences, diffs.
//! - [`clock`]: vector-clock algebra and the pull decision.
//! - [`delta`]: deltas, full-state payloads, delta merging.
//! - [`state`]: the CRDT itself (track, untrack, update, merge, extract, replica up/down/remove).
//! - [`generations`]: the delta-generation ladder that answers transfer requests.
//! - [`replica`]: liveness of remote replicas (up, down, permdown, incarnations).
//! - [`options`]: validated timings.
//! - [`message`]: the wire protocol.
//! - [`shard`]: one shard as a sans-IO state machine (events and time in, actions out).
//! - [`sim`]: a deterministic multi-node simulator over shards (tests and bench).
//! - [`memory`]: capacity-based memory accounting.
//! - [`transport`], [`memory_transport`]: the network seam and an in-memory network for tests.
//! - [`view`]: the concurrently readable view that readers use without messaging the shard.
//! - [`shard_actor`], [`pool`]: the ractor drivers and the pool description.
//! - [`bench`]: the `kith bench presence` library side.
//!
//! The core (`types` to `sim`) imports no tokio, no dashmap and does no I/O.

pub mod bench;
pub mod clock;
pub mod delta;
pub mod generations;
pub mod memory;
pub mod memory_transport;
pub mod message;
pub mod options;
pub mod pool;
pub mod replica;
pub mod shard;
pub mod shard_actor;
pub mod sim;
pub mod state;
pub mod transport;
pub mod types;
pub mod view;

pub use delta::{Delta, FullState, Payload};
pub use options::Options;
pub use shard::{Action, Shard};
pub use state::State;
pub use types::{Diff, Dot, Meta, Millis, Owner, Presence, ReplicaName, ReplicaRef, Row, SharedRow};
