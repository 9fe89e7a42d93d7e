//! The daemon's supervision tree — the `application.ex` of a kith node.
//!
//! ```text
//! daemon (rest_for_one, at most 5 restarts in 10 s)
//! ├── store_writer   permanent worker   the one LMDB writer; group commits
//! ├── rolodex        permanent worker   serialises rolodex changes (follow, block, …)
//! ├── replicators    dynamic supervisor one feed replicator per followed feed (issue 4)
//! ├── peers          dynamic supervisor one temporary actor per peer connection (issue 4)
//! └── control        permanent worker   the control socket that client commands talk to
//! ```
//!
//! rest_for_one because each child depends on those started before it: if the store writer
//! restarts, everything after it (which holds its slot and may have requests in flight)
//! restarts too, while a crash of the control server touches nothing else. The store and its
//! directory lock are opened before the tree and outlive it, so a restart never reopens LMDB.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kith::actors::control::{ControlArgs, ControlServer};
use kith::actors::rolodex::{RolodexActor, RolodexArgs};
use kith::actors::store_writer::{StoreWriter, StoreWriterArgs};
use kith::actors::Slot;
use kith::control::dispatch::TreeReporter;
use kith::identity::Identity;
use kith::node::Node;
use kith::rolodex::Rolodex;
use kith::store::Store;
use kith::supervisor::{
    report, ChildSpec, DynamicSpec, DynamicSupervisorHandle, Intensity, Restart, RootSupervisor, Strategy,
    SupervisorMsg, SupervisorSpec,
};
use ractor::ActorRef;

/// Restart intensity of the daemon's root: past it, the daemon exits non-zero.
pub const ROOT_INTENSITY: Intensity = Intensity { max_restarts: 5, period: Duration::from_secs(10) };

/// What the tree is built from.
pub struct DaemonParts {
    /// The data directory.
    pub data_dir: PathBuf,
    /// This node's identity.
    pub identity: Arc<Identity>,
    /// The opened store (holding the directory lock).
    pub store: Store,
}

/// The running daemon's handles.
pub struct Daemon {
    /// The root supervisor.
    pub root: RootSupervisor,
    /// The node handle.
    pub node: Node,
}

/// Build and start the tree.
pub async fn start(parts: DaemonParts) -> anyhow::Result<Daemon> {
    let rolodex = Rolodex::load(&parts.store)?;
    let node = Node {
        identity: Arc::clone(&parts.identity),
        store: parts.store.clone(),
        rolodex,
        writer: Slot::new(),
        rolodex_actor: Slot::new(),
    };
    let root_slot: Slot<SupervisorMsg> = Slot::new();
    let spec = tree(&parts, &node, reporter(root_slot.clone()));
    let root = RootSupervisor::start(spec).await?;
    root_slot.set(root.actor().clone());
    Ok(Daemon { root, node })
}

fn tree(parts: &DaemonParts, node: &Node, tree: TreeReporter) -> SupervisorSpec {
    let writer_args = StoreWriterArgs {
        store: parts.store.clone(),
        identity: Arc::clone(&parts.identity),
        rolodex: node.rolodex.clone(),
        slot: node.writer.clone(),
    };
    let rolodex_args = RolodexArgs {
        identity: Arc::clone(&parts.identity),
        rolodex: node.rolodex.clone(),
        writer: node.writer.clone(),
        slot: node.rolodex_actor.clone(),
    };
    let control_args = ControlArgs { data_dir: parts.data_dir.clone(), node: node.clone(), tree };
    SupervisorSpec {
        name: "daemon".into(),
        strategy: Strategy::RestForOne,
        intensity: ROOT_INTENSITY,
        children: vec![
            ChildSpec::worker("store_writer", Restart::Permanent, StoreWriter, move || writer_args.clone()),
            ChildSpec::worker("rolodex", Restart::Permanent, RolodexActor, move || rolodex_args.clone()),
            ChildSpec::dynamic(DynamicSpec::new("replicators"), DynamicSupervisorHandle::new("replicators")),
            ChildSpec::dynamic(DynamicSpec::new("peers"), DynamicSupervisorHandle::new("peers")),
            ChildSpec::worker("control", Restart::Permanent, ControlServer, move || control_args.clone()),
        ],
    }
}

/// Reports the live tree from the root, for `kith status`.
fn reporter(root: Slot<SupervisorMsg>) -> TreeReporter {
    Arc::new(move || {
        let root: Option<ActorRef<SupervisorMsg>> = root.get();
        Box::pin(async move {
            let Some(root) = root else { return serde_json::json!({ "error": "the tree is starting" }) };
            match report(&root).await {
                Ok(report) => serde_json::to_value(report).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            }
        })
    })
}
