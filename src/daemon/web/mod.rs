//! The daemon's web page (issue 16): the timeline, posting, profiles with follow and block
//! buttons, contacts with presence and status lines, the node's status and its settings,
//! served from the daemon itself on loopback (`kith daemon --web ADDR`, on by default at
//! [`crate::limits::WEB_PORT_DEFAULT`]; `kith web` prints the login link).
//!
//! One file per concern, imports running downward:
//!
//! - [`server`]: the supervised worker, the routes, the security headers;
//! - [`events`]: live updates over server-sent events (new posts, presence, replication);
//! - [`pages`]: the handlers, each reading and changing the node through the control socket's
//!   answers ([`state::WebState::ask`]);
//! - [`state`]: what the handlers share, and the reads the command line has no command for
//!   (the timeline as threads, replication bars);
//! - [`templates`]: the HTML (maud: checked at compile time, every value escaped);
//! - [`inbox`]: private messages (the conversations, a thread, the send form);
//! - [`attach`]: files sent with the compose form, staged for the blob store; [`files`]: what
//!   is served as an image (sniffed), names, limits (sans-IO);
//! - [`policy`]: the settings page's serve, introduction and presence policies, written to
//!   `config.toml` for the next start;
//! - [`auth`] (login token, session cookie), [`csrf`] (the forms' token), [`guard`] (the
//!   Host and Origin checks against DNS rebinding and cross-site requests); [`error`].
//!
//! The static script (`static/app.js`) and style sheet (`static/style.css`) are compiled in.

pub mod attach;
pub mod auth;
pub mod csrf;
pub mod error;
pub mod events;
pub mod files;
pub mod guard;
pub mod inbox;
pub mod pages;
pub mod policy;
pub mod server;
pub mod state;
pub mod templates;

pub use error::WebError;
pub use server::{bind, router, WebArgs, WebMsg, WebServer};
pub use state::WebState;
