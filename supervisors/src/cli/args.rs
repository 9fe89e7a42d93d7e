//! The command line: every `kith` command and its flags (the contract in DESIGN.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kith: a decentralized social network node. You keep your feed and the feeds of the people you
/// follow; switchboards connect you to them.
#[derive(Debug, Parser)]
#[command(name = "kith", version, propagate_version = true)]
pub struct Cli {
    /// Data directory (identity, store, control socket). Default: the platform's data directory.
    #[arg(long, global = true, env = "KITH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter, RUST_LOG style (e.g. `info`, `kith=debug`). Also KITH_LOG or RUST_LOG.
    #[arg(long, global = true, env = "KITH_LOG")]
    pub log: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--json` for commands that print data.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity and store (refuses to overwrite an existing identity).
    Init(InitArgs),
    /// Print this node's id.
    Whoami(JsonFlag),
    /// Run the node in the foreground; SIGINT or SIGTERM stops it gracefully.
    Daemon(DaemonArgs),
    /// Append a post to your feed and print its message id.
    Post {
        /// The text.
        text: String,
        /// Reply to this message (%….b3, as printed by `timeline`, `feed` or `thread`): the
        /// post joins that message's thread (`kith thread MSG` shows it). `@name` or `@id` in
        /// the text mentions that feed (it shows in their `kith mentions`).
        #[arg(long, value_name = "MSG")]
        reply_to: Option<String>,
        /// Attach a file (an image, a document): it is stored as a blob by its BLAKE3 hash and
        /// your followers fetch it. Repeat for more (at most 8); each at most the blob limit
        /// (5 MiB unless `[blobs] max_bytes` in config.toml says otherwise). The text may be
        /// empty ("") when something is attached.
        #[arg(long, value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Follow someone: replicate their feed.
    Follow {
        /// Their id (@….ed25519), or their contact card (kith:…, from `kith card`): the card's
        /// addresses are dialled and its switchboards remembered with their keys.
        id: String,
        /// Where to dial them directly (HOST:PORT).
        #[arg(long)]
        addr: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Stop following someone.
    Unfollow(IdArg),
    /// Block someone: never connect to, serve or replicate them. Local only, never published.
    Block(IdArg),
    /// Lift a block.
    Unblock(IdArg),
    /// Show one feed, newest first (default: yours).
    Feed {
        /// Whose feed.
        id: Option<String>,
        /// How many entries.
        #[arg(long)]
        limit: Option<usize>,
        /// Start below this message: the next page (a listing prints the id to give).
        #[arg(long, value_name = "MSGID")]
        before: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Posts of the people you follow and your own, newest first.
    Timeline {
        /// How many posts.
        #[arg(long)]
        limit: Option<usize>,
        /// Start below this post: the next page (a listing prints the id to give).
        #[arg(long, value_name = "MSGID")]
        before: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The rolodex: everyone this node knows. `kith contacts name ID NAME` names one for you.
    Contacts(ContactsArgs),
    /// Supervision tree, connections, feeds held and rolodex size of the running daemon.
    Status(JsonFlag),
    /// Set your status line (shown to those who follow you when you are online); no TEXT clears it.
    Presence {
        /// What to do.
        #[command(subcommand)]
        action: PresenceCommand,
    },
    /// Run a switchboard node: peers connect to it to be seen online and introduced.
    Switchboard(SwitchboardArgs),
    /// Dial a peer now: HOST:PORT (its key is learned on first use) or @ID…ed25519@HOST:PORT.
    Connect {
        /// Where.
        target: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Simulated peers against real switchboards: ramp, presence, relay; a report and a plot.
    Loadtest(crate::loadtest::args::LoadtestArgs),
    /// Built-in benchmarks: figures beside the machine's raw limits measured in the same run.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// The switchboards this daemon remembers (dialled on every start): pinned key, invite code,
    /// state; `forget` drops one.
    Switchboards(SwitchboardsArgs),
    /// The social commands: profile, thread, mentions, react, card, identity.
    #[command(flatten)]
    Social(crate::cli::social::SocialCommand),
    /// Private messages and deletion: dm, inbox, delete.
    #[command(flatten)]
    Private(crate::cli::private::PrivateCommand),
    /// The web page of the running daemon: prints its address with a login link (keep it
    /// private: it logs a browser in as you).
    Web(JsonFlag),
    /// Files by hash (blobs): add one, write one out, list those held.
    Blob {
        #[command(subcommand)]
        action: crate::cli::blob::BlobCommand,
    },
}

/// `kith switchboards [forget HOST:PORT|@ID] [--json]`.
#[derive(Debug, Args)]
pub struct SwitchboardsArgs {
    /// What to do (default: list them).
    #[command(subcommand)]
    pub action: Option<SwitchboardsAction>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `kith switchboards …` subcommands.
#[derive(Debug, Subcommand)]
pub enum SwitchboardsAction {
    /// Forget a switchboard: removed from the store, its link closed; not dialled again unless
    /// given again with --switchboard.
    Forget {
        /// `HOST:PORT`, or `@ID…ed25519` for its pinned key.
        target: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// An id argument and `--json`.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Their id (@….ed25519).
    pub id: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `kith presence …`.
#[derive(Debug, Subcommand)]
pub enum PresenceCommand {
    /// Set the status line.
    Set {
        /// The text (at most 140 bytes); leave out to clear.
        text: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `kith switchboard` flags.
#[derive(Debug, Args)]
pub struct SwitchboardArgs {
    /// What to do (default: run the switchboard).
    #[command(subcommand)]
    pub action: Option<SwitchboardAction>,
    /// Address to accept peers on.
    #[arg(long, env = "KITH_LISTEN", default_value = "0.0.0.0:7878")]
    pub listen: String,
    /// Another switchboard to form a cluster with (repeatable; `@ID@HOST:PORT` pins its key).
    #[arg(long = "join")]
    pub join: Vec<String>,
    /// The key of another node allowed into this cluster (repeatable; `@ID`). Only listed keys
    /// (these, the pinned `--join` ids, and `--cluster-keys`) may connect as switchboards: every
    /// other key that claims the role is refused and counted.
    #[arg(long = "cluster-key", value_name = "@ID")]
    pub cluster_key: Vec<String>,
    /// A file of node keys allowed into this cluster, one `@ID` per line (`#` comments).
    #[arg(long = "cluster-keys", value_name = "FILE")]
    pub cluster_keys: Option<PathBuf>,
    /// Admit only peers with an invite code (`kith switchboard invite` makes them; daemons use
    /// `--switchboard HOST:PORT#CODE`).
    #[arg(long)]
    pub invite_only: bool,
    /// Relayed packets per second one client may send (sustained; bursts of 1/8 s above it).
    #[arg(long, default_value_t = kith::limits::RELAY_CLIENT_PACKETS_PER_SEC)]
    pub client_packets_per_sec: u32,
    /// Relayed bytes per second one client may send (sustained; bursts of 1/8 s above it).
    #[arg(long, default_value_t = kith::limits::RELAY_CLIENT_BYTES_PER_SEC)]
    pub client_bytes_per_sec: u64,
    /// Keep idle CPUs polling instead of halting while the switchboard runs (a PM QoS request
    /// through /dev/cpu_dma_latency; needs root). On a VM whose idle vCPUs halt, this cuts a
    /// relayed round trip several-fold, at the price of CPUs that never rest.
    #[arg(long)]
    pub poll_idle: bool,
    /// Before a worker thread sleeps, watch the socket for up to this many µs (the window
    /// adapts to how soon packets come, as Linux's guest halt polling does; 0: never). A relayed
    /// packet that comes within it finds the worker awake instead of waking a halted CPU.
    #[arg(long, default_value_t = kith::limits::SB_IDLE_POLL_MAX.as_micros() as u64,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub idle_poll_us: u64,
    /// Serve Prometheus metrics and readiness over HTTP on this address (`127.0.0.1:9464`:
    /// `GET /metrics`, `GET /ready`). Off by default.
    #[arg(long, env = "KITH_METRICS", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The presence heartbeat period in ms (Phoenix.Tracker's broadcast period): a node that is
    /// silent for 20 periods is marked down, its peers hidden until it is heard again. Every
    /// node of a cluster should use the same period.
    #[arg(long, value_name = "MS", default_value_t = 1_500,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub presence_broadcast_ms: u64,
}

/// `kith switchboard …` subcommands (talk to the running switchboard).
#[derive(Debug, Subcommand)]
pub enum SwitchboardAction {
    /// Make a single-use invite code (or list or revoke the outstanding ones).
    Invite {
        /// Hours it stays valid (default: a week).
        #[arg(long, conflicts_with_all = ["list", "revoke"])]
        hours: Option<u64>,
        /// List the outstanding codes instead.
        #[arg(long, conflicts_with = "revoke")]
        list: bool,
        /// Withdraw this outstanding code instead (a code may begin with `-`).
        #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
        revoke: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The members: keys an invite code admitted, who rejoin without one.
    Members {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Forget a member and close its session; it needs a new code to join again.
    Remove {
        /// The member's id (@….ed25519).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `kith daemon` flags.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address to accept peer connections on (also KITH_LISTEN or `listen` in config.toml).
    #[arg(long, env = "KITH_LISTEN")]
    pub listen: Option<String>,
    /// A switchboard to keep a connection to (repeatable; also `switchboards` in config.toml):
    /// `[@ID@]HOST:PORT[#CODE]`, or a cluster the daemon fails over within, one link at a time:
    /// `@ID@HOST:PORT,@ID@HOST:PORT,…` or a name resolving to every node with the nodes' keys,
    /// `sb.example.org:7878,@ID,@ID,…`.
    #[arg(long = "switchboard")]
    pub switchboards: Vec<String>,
    /// Whom to serve feeds to: `everyone` (not blocked) or `follows` (also `serve` in config.toml).
    #[arg(long, env = "KITH_SERVE")]
    pub serve: Option<String>,
    /// How to answer a switchboard's introduction from someone you do not follow: `follows`
    /// (refuse), `relay` (through the switchboard only, neither side learns the other's address)
    /// or `everyone` (direct: your address is revealed). Ids you follow always get a direct path;
    /// blocked ids never get one. Default: `relay` with `--serve everyone`, `follows` with
    /// `--serve follows` (also `introductions` in config.toml).
    #[arg(long, env = "KITH_INTRODUCTIONS")]
    pub introductions: Option<String>,
    /// Who may see that you are online and read your status line: `follows` (the ids you follow;
    /// the default), `followers` (the ids known to follow you) or `everyone`. Everyone else sees
    /// you offline (also `presence_visible_to` in config.toml).
    #[arg(long, env = "KITH_PRESENCE_VISIBLE_TO")]
    pub presence_visible_to: Option<String>,
    /// Start although the store holds less of your own feed than you have posted (it was emptied
    /// or replaced): fetch the feed back from the peers that follow you, and refuse to post until
    /// it is back (see README).
    #[arg(long)]
    pub resync_own_feed: bool,
    /// Serve Prometheus metrics and readiness over HTTP on this address (`127.0.0.1:9464`:
    /// `GET /metrics`, `GET /ready`). Off by default.
    #[arg(long, env = "KITH_METRICS", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Serve the web page on this loopback address (`127.0.0.1:PORT`), or `off`. Default:
    /// 127.0.0.1:8807 (if that port is taken the daemon says so and runs without the page).
    /// `kith web` prints the address with a login link.
    #[arg(long, env = "KITH_WEB", value_name = "ADDR|off")]
    pub web: Option<String>,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Entries verified and stored per second through the real ingest pipeline.
    Ingest {
        /// How many entries.
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The presence CRDT on the work Phoenix.Tracker was measured on (full transfer, delta
    /// merges, catch-up, convergence, memory per presence).
    Presence {
        /// Small sizes (a quick smoke run).
        #[arg(long)]
        tiny: bool,
        /// Measure on N real switchboard processes on loopback instead: a join's convergence
        /// and a fresh node's catch-up, with real sockets.
        #[arg(long, value_name = "N")]
        cluster: Option<usize>,
        /// With --cluster: the nodes' presence heartbeat period, ms.
        #[arg(long, value_name = "MS", default_value_t = 1_500, requires = "cluster")]
        broadcast_ms: u64,
        /// With --cluster: joins timed for convergence.
        #[arg(long, default_value_t = 200, requires = "cluster")]
        joins: usize,
        /// With --cluster: presences the fresh node catches up on.
        #[arg(long, default_value_t = 10_000, requires = "cluster")]
        presences: u64,
        /// With --cluster: fresh-node catch-ups timed.
        #[arg(long, default_value_t = 10, requires = "cluster")]
        catchups: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// A switchboard process and peers on loopback: relayed round trips, packet rate without
    /// loss, connects per second, switchboard memory per client.
    Relay {
        /// Only the connect phases (5,000 first joins, then every client back after a
        /// switchboard restart): the connect figures in seconds instead of a minute.
        #[arg(long, conflicts_with = "latency_only")]
        connects_only: bool,
        /// Only the relayed round trips and their floors, with idle CPUs halting and then
        /// polling: the latency figures in seconds instead of a minute.
        #[arg(long)]
        latency_only: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Two nodes in one process replicate a feed over loopback QUIC; also the ingest rate alone
    /// and the memory of one idle peer connection.
    Replicate {
        /// How many entries in the replicated feed.
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The web page's timeline with 10,000 posts held: server render time and page weight.
    Web {
        /// How many posts in the store.
        #[arg(long, default_value_t = 10_000)]
        posts: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `kith init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Rebuild an identity from its recovery phrase (from `kith identity export`), read from
    /// standard input, instead of making a new one. Start the daemon and let it fetch your feed
    /// back from a follower before you post again (see README).
    #[arg(long)]
    pub restore: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `kith contacts [name ID [NAME]]`.
#[derive(Debug, Args)]
pub struct ContactsArgs {
    /// What to do (default: list them).
    #[command(subcommand)]
    pub action: Option<ContactsAction>,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `kith contacts …` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContactsAction {
    /// Give someone a name only you see (a petname: never published, shown instead of the name
    /// they chose); no NAME clears it.
    Name {
        /// Their id (@….ed25519).
        id: String,
        /// The name.
        name: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invite code is URL-safe base64: one in 64 begins with `-`, and must still be taken
    /// as the code to revoke, not as a flag.
    #[test]
    fn a_code_beginning_with_a_dash_can_be_revoked() {
        let cli = Cli::try_parse_from([
            "kith",
            "switchboard",
            "invite",
            "--revoke",
            "-JDtt4iu0VPWJJwFbrH9bw",
            "--json",
        ])
        .unwrap();
        let Command::Switchboard(SwitchboardArgs {
            action: Some(SwitchboardAction::Invite { revoke, json, .. }),
            ..
        }) = cli.command
        else {
            panic!("not an invite command: {:?}", cli.command);
        };
        assert_eq!(revoke.as_deref(), Some("-JDtt4iu0VPWJJwFbrH9bw"));
        assert!(json.json);
    }
}
