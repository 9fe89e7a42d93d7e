//! The worker actors: thin drivers, one per file with its messages beside it. Decisions live in
//! the pure modules (`feed`, `rolodex::apply`, `ingest`); these only move messages and own I/O.
//! No worker knows who supervises it.

pub mod cluster_link;
pub mod control;
pub mod dialer;
pub mod listener;
pub mod node_link;
pub mod peer;
pub mod replicator;
pub mod rolodex;
pub mod sb_link;
pub mod sb_listener;
pub mod sb_notifier;
pub mod sb_session;
mod slot;
pub mod store_writer;
mod task;

pub use slot::Slot;
pub use task::OwnedTask;
