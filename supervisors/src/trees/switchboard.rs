//! The switchboard's supervision tree — `kith switchboard`.
//!
//! ```text
//! switchboard (rest_for_one, at most 5 restarts in 10 s)
//! ├── presence    supervisor          shard actors of the presence tracker (one_for_one)
//! ├── clients     dynamic supervisor  one temporary session per connected peer
//! ├── notifier    permanent worker    presence diffs → notices to the sessions watching
//! ├── listener    permanent worker    accepts peers (QUIC, keys proven by TLS)
//! ├── cluster     supervisor          one permanent link per --join node (one_for_one)
//! ├── control     permanent worker    the control socket (`kith status` on a switchboard)
//! └── metrics     permanent worker    `--metrics ADDR`: Prometheus text and readiness (if given)
//! ```
//!
//! rest_for_one: sessions track their peers in the presence shards, so if the presence subtree
//! restarts, every session restarts too (its peers reconnect and are tracked again). The notifier
//! comes after the clients, so its restart costs no session: a new notifier asks every session to
//! resynchronise instead. The listener and control come last. The endpoint and the data-directory lock are held outside the tree.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kith::identity::{FeedId, Identity};
use kith::limits::PEERS_SHARDS;
use kith::limits::SB_CLIENTS_MAX;
use kith::metrics::{MetricsArgs, MetricsServer, ReportFn};
use kith::net::listener::Listener;
use kith::net::target::Target;
use kith::net::PeerEndpoint;
use kith::presence::driver::incarnation::Incarnations;
use kith::presence::driver::pool::TrackerPool;
use kith::presence::{Options, ReplicaName};
use kith::relay::RouterConfig;
use kith::runtime::control_socket::TreeReporter;
use kith::runtime::control_socket::{ControlArgs, ControlServer};
use kith::runtime::Slot;
use kith::supervisor::{
    report, ChildSpec, DynamicSpec, DynamicSupervisorHandle, Intensity, Restart, RootSupervisor,
    Strategy, SupervisorMsg, SupervisorSpec,
};
use kith::switchboard::cluster::link::{ClusterLink, ClusterLinkArgs};
use kith::switchboard::cluster::members::{read_keys_file, Members};
use kith::switchboard::cluster::nodes::NodeLinks;
use kith::switchboard::cluster::presence_link::QuicPresence;
use kith::switchboard::context::{Counters, SbContext};
use kith::switchboard::control;
use kith::switchboard::hub::Hub;
use kith::switchboard::invites::InviteFile;
use kith::switchboard::listener::listener_args;
use kith::switchboard::notifier::SbNotifier;
use kith::switchboard::watchers::Watchers;

use crate::trees::presence::presence_tree;

/// Restart intensity of the switchboard's root.
const ROOT_INTENSITY: Intensity = Intensity {
    max_restarts: 5,
    period: Duration::from_secs(10),
};
/// A cluster link that keeps crashing is restarted a few times, then the root decides.
const CLUSTER_INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(10),
};
/// Sessions are temporary; this bounds only the clients supervisor itself.
const CLIENTS_INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(10),
};

/// What the switchboard tree is built from.
pub struct SwitchboardParts {
    /// The data directory (identity, control socket).
    pub data_dir: PathBuf,
    /// The switchboard's identity.
    pub identity: Arc<Identity>,
    /// The bound endpoint.
    pub endpoint: Arc<PeerEndpoint>,
    /// Admit only peers with an invite code.
    pub invite_only: bool,
    /// Other nodes of the cluster to join (`[@ID@]HOST:PORT`).
    pub join: Vec<String>,
    /// The keys allowed to act as nodes of this cluster ([`cluster_members`]).
    pub members: Members,
    /// The limits relayed clients are held to.
    pub relay: RouterConfig,
    /// Whether the process keeps idle CPUs polling (`--poll-idle`), for status.
    pub cpus_polled_when_idle: bool,
    /// The metrics listener (`--metrics ADDR`), bound before the tree.
    pub metrics: Option<Arc<std::net::TcpListener>>,
    /// The presence heartbeat period (`--presence-broadcast-ms`; down after 20 silent periods).
    pub presence_broadcast_ms: u64,
}

/// A running switchboard.
pub struct Switchboard {
    /// The root supervisor.
    pub root: RootSupervisor,
    /// The shared context.
    pub ctx: SbContext,
}

/// Build and start the tree.
pub async fn start(parts: SwitchboardParts) -> anyhow::Result<Switchboard> {
    let node = parts.identity.id().to_string();
    let defaults = Options::default();
    let pool = TrackerPool::new(Options {
        shard_count: PEERS_SHARDS,
        ..Options::with_periods(
            parts.presence_broadcast_ms,
            defaults.max_silent_periods,
            // Past the down period by a margin whatever the period (permdown must exceed down).
            defaults
                .permdown_period
                .max(parts.presence_broadcast_ms.saturating_mul(80)),
        )
    })?;
    // Incarnations monotonic across restarts, even with the clock stepped back (issue 13).
    let incarnations = Incarnations::open(&parts.data_dir)?;
    let tracker = pool.handle_with(&node, Arc::new(incarnations));
    let link = QuicPresence::new(ReplicaName::new(&node));
    let ctx = SbContext {
        node: node.clone(),
        tracker: tracker.clone(),
        endpoint: Arc::clone(&parts.endpoint),
        clients: DynamicSupervisorHandle::for_children("clients", Restart::Temporary),
        counters: Arc::new(Counters::default()),
        cluster: link.clone(),
        hub: Hub::new(parts.relay),
        sessions: Arc::default(),
        watchers: Watchers::default(),
        nodes: NodeLinks::default(),
        members: parts.members,
        invites: match parts.invite_only {
            true => Some(Arc::new(Mutex::new(InviteFile::load(&parts.data_dir)?))),
            false => None,
        },
        join_guesses: Arc::default(),
    };
    let root_slot: Slot<SupervisorMsg> = Slot::new();
    let listener_args = listener_args(ctx.clone());
    let notifier_args = ctx.clone();
    let control_args = ControlArgs {
        data_dir: parts.data_dir.clone(),
        handler: control::handler(
            ctx.clone(),
            tree_reporter(root_slot.clone()),
            parts.cpus_polled_when_idle,
        ),
    };
    let seed = u64::from_le_bytes(parts.identity.id().0[..8].try_into().unwrap_or_default());
    let spec = SupervisorSpec {
        name: "switchboard".into(),
        strategy: Strategy::RestForOne,
        intensity: ROOT_INTENSITY,
        children: vec![
            ChildSpec::supervisor(presence_tree(&pool, &tracker, Arc::new(link), seed)),
            ChildSpec::dynamic(
                DynamicSpec {
                    name: "clients".into(),
                    intensity: CLIENTS_INTENSITY,
                    max_children: SB_CLIENTS_MAX,
                },
                ctx.clients.clone(),
            ),
            ChildSpec::worker("notifier", Restart::Permanent, SbNotifier, move || {
                notifier_args.clone()
            }),
            ChildSpec::worker("listener", Restart::Permanent, Listener, move || {
                listener_args.clone()
            }),
            ChildSpec::supervisor(cluster_tree(&ctx, &parts.join)),
            ChildSpec::worker("control", Restart::Permanent, ControlServer, move || {
                control_args.clone()
            }),
        ],
    };
    let mut spec = spec;
    if let Some(listener) = parts.metrics {
        let args = MetricsArgs {
            listener,
            source: kith::switchboard::metrics::source(
                ctx.clone(),
                typed_reporter(root_slot.clone()),
            ),
        };
        spec.children.push(ChildSpec::worker(
            "metrics",
            Restart::Permanent,
            MetricsServer,
            move || args.clone(),
        ));
    }
    let root = RootSupervisor::start(spec).await?;
    root_slot.set(root.actor().clone());
    Ok(Switchboard { root, ctx })
}

/// The cluster's members: the pinned `--join` ids, each `--cluster-key`, and the lines of the
/// `--cluster-keys` file. A `--join` without an id adds its node's key once the link pins it.
pub fn cluster_members(
    join: &[String],
    keys: &[String],
    file: Option<&std::path::Path>,
) -> anyhow::Result<Members> {
    let mut ids = Vec::new();
    for target in join {
        let target = Target::parse(target).map_err(anyhow::Error::msg)?;
        ids.extend(target.id);
    }
    for key in keys {
        let id = key
            .parse::<FeedId>()
            .map_err(|e| anyhow::anyhow!("--cluster-key {key}: {e}"))?;
        ids.push(id);
    }
    if let Some(path) = file {
        ids.extend(read_keys_file(path)?);
    }
    Ok(Members::new(ids)?)
}

/// One permanent link per `--join` node; they share nothing, hence one_for_one.
fn cluster_tree(ctx: &SbContext, join: &[String]) -> SupervisorSpec {
    let children = join
        .iter()
        .map(|target| {
            let args = ClusterLinkArgs {
                ctx: ctx.clone(),
                target: target.clone(),
            };
            ChildSpec::worker(
                format!("node:{target}"),
                Restart::Permanent,
                ClusterLink,
                move || args.clone(),
            )
        })
        .collect();
    SupervisorSpec {
        name: "cluster".into(),
        strategy: Strategy::OneForOne,
        intensity: CLUSTER_INTENSITY,
        children,
    }
}

/// Reports the live tree under `root`, typed, for the metrics (restarts, readiness).
pub fn typed_reporter(root: Slot<SupervisorMsg>) -> ReportFn {
    Arc::new(move || {
        let root = root.get();
        Box::pin(async move {
            match root {
                Some(root) => report(&root).await.ok(),
                None => None,
            }
        })
    })
}

/// Reports the live tree under `root` for `kith status`.
fn tree_reporter(root: Slot<SupervisorMsg>) -> TreeReporter {
    Arc::new(move || {
        let root = root.get();
        Box::pin(async move {
            match root {
                Some(root) => report(&root)
                    .await
                    .ok()
                    .and_then(|r| serde_json::to_value(r).ok())
                    .unwrap_or(serde_json::Value::Null),
                None => serde_json::Value::Null,
            }
        })
    })
}
