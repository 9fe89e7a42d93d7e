//! The presence drivers: the ractor shard actors ([`shard_actor`]) around the sans-IO
//! [`crate::presence::shard::Shard`], the pool description and [`pool::Tracker`] handle
//! ([`pool`]), the concurrently readable view ([`view`]), and the network seam ([`transport`])
//! with an in-memory network for tests ([`memory_transport`]), and the incarnation numbers,
//! monotonic across restarts ([`incarnation`]).

pub mod incarnation;
pub mod memory_transport;
pub mod pool;
pub mod shard_actor;
pub mod transport;
pub mod view;
