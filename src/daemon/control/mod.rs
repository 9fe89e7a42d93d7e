//! The daemon's answers on the control socket: how `kith post`, `kith feed` and the other client
//! commands reach the running daemon.
//!
//! A Unix socket in the data directory, owner-only. One JSON request per line, one JSON response
//! per line (the protocol is [`crate::wire::control`]). The shared
//! [`crate::runtime::control_socket`] owns the listener; [`dispatch`] maps a request onto the
//! [`crate::daemon::node::Node`] handle; [`view`] holds the JSON shapes of the answers.

pub mod dispatch;
pub(crate) mod private;
pub(crate) mod social;
pub(crate) mod switchboards;
pub mod view;
