//! The daemon: what runs in a person's `kith daemon` process.
//!
//! Imports run one way, top to bottom:
//!
//! - [`control`]: the daemon's answers on the control socket (dispatch onto the node, views; the
//!   socket server itself is the shared [`crate::runtime::control_socket`]);
//! - the worker actors: [`store_writer`], [`rolodex`], [`replicator`], [`connection`],
//!   [`listener`], [`dialer`], [`switchboard_link`] (one write owner, the rolodex's actor, one replicator
//!   per followed feed, one actor per peer connection, the accept loop, one dialer per active
//!   rolodex entry, one link per switchboard or cluster, and [`link_starter`], which starts the
//!   links given or remembered), and what starts connection actors on request:
//!   [`connect`] (`kith connect`) and [`punch`] (hole punching);
//! - [`context`]: the [`context::PeerContext`] the networked actors share;
//! - [`node`]: the [`node::Node`] handle a client request may use (store reads, the writer, the
//!   rolodex, events, the status line);
//! - [`writer`]: the store writer's API (submit and wait, or queue);
//! - [`peer`]: peer-to-peer plumbing (consent policy, connections table, replicators registry,
//!   outbox); [`uplink`]: switchboard plumbing (links table, presence, status line);
//! - [`messages`]: the actors' message types that other files use; [`error`]: the error types;
//!   [`events`]: the node's bounded event broadcast; [`own_seq`]: the own-feed marker (the last
//!   own sequence, kept beside the key, so that an emptied store cannot fork the feed).

pub mod blob;
pub mod connect;
pub mod connection;
pub mod context;
pub mod control;
pub mod dialer;
pub mod error;
pub mod events;
pub mod link_starter;
pub mod listener;
pub mod messages;
pub mod metrics;
pub mod node;
pub mod own_seq;
pub mod peer;
pub mod punch;
pub mod replicator;
pub mod rolodex;
pub mod store_writer;
pub mod switchboard_link;
pub mod uplink;
pub mod web;
pub mod writer;
