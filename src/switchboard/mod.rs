//! The switchboard: a server that knows who is online and introduces peers, without storing feeds.
//!
//! A daemon keeps a connection to each switchboard it uses (`daemon::switchboard_link`, in the daemon role). The
//! switchboard tracks every connected peer in the presence CRDT (topic
//! [`PEERS_TOPIC`](crate::wire::switchboard::PEERS_TOPIC), key = the peer's id, meta =
//! [`PeerMeta`](crate::wire::switchboard::PeerMeta): since, node, status line), so that a cluster
//! of switchboards shares who is online. A daemon asks about the ids it follows and is told when
//! they come and go; the switchboard keeps that list only for the connection's lifetime — no
//! social graph is stored.
//!
//! - [`listener`] accepts connections and starts one [`session`] per connected peer (a daemon, or
//!   another node of the cluster); [`messages`] are what sessions are sent, and [`intro`] is the
//!   sessions' introduction policy (sans-IO);
//! - [`context`] is what every session shares; [`hub`] relays datagrams between introduced pairs;
//!   [`watchers`] maps a watched id to the sessions watching it, and [`notifier`] turns presence
//!   diffs into notices for them; [`invites`] is the membership file (codes and members) and
//!   [`join_guesses`] throttles wrong invite codes per key and address (sans-IO);
//!   [`control`] answers `kith status` and the operator's membership commands;
//! - [`cluster`] links this node to the others.

pub mod cluster;
pub mod context;
pub mod control;
pub mod hub;
pub mod intro;
pub mod invites;
pub mod join_guesses;
pub mod listener;
pub mod messages;
pub mod metrics;
pub mod notifier;
pub mod session;
pub mod watchers;
