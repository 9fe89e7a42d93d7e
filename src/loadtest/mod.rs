//! The load-test harness behind `kith loadtest`: many simulated peers in one process, each a
//! supervised actor running kith's real protocol against real switchboard processes.
//!
//! Why here: the harness is the third user of the design (the engineer), and its peers are
//! built from the same library code a daemon uses (key-bound QUIC, hello, join, presence,
//! introductions, the relay's virtual socket). Its supervision tree lives in
//! `kith-supervisors` (`trees/loadtest.rs`); what to start, and when, is decided here.
//!
//! Layout:
//! - sans-IO decisions, each with unit tests: [`schedule`] (the ramp, shards, seeds and each
//!   peer's identity), [`plan`] (who watches whom, relayed pairs, churn targets), [`graph`] (the
//!   seeded power-law follow graph), [`histogram`] (HDR histograms, serialized, merged exactly),
//!   [`report`] (the report and the merge of shards' reports), [`procfs`] (parsing /proc);
//! - the harness's IO: [`client`] (dial a switchboard, hello, join: shared with
//!   `kith bench relay`), [`metrics`] (what the peers record while they run), [`peer`] (the
//!   simulated peer actor, its messages in [`messages`]), [`inner`] (its inner QUIC over the
//!   relay; the relayed pairs' run on their own [`lane`]), [`replicate`] (replication sessions
//!   over it, on the in-memory feeds of [`replica`]), [`ghosts`] (the presence check at the end), [`run`] (the scenarios' driver).

pub mod client;
pub mod error;
pub mod ghosts;
pub mod graph;
pub mod harness;
pub mod histogram;
pub mod inner;
pub mod lane;
pub mod messages;
pub mod metrics;
pub mod peer;
pub mod plan;
pub mod procfs;
pub mod replica;
pub mod replicate;
pub mod report;
pub mod run;
pub mod schedule;

pub use error::LoadtestError;
pub use report::Report;
pub use schedule::{Scenario, Shard};
