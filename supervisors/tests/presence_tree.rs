//! The presence supervisor: a pool of shard actors under a one_for_one supervisor, three nodes
//! over the in-memory transport. A crashed shard is restarted as a new incarnation; peers drop
//! the old incarnation's presences and learn the new ones; the other shards are untouched.

use std::sync::Arc;
use std::time::Duration;

use kith::presence::driver::memory_transport::{MemoryNetConfig, MemoryNetwork};
use kith::presence::driver::pool::{shard_for, Tracker, TrackerPool};
use kith::presence::driver::transport::Inbound;
use kith::presence::{Options, Owner};
use kith::supervisor::{report, RootSupervisor, Strategy};
use kith::testing::eventually;
use kith_supervisors::trees::presence::presence_tree;

const SHARDS: u16 = 4;

fn pool() -> TrackerPool {
    TrackerPool::new(Options {
        shard_count: SHARDS,
        ..Options::with_periods(50, 2, 1_000)
    })
    .unwrap()
}

async fn node(net: &MemoryNetwork, name: &str, seed: u64) -> (Tracker, RootSupervisor) {
    let pool = pool();
    let tracker = pool.handle(name);
    let spec = presence_tree(&pool, &tracker, Arc::new(net.transport(name)), seed);
    let root = RootSupervisor::start(spec).await.unwrap();
    net.attach(name, Arc::new(tracker.clone()) as Arc<dyn Inbound>);
    (tracker, root)
}

/// Bound and poll step of the waits (`kith::testing::eventually`).
const BOUND: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

fn keys(t: &Tracker, topic: &str) -> Vec<String> {
    let mut keys: Vec<String> = t
        .list(topic)
        .into_iter()
        .map(|p| p.row.key.clone())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_shard_is_restarted_and_peers_converge() {
    let net = MemoryNetwork::new(MemoryNetConfig::default(), 3);
    let (a, root_a) = node(&net, "a", 1).await;
    let (b, _root_b) = node(&net, "b", 2).await;
    let (c, _root_c) = node(&net, "c", 3).await;

    let tree = report(root_a.actor()).await.unwrap();
    assert_eq!(tree.strategy, Strategy::OneForOne);
    assert_eq!(tree.children.len(), usize::from(SHARDS));

    a.track(Owner(1), "lobby", "alice", b"hi".to_vec())
        .await
        .unwrap();
    a.track(Owner(2), "other", "bob", vec![]).await.unwrap();
    eventually("b and c list alice", BOUND, POLL, || {
        keys(&b, "lobby") == ["alice"] && keys(&c, "lobby") == ["alice"]
    })
    .await;

    // Crash the shard that holds "lobby".
    let index = shard_for("lobby", SHARDS);
    let other = shard_for("other", SHARDS);
    let before = a.shard_actor(index).unwrap().get_id();
    a.shard_actor(index).unwrap().kill();
    eventually("the shard is restarted", BOUND, POLL, || {
        a.shard_actor(index).is_some_and(|s| s.get_id() != before)
    })
    .await;
    let tree = report(root_a.actor()).await.unwrap();
    let restarted = &tree.children[usize::from(index)];
    assert_eq!(restarted.restart_count, 1);
    assert_eq!(tree.total_restarts, 1);

    // The old incarnation's presences go away everywhere; the new incarnation's arrive.
    eventually(
        "alice of the old incarnation is gone on b",
        BOUND,
        POLL,
        || keys(&b, "lobby").is_empty(),
    )
    .await;
    a.track(Owner(3), "lobby", "carol", vec![]).await.unwrap();
    eventually("carol reaches b and c", BOUND, POLL, || {
        keys(&b, "lobby") == ["carol"] && keys(&c, "lobby") == ["carol"]
    })
    .await;
    // A shard that did not crash kept its presences (one_for_one).
    if other != index {
        assert_eq!(keys(&b, "other"), ["bob"]);
    }
}
