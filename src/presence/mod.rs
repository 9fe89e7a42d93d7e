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
//! - [`driver`]: the ractor shard actors and the pool with its `Tracker` handle, the
//!   concurrently readable view readers use without messaging a shard, and the network seam
//!   (`Transport`/`Inbound`) with an in-memory network for tests.
//!
//! The `kith bench presence` library side is [`crate::bench::presence`].
//!
//! The core (everything but `driver`) imports no tokio, no dashmap and does no I/O.
//!
//! # Departures from Phoenix.Tracker (each one a fix or a deliberate choice)
//! - Rows are keyed `(topic, key, replica, owner)` and an older dot never overwrites a newer one
//!   (#148). Diffs report joins only for visible replicas (Phoenix also reports joins of down
//!   replicas); rows of a down replica are joined when it comes back, so folding the diffs always
//!   gives the visible set.
//! - A delta merge looks up only the dots the delta names (Phoenix scans the whole state).
//! - Permdown erases the visibility entry too (#179); heartbeat clocks leave down replicas out
//!   (#135), and clocks received are cut to the replicas we know before the pull decision.
//! - A replica met for the first time, back from down, or whose link the transport reports
//!   re-established ([`shard::Shard::peer_connected`]) is asked for a transfer at once; a transfer
//!   request from an unknown or down replica counts as proof of life. A rung of the generation
//!   ladder is served only if it brings the requester fully up to date.
//! - A retired incarnation is remembered as a per-name tombstone: older vsns are refused; the
//!   same vsn is refused only after a graceful shutdown (a long partition may legitimately
//!   bring a silently permdowned replica back).
//! - Options also require `down_period > max_silent_periods * broadcast_period` (the idle
//!   heartbeat interval, which the shard keeps exactly: Phoenix's counter sends one tick later
//!   than that), and frames carry the shard count so that a node with another count is refused.
//! - A transfer answer never carries the requester's own rows, delta or full state.
//! - A node's incarnation (vsn) is monotonic across restarts even when its clock steps back
//!   (a floor kept on disk, [`driver::incarnation`]), so a restart is never refused as stale.
//! - Owners are `u64` ids local to their replica (Phoenix pids are global); the diff callback is a
//!   bounded broadcast channel, not a synchronous callback in the shard.

pub mod clock;
pub mod delta;
pub mod driver;
pub mod generations;
pub mod memory;
pub mod message;
pub mod options;
pub mod replica;
pub mod shard;
pub mod sim;
pub mod state;
pub mod types;

pub use delta::{Delta, FullState, Payload};
pub use options::Options;
pub use shard::{Action, Shard};
pub use state::State;
pub use types::{
    Diff, Dot, Meta, Millis, Owner, Presence, ReplicaName, ReplicaRef, Row, SharedRow,
};
