//! The tracker actors over the in-memory transport, on a paused tokio clock: ports of
//! Phoenix's `pool_test.exs` (pool sizes 1, 2, 8, 512) and multi-node replication through real
//! shard actors, diff subscribers and the concurrently readable views.

use std::sync::Arc;
use std::time::Duration;

use kith::presence::driver::memory_transport::{MemoryNetConfig, MemoryNetwork};
use kith::presence::driver::pool::{Tracker, TrackerPool};
use kith::presence::driver::transport::Inbound;
use kith::presence::{Options, Owner};
use kith::testing::within;

fn opts(shards: u16) -> Options {
    Options {
        shard_count: shards,
        ..Options::with_periods(100, 2, 1_500)
    }
}

async fn node(net: &MemoryNetwork, name: &str, shards: u16, seed: u64) -> Tracker {
    let pool = TrackerPool::new(opts(shards)).unwrap();
    let t = pool
        .start(name, Arc::new(net.transport(name)), seed)
        .await
        .unwrap();
    net.attach(name, Arc::new(t.clone()) as Arc<dyn Inbound>);
    t
}

/// Poll step of the waits (`kith::testing::within`), on the paused clock.
const POLL: Duration = Duration::from_millis(10);

fn keys(t: &Tracker, topic: &str) -> Vec<String> {
    t.list(topic)
        .into_iter()
        .map(|p| p.row.key.clone())
        .collect()
}

async fn pool_suite(shards: u16) {
    let net = MemoryNetwork::new(MemoryNetConfig::default(), 1);
    let name = format!("pool{shards}");
    let t = node(&net, &name, shards, 7).await;
    let me = Owner(1);

    let p = t.track(me, "topic", "me", b"name".to_vec()).await.unwrap();
    let listed = t.list("topic");
    assert_eq!(listed, vec![p.clone()]);

    for i in 0..100 {
        t.track(me, &format!("topic{i}"), "me", vec![])
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            keys(&t, &format!("topic{i}")),
            vec!["me"],
            "topic{i} with {shards} shards"
        );
    }
    for i in 0..50 {
        t.untrack(me, &format!("topic{i}"), "me").await.unwrap();
    }
    assert!((0..50).all(|i| t.list(&format!("topic{i}")).is_empty()));
    t.untrack_owner(me).await.unwrap();
    assert!((0..100).all(|i| t.list(&format!("topic{i}")).is_empty()));
    assert!(t.list("topic").is_empty());

    let old = t.track(me, "topic", "me", b"old".to_vec()).await.unwrap();
    let new = t
        .update(me, "topic", "me", |_| b"new thing".to_vec())
        .await
        .unwrap();
    assert_eq!(new.row.meta, b"new thing".to_vec());
    assert_ne!(new.dot, old.dot);
    let fun = t
        .update(me, "topic", "me", |m| [m.as_slice(), b"!"].concat())
        .await
        .unwrap();
    assert_eq!(fun.row.meta, b"new thing!".to_vec());
    assert_eq!(t.list("topic"), vec![fun]);

    t.graceful_permdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(t.list("topic").is_empty());
    net.detach(&name);
    let again = node(&net, &name, shards, 8).await;
    assert!(again.list("topic").is_empty());
    again.graceful_permdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pool_of_1() {
    pool_suite(1).await;
}

#[tokio::test(start_paused = true)]
async fn pool_of_2() {
    pool_suite(2).await;
}

#[tokio::test(start_paused = true)]
async fn pool_of_8() {
    pool_suite(8).await;
}

#[tokio::test(start_paused = true)]
async fn pool_of_512() {
    pool_suite(512).await;
}

#[tokio::test(start_paused = true)]
async fn three_nodes_replicate_partition_and_heal() {
    let cfg = MemoryNetConfig {
        latency_min: Duration::from_millis(1),
        latency_max: Duration::from_millis(20),
        drop_rate: 0.05,
    };
    let net = MemoryNetwork::new(cfg, 42);
    let a = node(&net, "rep-a", 4, 1).await;
    let b = node(&net, "rep-b", 4, 2).await;
    let c = node(&net, "rep-c", 4, 3).await;
    let mut diffs = c.subscribe();

    a.track(Owner(1), "room", "alice", vec![]).await.unwrap();
    b.track(Owner(2), "room", "bob", vec![]).await.unwrap();
    assert!(
        within(Duration::from_millis(3_000), POLL, || {
            keys(&c, "room") == ["alice", "bob"]
        })
        .await,
        "c lists {:?}",
        keys(&c, "room")
    );
    let first = diffs.recv().await.unwrap();
    assert_eq!(first.joins.len(), 1);

    net.partition(&["rep-a"], &["rep-b", "rep-c"]);
    a.update(Owner(1), "room", "alice", |_| b"away".to_vec())
        .await
        .unwrap();
    c.track(Owner(3), "room", "carol", vec![]).await.unwrap();
    b.untrack(Owner(2), "room", "bob").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // a is down for c after the down period (400 ms): alice hidden there.
    assert_eq!(keys(&c, "room"), ["carol"]);
    net.heal();
    let converged = within(Duration::from_millis(1_000), POLL, || {
        [&a, &b, &c]
            .iter()
            .all(|t| keys(t, "room") == ["alice", "carol"])
            && c.list("room")[0].row.meta == b"away".to_vec()
    })
    .await;
    assert!(
        converged,
        "a {:?} b {:?} c {:?}",
        keys(&a, "room"),
        keys(&b, "room"),
        keys(&c, "room")
    );
    for t in [&a, &b, &c] {
        t.graceful_permdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_permdown_is_seen_at_once_and_shard_count_mismatch_never_meets() {
    let net = MemoryNetwork::new(MemoryNetConfig::default(), 9);
    let a = node(&net, "gp-a", 2, 1).await;
    let b = node(&net, "gp-b", 2, 2).await;
    let odd = node(&net, "gp-odd", 3, 3).await;
    b.track(Owner(1), "lobby", "bob", vec![]).await.unwrap();
    odd.track(Owner(1), "lobby", "odd", vec![]).await.unwrap();
    assert!(
        within(Duration::from_millis(3_000), POLL, || {
            keys(&a, "lobby") == ["bob"]
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        keys(&a, "lobby"),
        ["bob"],
        "a node with another shard count is refused"
    );
    assert_eq!(keys(&odd, "lobby"), ["odd"]);
    b.graceful_permdown().await.unwrap();
    assert!(
        within(Duration::from_millis(100), POLL, || {
            a.list("lobby").is_empty()
        })
        .await,
        "dropped within a round trip"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..2 {
        assert!(
            a.replicas(i)
                .await
                .unwrap()
                .iter()
                .all(|r| r.r#ref.name.as_str() != "gp-b"),
            "shard {i}"
        );
    }
    a.graceful_permdown().await.unwrap();
    odd.graceful_permdown().await.unwrap();
}

/// Issue 13: a node restarted with its clock stepped back must be accepted by its peers at
/// once, not refused as stale until its old incarnation is permdowned (1.5 s here). The first
/// restart draws its vsn from the clock alone (what every restart did before the floor file)
/// and shows the refusal; the second uses the floor kept in the node's data directory.
#[tokio::test(start_paused = true)]
async fn a_restart_with_the_clock_stepped_back_is_accepted_at_once() {
    use kith::presence::driver::incarnation::{Incarnations, MicrosClock};
    use std::sync::atomic::{AtomicU64, Ordering};

    let net = MemoryNetwork::new(MemoryNetConfig::default(), 13);
    let pool = TrackerPool::new(opts(2)).unwrap();
    let a = node(&net, "vsn-a", 2, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let wall = Arc::new(AtomicU64::new(5_000_000_000));
    let read = Arc::clone(&wall);
    let clock: MicrosClock = Arc::new(move || read.load(Ordering::SeqCst));
    let start_b = |inc: Incarnations| {
        let tracker = pool.handle_with("vsn-b", Arc::new(inc));
        let net = &net;
        let pool = &pool;
        async move {
            let t = pool
                .start_handle(tracker, Arc::new(net.transport("vsn-b")), 2)
                .await
                .unwrap();
            net.attach("vsn-b", Arc::new(t.clone()) as Arc<dyn Inbound>);
            t
        }
    };
    let crash = |t: &Tracker| {
        net.detach("vsn-b");
        for i in 0..2 {
            if let Some(s) = t.shard_actor(i) {
                s.stop(None);
            }
        }
    };
    let topic = "room";
    let incarnation_of_b = |reps: Vec<kith::presence::replica::Replica>| {
        reps.iter()
            .find(|r| r.r#ref.name.as_str() == "vsn-b")
            .map(|r| r.r#ref.vsn)
    };
    let shard = kith::presence::driver::pool::shard_for(topic, 2);

    // First life, with the floor file.
    let b = start_b(Incarnations::open_with_clock(dir.path(), Arc::clone(&clock)).unwrap()).await;
    b.track(Owner(1), topic, "bob-1", vec![]).await.unwrap();
    assert!(
        within(Duration::from_millis(1_000), POLL, || keys(&a, topic)
            == ["bob-1"])
        .await
    );
    let v1 = incarnation_of_b(a.replicas(shard).await.unwrap()).unwrap();

    // Crash; the clock steps back a minute; restart from the clock alone: refused as stale.
    crash(&b);
    wall.fetch_sub(60_000_000, Ordering::SeqCst);
    let b = start_b(Incarnations::in_memory_with_clock(Arc::clone(&clock))).await;
    b.track(Owner(2), topic, "bob-2", vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !keys(&a, topic).contains(&"bob-2".to_string()),
        "a lower vsn is refused until permdown"
    );
    assert_eq!(incarnation_of_b(a.replicas(shard).await.unwrap()), Some(v1));

    // Crash again; restart with the floor file: a larger vsn, accepted at once.
    crash(&b);
    let inc = Incarnations::open_with_clock(dir.path(), Arc::clone(&clock)).unwrap();
    let b = start_b(inc).await;
    b.track(Owner(3), topic, "bob-3", vec![]).await.unwrap();
    assert!(
        within(Duration::from_millis(300), POLL, || keys(&a, topic)
            == ["bob-3"])
        .await,
        "a lists {:?}",
        keys(&a, topic)
    );
    let v3 = incarnation_of_b(a.replicas(shard).await.unwrap()).unwrap();
    assert!(v3 > v1, "{v3} > {v1}");
    a.graceful_permdown().await.unwrap();
    b.graceful_permdown().await.unwrap();
}
