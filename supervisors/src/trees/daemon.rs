//! The daemon's supervision tree — the `application.ex` of a kith node.
//!
//! ```text
//! daemon (rest_for_one, at most 5 restarts in 10 s)
//! ├── store_writer   permanent worker    the one LMDB writer; group commits
//! ├── replicators    dynamic supervisor  one permanent feed replicator per wanted feed
//! ├── peers          dynamic supervisor  one temporary actor per peer connection
//! ├── entries        dynamic supervisor  one transient dialer per active rolodex entry
//! ├── rolodex        permanent worker    serialises rolodex changes; starts replicators, dialers
//! ├── listener       permanent worker    accepts peer connections
//! ├── switchboards   dynamic supervisor  one permanent link per switchboard or cluster
//! ├── link_starter   permanent worker    starts the links given (--switchboard) or remembered
//! ├── control        permanent worker    the control socket that client commands talk to
//! ├── blobs          permanent worker    fetches the blobs followed feeds attach; drops unfollowed
//! ├── metrics        permanent worker    `--metrics ADDR`: Prometheus text and readiness (if given)
//! └── web            permanent worker    the web page on loopback (`--web ADDR`, unless `--web off`)
//! ```
//!
//! rest_for_one because each child depends on those started before it: if the store writer
//! restarts, everything after it (which holds its slot and may have requests in flight)
//! restarts too, while a crash of the control server touches nothing else. Switchboard links sit
//! under a dynamic supervisor so that `kith follow CARD` adds one while the daemon runs; the
//! link starter after it (re)starts the given and remembered ones whenever it restarts. The store (with its
//! directory lock) and the QUIC endpoint are opened before the tree and outlive it, so a restart
//! never reopens LMDB or rebinds the port.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kith::blob::{BlobLimits, BlobStore};
use kith::daemon::blob::fetcher::{BlobFetcher, BlobFetcherArgs};
use kith::daemon::blob::Blobs;
use kith::daemon::context::PeerContext;
use kith::daemon::control::dispatch::node_handler;
use kith::daemon::dialer::{Dialer, DialerArgs};
use kith::daemon::link_starter::{LinkStarter, LinkStarterArgs};
use kith::daemon::listener::listener_args;
use kith::daemon::messages::ReplicatorMsg;
use kith::daemon::node::Node;
use kith::daemon::own_seq::OwnFeed;
use kith::daemon::peer::{Connections, IntroPolicy, Replicators, ServePolicy};
use kith::daemon::replicator::{FeedReplicator, ReplicatorArgs};
use kith::daemon::rolodex::{DialFn, ReplicateFn, RolodexActor, RolodexArgs};
use kith::daemon::store_writer::{StoreWriter, StoreWriterArgs};
use kith::daemon::uplink::status_file::StatusFile;
use kith::daemon::uplink::{PresenceVisibility, Relays};
use kith::identity::Identity;
use kith::limits::{ACTIVE_ENTRIES_MAX, PEERS_MAX, ROLODEX_FOLLOWS_MAX, SB_LINKS_MAX};
use kith::metrics::{MetricsArgs, MetricsServer};
use kith::net::listener::Listener;
use kith::net::PeerEndpoint;
use kith::runtime::control_socket::TreeReporter;
use kith::runtime::control_socket::{ControlArgs, ControlServer};
use kith::runtime::Slot;
use kith::store::Store;
use kith::supervisor::{
    report, ChildSpec, DynamicSpec, DynamicSupervisorHandle, Intensity, Restart, RootSupervisor,
    Strategy, SupervisorMsg, SupervisorSpec,
};
use ractor::ActorRef;

/// Restart intensity of the daemon's root: past it, the daemon exits non-zero.
pub const ROOT_INTENSITY: Intensity = Intensity {
    max_restarts: 5,
    period: Duration::from_secs(10),
};
/// Peer connections are temporary (never restarted), so this bounds only the supervisor itself.
const PEERS_INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(10),
};
/// Feed replicators are permanent; a few crashes are absorbed, then the root decides.
const REPLICATORS_INTENSITY: Intensity = Intensity {
    max_restarts: 20,
    period: Duration::from_secs(10),
};
/// A switchboard link that keeps crashing is restarted a few times, then the root decides.
const SWITCHBOARDS_INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(10),
};
/// A dialer that keeps crashing is restarted a few times, then the entries supervisor gives up
/// and the root restarts the rolodex side of the tree.
const ENTRIES_INTENSITY: Intensity = Intensity {
    max_restarts: 20,
    period: Duration::from_secs(10),
};

/// What the tree is built from.
pub struct DaemonParts {
    /// The data directory.
    pub data_dir: PathBuf,
    /// This node's identity.
    pub identity: Arc<Identity>,
    /// The opened store (holding the directory lock).
    pub store: Store,
    /// The bound QUIC endpoint.
    pub endpoint: Arc<PeerEndpoint>,
    /// Whom to serve.
    pub serve: ServePolicy,
    /// Switchboards (or clusters, `ITEM[,ITEM…]`) to stay connected to (`HOST:PORT` or
    /// `@ID@HOST:PORT` each); the remembered ones are added to them.
    pub switchboards: Vec<String>,
    /// How to answer introductions from ids this node does not follow.
    pub introductions: IntroPolicy,
    /// The per-blob limit and total budget of the blob store (`[blobs]` in config.toml).
    pub blobs: BlobLimits,
    /// Who may see this node's presence and status line.
    pub presence_visible_to: PresenceVisibility,
}

/// The running daemon's handles.
pub struct Daemon {
    /// The root supervisor.
    pub root: RootSupervisor,
    /// The node handle.
    pub node: Node,
    /// The network context.
    pub peers: PeerContext,
}

/// Build and start the tree (refused if the store is behind the own-feed marker).
pub async fn start(parts: DaemonParts) -> anyhow::Result<Daemon> {
    start_with(parts, false).await
}

/// Build and start the tree; with `resync_own_feed`, a store behind the own-feed marker is
/// accepted and the own feed is fetched back from followers before anything is appended to it.
pub async fn start_with(parts: DaemonParts, resync_own_feed: bool) -> anyhow::Result<Daemon> {
    start_full(parts, resync_own_feed, None).await
}

/// [`start_with`], and with `metrics` (a listener bound before the tree), a `metrics` worker
/// last in the tree serving `--metrics`.
pub async fn start_full(
    parts: DaemonParts,
    resync_own_feed: bool,
    metrics: Option<Arc<std::net::TcpListener>>,
) -> anyhow::Result<Daemon> {
    start_web(parts, resync_own_feed, metrics, None).await
}

/// [`start_full`], and with `web` (a loopback listener bound before the tree), a `web` worker
/// last in the tree serving the web page (issue 16); its login token is made in the data
/// directory on first use.
pub async fn start_web(
    parts: DaemonParts,
    resync_own_feed: bool,
    metrics: Option<Arc<std::net::TcpListener>>,
    web: Option<Arc<std::net::TcpListener>>,
) -> anyhow::Result<Daemon> {
    let own = OwnFeed::open(
        &parts.data_dir,
        &parts.store,
        parts.identity.id(),
        resync_own_feed,
    )?;
    let node = Node {
        identity: Arc::clone(&parts.identity),
        store: parts.store.clone(),
        rolodex: parts.store.load_rolodex()?,
        writer: Slot::new(),
        rolodex_actor: Slot::new(),
        events: kith::daemon::events::channel(),
        online: kith::daemon::uplink::Online::new(parts.presence_visible_to),
        status_file: StatusFile::in_dir(&parts.data_dir),
        own: own.clone(),
        blobs: Blobs::new(BlobStore::open(&parts.data_dir, parts.blobs)?),
    };
    // The status line set before a restart is announced again; a damaged file is said, not fatal.
    match node.status_file.load() {
        Ok(text) => node.online.set_status(text),
        Err(e) => {
            tracing::warn!(error = %e, "the saved status line could not be read; starting without one")
        }
    }
    // Whom the presence is shown to, before any switchboard link starts (nobody until then).
    if parts.presence_visible_to == PresenceVisibility::Followers {
        let me = node.identity.id();
        node.online
            .load_followers(&node.store, &node.rolodex, &me)?;
    }
    node.online.refresh(&node.rolodex);
    let peers = PeerContext {
        node: node.clone(),
        endpoint: Arc::clone(&parts.endpoint),
        connections: Connections::default(),
        peers: DynamicSupervisorHandle::for_children("peers", Restart::Temporary),
        serve: parts.serve,
        introductions: parts.introductions,
        replicators: Replicators::default(),
        relays: Relays::new(parts.switchboards.len()),
        links: DynamicSupervisorHandle::for_children("switchboards", Restart::Permanent),
    };
    let root_slot: Slot<SupervisorMsg> = Slot::new();
    let mut spec = tree(&parts, &node, &peers, own, reporter(root_slot.clone()));
    if let Some(listener) = metrics {
        let args = MetricsArgs {
            listener,
            source: kith::daemon::metrics::source(
                node.clone(),
                peers.clone(),
                crate::trees::switchboard::typed_reporter(root_slot.clone()),
            ),
        };
        spec.children.push(ChildSpec::worker(
            "metrics",
            Restart::Permanent,
            MetricsServer,
            move || args.clone(),
        ));
    }
    if let Some(listener) = web {
        let keys = Arc::new(kith::daemon::web::auth::Keys::load_or_create(
            &parts.data_dir,
        )?);
        let allowed = kith::daemon::web::guard::Allowed::for_addr(listener.local_addr()?);
        let state = kith::daemon::web::WebState::new(
            node.clone(),
            Some(peers.clone()),
            reporter(root_slot.clone()),
            keys,
            allowed,
        );
        let args = kith::daemon::web::WebArgs {
            listener,
            state,
            data_dir: parts.data_dir.clone(),
        };
        spec.children.push(ChildSpec::worker(
            "web",
            Restart::Permanent,
            kith::daemon::web::WebServer,
            move || args.clone(),
        ));
    }
    let root = RootSupervisor::start(spec).await?;
    root_slot.set(root.actor().clone());
    Ok(Daemon { root, node, peers })
}

fn tree(
    parts: &DaemonParts,
    node: &Node,
    peers: &PeerContext,
    own: OwnFeed,
    tree: TreeReporter,
) -> SupervisorSpec {
    let entries = DynamicSupervisorHandle::new("entries");
    let replicators = DynamicSupervisorHandle::new("replicators");
    let writer_args = StoreWriterArgs {
        store: parts.store.clone(),
        identity: Arc::clone(&parts.identity),
        rolodex: node.rolodex.clone(),
        slot: node.writer.clone(),
        events: node.events.clone(),
        own,
    };
    let rolodex_args = RolodexArgs {
        identity: Arc::clone(&parts.identity),
        rolodex: node.rolodex.clone(),
        writer: node.writer.clone(),
        slot: node.rolodex_actor.clone(),
        events: node.events.clone(),
        dial: Some(dial_fn(peers.clone(), entries.clone())),
        replicate: Some(replicate_fn(
            node.clone(),
            peers.replicators.clone(),
            replicators.clone(),
        )),
    };
    let handler = node_handler(node.clone(), tree, Some(peers.clone()));
    let control_args = ControlArgs {
        data_dir: parts.data_dir.clone(),
        handler,
    };
    let listener_args = listener_args(peers.clone());
    let starter_args = LinkStarterArgs {
        ctx: peers.clone(),
        given: parts.switchboards.clone(),
    };
    let fetcher_args = BlobFetcherArgs { ctx: peers.clone() };
    SupervisorSpec {
        name: "daemon".into(),
        strategy: Strategy::RestForOne,
        intensity: ROOT_INTENSITY,
        children: vec![
            ChildSpec::worker("store_writer", Restart::Permanent, StoreWriter, move || {
                writer_args.clone()
            }),
            ChildSpec::dynamic(
                DynamicSpec {
                    name: "replicators".into(),
                    intensity: REPLICATORS_INTENSITY,
                    max_children: ROLODEX_FOLLOWS_MAX,
                },
                replicators,
            ),
            ChildSpec::dynamic(
                DynamicSpec {
                    name: "peers".into(),
                    intensity: PEERS_INTENSITY,
                    max_children: PEERS_MAX,
                },
                peers.peers.clone(),
            ),
            ChildSpec::dynamic(
                DynamicSpec {
                    name: "entries".into(),
                    intensity: ENTRIES_INTENSITY,
                    max_children: ACTIVE_ENTRIES_MAX,
                },
                entries,
            ),
            ChildSpec::worker("rolodex", Restart::Permanent, RolodexActor, move || {
                rolodex_args.clone()
            }),
            ChildSpec::worker("listener", Restart::Permanent, Listener, move || {
                listener_args.clone()
            }),
            ChildSpec::dynamic(
                DynamicSpec {
                    name: "switchboards".into(),
                    intensity: SWITCHBOARDS_INTENSITY,
                    max_children: SB_LINKS_MAX,
                },
                peers.links.clone(),
            ),
            ChildSpec::worker("link_starter", Restart::Permanent, LinkStarter, move || {
                starter_args.clone()
            }),
            ChildSpec::worker("control", Restart::Permanent, ControlServer, move || {
                control_args.clone()
            }),
            // Last: it only reads the store and uses the connections; its crash restarts
            // nothing else.
            ChildSpec::worker("blobs", Restart::Permanent, BlobFetcher, move || {
                fetcher_args.clone()
            }),
        ],
    }
}

/// Start a dialer for an id unless one is running (the child id is the entry's id).
fn dial_fn(ctx: PeerContext, entries: DynamicSupervisorHandle) -> DialFn {
    Arc::new(move |id| {
        let (ctx, entries) = (ctx.clone(), entries.clone());
        tokio::spawn(async move {
            let args = DialerArgs { ctx, id };
            let spec = ChildSpec::worker(
                format!("entry:{id}"),
                Restart::Transient,
                Dialer,
                move || args.clone(),
            );
            if let Err(e) = entries.start_child(spec).await {
                tracing::debug!(peer = %id.short(), error = %e, "dialer not started");
            }
        });
    })
}

/// Start (wanted) or terminate (no longer wanted) the replicator of a feed.
fn replicate_fn(
    node: Node,
    registry: Replicators<ReplicatorMsg>,
    replicators: DynamicSupervisorHandle,
) -> ReplicateFn {
    Arc::new(move |feed, wanted| {
        let (node, registry, replicators) = (node.clone(), registry.clone(), replicators.clone());
        tokio::spawn(async move {
            let id = format!("feed:{feed}");
            let result = if wanted {
                let args = ReplicatorArgs {
                    node,
                    feed,
                    registry,
                };
                let spec =
                    ChildSpec::worker(id, Restart::Permanent, FeedReplicator, move || args.clone());
                replicators.start_child(spec).await.map(|_| ())
            } else {
                replicators.terminate_child(&id).await
            };
            if let Err(e) = result {
                tracing::debug!(feed = %feed.short(), wanted, error = %e, "replicator not changed");
            }
        });
    })
}

/// Reports the live tree from the root, for `kith status`.
fn reporter(root: Slot<SupervisorMsg>) -> TreeReporter {
    Arc::new(move || {
        let root: Option<ActorRef<SupervisorMsg>> = root.get();
        Box::pin(async move {
            let Some(root) = root else {
                return serde_json::json!({ "error": "the tree is starting" });
            };
            match report(&root).await {
                Ok(report) => serde_json::to_value(report).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            }
        })
    })
}
