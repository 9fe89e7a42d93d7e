//! A daemon's uplinks: the plumbing of its links to the switchboards it uses. [`Relays`] is the
//! table of links that introductions and `kith status` read, [`Online`] who of the watched ids
//! is online (and [`audience`] whom this node shows its presence to, [`seal`] its status line
//! sealed to them), [`status_file`] the own status line on disk and [`retry`] when the link dials
//! again (a `--switchboard` argument is a [`crate::net::target::Target`]). The link actor itself is [`crate::daemon::switchboard_link`], beside the other actors: it
//! starts peer connections, so it sits above this folder and [`crate::daemon::peer`].

pub mod audience;
mod links;
mod online;
pub mod retry;
pub mod seal;
pub mod status_file;

pub use audience::PresenceVisibility;
pub use links::{LinkState, LinkView, Outcome, OutcomeKind, Relays};
pub use online::{Online, Seen};
