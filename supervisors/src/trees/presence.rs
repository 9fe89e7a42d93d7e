//! The presence tracker's supervision tree: a pool of shard actors, as Phoenix.Tracker's
//! `Tracker` supervisor starts its shards.
//!
//! ```text
//! presence (one_for_one, at most 2 × shards restarts in 1 s)
//! ├── shard 0   permanent   topics hashed here; heartbeat, deltas, transfers, replica liveness
//! ├── shard 1   permanent
//! └── …
//! ```
//!
//! one_for_one: shards share nothing but the transport, so one shard's crash leaves the others
//! alone. A restarted shard comes back as a new incarnation of this replica: peers see the old
//! one go down and the new one come up, and its owners re-track, as with Phoenix. The intensity
//! follows Phoenix's pool supervisor (`max_restarts: shards * 2, max_seconds: 1`).

use std::sync::Arc;
use std::time::Duration;

use kith::presence::driver::pool::{Tracker, TrackerPool};
use kith::presence::driver::shard_actor::ShardActor;
use kith::presence::driver::transport::Transport;
use kith::supervisor::{ChildSpec, Intensity, Restart, Strategy, SupervisorSpec};

/// The presence supervisor for `tracker` (from [`TrackerPool::handle`]) over `transport`.
pub fn presence_tree(
    pool: &TrackerPool,
    tracker: &Tracker,
    transport: Arc<dyn Transport>,
    seed: u64,
) -> SupervisorSpec {
    let shards = pool.options.shard_count;
    let children = (0..shards)
        .map(|index| {
            let args = pool.shard_args(tracker, index, Arc::clone(&transport), seed);
            ChildSpec::worker(
                format!("shard:{index}"),
                Restart::Permanent,
                ShardActor,
                move || args.clone(),
            )
        })
        .collect();
    SupervisorSpec {
        name: "presence".into(),
        strategy: Strategy::OneForOne,
        intensity: Intensity {
            max_restarts: u32::from(shards) * 2,
            period: Duration::from_secs(1),
        },
        children,
    }
}
