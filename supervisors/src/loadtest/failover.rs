//! The failover scenario's presence watch: from the moment a spawned node is killed, read every
//! surviving node's presence count (`online` in its `kith status`, through its control socket)
//! until each lists exactly the peers connected now — none of the dead node's left, every moved
//! peer's new presence arrived — and give the time since the kill. A thread, not a task: the
//! control client is blocking, and the run's driver must not wait on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kith::limits::{LOADTEST_FAILOVER_POLL, LOADTEST_FAILOVER_WAIT};
use kith::loadtest::harness::Harness;
use kith::loadtest::metrics::Metrics;
use kith::wire::control::Request;

use super::spawn::LocalCluster;
use crate::cli::client;

/// Start watching the nodes of `cluster` other than `dead`; the thread ends with the time from
/// now until their presence was clean, or `None` past [`LOADTEST_FAILOVER_WAIT`].
pub fn watch_presence(
    cluster: &LocalCluster,
    dead: usize,
    harness: &Arc<Harness>,
) -> JoinHandle<Option<Duration>> {
    let since = Instant::now();
    let dirs: Vec<PathBuf> = cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != dead)
        .map(|(_, n)| n.dir.path().to_path_buf())
        .collect();
    let harness = Arc::clone(harness);
    std::thread::spawn(move || {
        while since.elapsed() < LOADTEST_FAILOVER_WAIT {
            if clean(&dirs, dead, &harness) {
                return Some(since.elapsed());
            }
            std::thread::sleep(LOADTEST_FAILOVER_POLL);
        }
        None
    })
}

/// Every peer of the dead node is back through another node, and every surviving node lists
/// exactly the peers connected now.
fn clean(dirs: &[PathBuf], dead: usize, harness: &Harness) -> bool {
    if harness.failed_over() < harness.planned_on(dead) {
        return false;
    }
    let connected = Metrics::get(&harness.metrics.connected);
    dirs.iter().all(|dir| {
        client::call(dir, &Request::Status)
            .ok()
            .and_then(|status| status["online"].as_u64())
            == Some(connected)
    })
}
