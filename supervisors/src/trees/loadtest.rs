//! The load-test harness's supervision tree — `kith loadtest`.
//!
//! ```text
//! loadtest (one_for_one, at most 3 restarts in 10 s)
//! └── peers   dynamic supervisor   one transient simulated peer per id (kith::loadtest::peer)
//! ```
//!
//! Simulated peers are **transient**: a peer that crashes (its connection lost mid-run) is
//! restarted, plays the same part again, and is counted in the report's `restarts`; a peer that
//! stops normally (it gave up connecting, or the run ended) is not. The peers supervisor allows
//! as many restarts in 10 s as there are peers (at least 10): a switchboard that drops every
//! client at once costs each peer one restart, while a peer in a crash loop soon exhausts it and
//! the run ends with the tree's error rather than spinning. Peers share nothing but the
//! harness's context, hence one_for_one.

use std::time::Duration;

use kith::limits::LOADTEST_PEERS_MAX;
use kith::supervisor::{
    ChildSpec, DynamicSpec, DynamicSupervisorHandle, Intensity, Restart, RootSupervisor, Strategy,
    SupervisorSpec,
};

/// Restart intensity of the harness's root.
const ROOT_INTENSITY: Intensity = Intensity {
    max_restarts: 3,
    period: Duration::from_secs(10),
};
/// The window of the peers supervisor's intensity.
const PEERS_PERIOD: Duration = Duration::from_secs(10);
/// Fewest restarts the peers supervisor allows in its window.
const PEERS_RESTARTS_MIN: u32 = 10;

/// A running harness tree and the handle its driver starts peers through.
pub struct LoadtestTree {
    /// The root supervisor.
    pub root: RootSupervisor,
    /// The peers' dynamic supervisor.
    pub peers: DynamicSupervisorHandle,
}

/// Build and start the tree for a run of `peers` simulated peers.
pub async fn start(peers: u64) -> anyhow::Result<LoadtestTree> {
    let handle = DynamicSupervisorHandle::for_children("peers", Restart::Transient);
    let restarts = u32::try_from(peers)
        .unwrap_or(u32::MAX)
        .max(PEERS_RESTARTS_MIN);
    let spec = SupervisorSpec {
        name: "loadtest".into(),
        strategy: Strategy::OneForOne,
        intensity: ROOT_INTENSITY,
        children: vec![ChildSpec::dynamic(
            DynamicSpec {
                name: "peers".into(),
                intensity: Intensity {
                    max_restarts: restarts,
                    period: PEERS_PERIOD,
                },
                max_children: LOADTEST_PEERS_MAX,
            },
            handle.clone(),
        )],
    };
    let root = RootSupervisor::start(spec).await?;
    Ok(LoadtestTree {
        root,
        peers: handle,
    })
}
