//! Every bound in kith, named in one place.
//!
//! Frames, queues, tables, retries and backoff all take their limits from here, so that a
//! reviewer can see at a glance what the node will hold on to, and so that related limits can be
//! checked against each other at compile time.

// --- presence ---

/// Most shards a presence tracker may run (Phoenix's `pool_size`).
pub const MAX_PRESENCE_SHARDS: u16 = 1_024;
/// Most rungs in a delta-generation ladder.
pub const MAX_DELTA_GENERATIONS: usize = 8;
/// Largest delta-generation cap (values plus covered dots).
pub const MAX_DELTA_GENERATION_SIZE: usize = 1_000_000;
/// Largest encoded presence frame (a full state of ~100k presences fits comfortably).
pub const MAX_PRESENCE_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Most clocks a shard keeps between two pull decisions (at most one per peer is useful).
pub const MAX_PENDING_CLOCKS: usize = 1_024;
/// Most actions a shard buffers before its driver drains them.
pub const MAX_SHARD_ACTIONS: usize = 65_536;
/// Capacity of a tracker's diff broadcast channel; slower subscribers lag and are told so.
pub const PRESENCE_DIFF_CHANNEL: usize = 4_096;
/// Most frames the in-memory test transport holds in flight per node before dropping.
pub const MEMORY_TRANSPORT_INFLIGHT: usize = 100_000;
/// Most replica names (tombstones included) a shard tracks.
pub const MAX_PRESENCE_REPLICAS: usize = 4_096;
