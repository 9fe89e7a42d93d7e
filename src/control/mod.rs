//! The control socket: how `kith post`, `kith feed` and the other client commands reach the
//! running daemon.
//!
//! A Unix socket in the data directory, owner-only. One JSON request per line, one JSON response
//! per line ([`protocol`]). [`dispatch`] maps a request onto the [`crate::node::Node`] handle;
//! the actor in `actors::control` owns the listener.

pub mod dispatch;
pub mod protocol;
pub mod view;

/// File name of the control socket inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";
