//! The daemon: what runs in a person's `kith daemon` process.
//!
//! - [`node`]: the [`node::Node`] handle a client request may use (store reads, the writer, the
//!   rolodex, events, the status line);
//! - [`store_writer`], [`rolodex`], [`replicator`], [`connection`], [`listener`], [`dialer`]: the
//!   worker actors (one write owner, the rolodex's actor, one replicator per followed feed, one
//!   actor per peer connection, the accept loop, one dialer per active rolodex entry);
//! - [`events`]: the node's bounded event broadcast;
//! - [`control`]: the control socket (server, dispatch, views);
//! - [`peer`]: peer-to-peer plumbing (consent policy, connections table, outbox, backoff, punch,
//!   connect);
//! - [`uplink`]: the links to switchboards.

pub mod connection;
pub mod control;
pub mod dialer;
pub mod events;
pub mod listener;
pub mod node;
pub mod peer;
pub mod replicator;
pub mod rolodex;
pub mod store_writer;
pub mod uplink;
