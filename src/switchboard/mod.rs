//! Switchboards: servers that know who is online and introduce peers, without storing feeds.
//!
//! A daemon keeps a connection to each switchboard it uses ([`crate::actors::sb_link`]). The
//! switchboard tracks every connected peer in the presence CRDT (topic [`PEERS_TOPIC`], key = the
//! peer's id, meta = [`PeerMeta`]: since, node, status line), so that a cluster of switchboards
//! shares who is online. A daemon asks about the ids it follows ([`ClientMsg::Watch`]) and is told
//! when they come and go; the switchboard keeps that list only for the connection's lifetime —
//! no social graph is stored.

pub mod context;
pub mod hub;
pub mod invites;
pub mod nodes;
mod online;
pub mod protocol;
pub mod status_file;
pub mod target;
pub mod watchers;

pub use online::Online;
pub use protocol::{
    check_status, ClientMsg, NodeMsg, NodePacket, PeerMeta, ServerMsg, PEERS_TOPIC,
};
