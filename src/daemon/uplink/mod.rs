//! A daemon's uplinks: its links to the switchboards it uses. [`link`] is the actor that keeps one
//! (join, watches, introductions, the relayed endpoint), [`Relays`] the table of them that
//! introductions and `kith status` read, [`Online`] who of the watched ids is online,
//! [`status_file`] the own status line on disk and [`target`] a `--switchboard` argument.

pub mod link;
mod links;
mod online;
pub mod status_file;
pub mod target;

pub use links::{LinkState, LinkView, Relays};
pub use online::Online;
