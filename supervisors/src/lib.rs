//! kith-supervisors: the supervision trees of kith, read the way an OTP application reads, and
//! the pieces of the `kith` binary (command line, settings, control-socket client, output).
//!
//! The daemon's tree is drawn in [`daemon`]. Workers live in the `kith` library and never know
//! who supervises them; this crate decides strategy, intensity and restart type for each.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

#[allow(missing_docs)]
// clap turns doc comments into help text; flattened flags document themselves.
pub mod cli;
pub mod client;
pub mod config;

pub mod bench_relay;
pub mod bench_replicate;
pub mod daemon;
pub mod output;
pub mod presence;
pub mod switchboard;
pub mod wake_latency;
