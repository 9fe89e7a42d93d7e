//! `kith loadtest` flags (the variant in `cli::args` points here, so the command's flags live
//! beside the command).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `kith loadtest …`.
#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// `merge`, or nothing to run a load test.
    #[command(subcommand)]
    pub action: Option<LoadtestAction>,
    /// A switchboard to load (repeatable: the nodes of one cluster); `@ID@HOST:PORT` pins its key.
    #[arg(long = "switchboard", conflicts_with = "spawn")]
    pub switchboards: Vec<String>,
    /// Start N local switchboard processes on loopback, joined into one cluster, and load them.
    #[arg(long)]
    pub spawn: Option<usize>,
    /// Simulated peers in the whole population (all shards).
    #[arg(long, default_value_t = 1_000)]
    pub peers: u64,
    /// Peers started per second (whole population). Faster than the switchboards admit is
    /// fine: a started peer waits for one of the `--in-flight` admission slots (the wait is not
    /// counted in its connect time), so `handshakes_per_s` shows what they admit. The default,
    /// 2,000, is above what one 2-core machine admits, so the join rate is the switchboards'.
    #[arg(long, default_value_t = 2_000.0)]
    pub ramp: f64,
    /// Seconds of steady load after the ramp.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// connect, presence, relay, replicate or mixed (all at once).
    #[arg(long, default_value = "mixed")]
    pub scenario: String,
    /// Seed of the peers' identities and of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Presence changes (status lines, leaves and rejoins) per second, whole population.
    #[arg(long, default_value_t = 50.0)]
    pub churn: f64,
    /// Introduced pairs making relayed round trips (whole population). They run on a runtime
    /// (two threads) and 8 UDP sockets of their own, so their round trips do not wait behind the other
    /// peers' work in the harness.
    #[arg(long, default_value_t = 100)]
    pub relay_pairs: u64,
    /// Peers in the replicate scenario's follow graph (whole population).
    #[arg(long, default_value_t = 200)]
    pub replicate_peers: u64,
    /// Posts per second by the follow graph's peers (whole population; replicate and mixed).
    #[arg(long, default_value_t = 50.0)]
    pub posts: f64,
    /// With --spawn: the spawned switchboards' presence heartbeat period in ms (their
    /// `--presence-broadcast-ms`; theirs by default), to weigh a shorter period's CPU cost
    /// against how soon presence crosses the cluster.
    #[arg(long, value_name = "MS", requires = "spawn")]
    pub presence_broadcast_ms: Option<u64>,
    /// Admissions (handshake, hello, join) in flight at most: a switchboard holds 64 handshakes
    /// at once and queues proven ones past that; more in flight than it can work through only
    /// lengthens each admission.
    #[arg(long, default_value_t = kith::limits::LOADTEST_HANDSHAKES_IN_FLIGHT)]
    pub in_flight: usize,
    /// The transport simulated peers dial their switchboard with: `daemon` (a daemon's
    /// switchboard link: keep-alives every 1.5 s, idle timeout 5 s, so a dead node is noticed in
    /// seconds and the switchboards carry daemons' keep-alive load) or `lean` (keep-alives every
    /// 5 s, idle timeout 15 s: a third of the keep-alives, a dead node noticed in 15-20 s).
    #[arg(long, default_value = "daemon", value_parser = ["daemon", "lean"])]
    pub peer_link: String,
    /// This process's part of the population, I/N (N harnesses together make one population).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Write the report as JSON to FILE.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw connected peers and latency percentiles over time to FILE.svg.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `kith loadtest merge`.
#[derive(Debug, Subcommand)]
pub enum LoadtestAction {
    /// Merge the JSON reports of shards of one population (histograms merged exactly).
    Merge {
        /// The reports.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged report as JSON to FILE.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Draw the merged timeline to FILE.svg.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}
