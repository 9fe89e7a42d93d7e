//! kith-supervisors: the supervision trees of kith, read the way an OTP application reads, and
//! the pieces of the `kith` binary (command line, settings, control-socket client, output).
//!
//! Layout: [`trees`] holds the supervision trees and only them (daemon, switchboard, presence);
//! [`cli`] the command line, settings, control-socket client and output; [`bench`] the benchmarks
//! that need a tree or a process (`kith bench relay`, `kith bench replicate`). The daemon's tree
//! is drawn in [`trees::daemon`]. Workers live in the `kith` library and never know
//! who supervises them; this crate decides strategy, intensity and restart type for each.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod loadtest;
pub mod trees;
