//! Both sides dial at once (introductions issue, item 3): two daemon trees in one runtime dial
//! each other at the same moment, 50 times in a row. Each time both dials succeed well before
//! the hello timeout (it used to stall 5–10 s: each node's outgoing hello waited for the other's
//! inbound connection, queued behind that node's own outgoing one in its `peers` supervisor), and
//! exactly one connection remains, the same one on both sides.

mod support;

use std::time::{Duration, Instant};

use kith::daemon::connect::connect;
use kith::daemon::peer::Direction;
use kith::limits::HELLO_TIMEOUT;
use kith::testing::eventually_async;
use kith_supervisors::trees::daemon::Daemon;
use support::in_process::daemon_tree;

const ROUNDS: usize = 50;
const POLL: Duration = Duration::from_millis(10);

/// Stop every connection actor of `d` and wait until its table is empty.
async fn hang_up(d: &Daemon) {
    for child in d.peers.peers.which_children().await.unwrap() {
        let _ = d.peers.peers.terminate_child(&child).await;
    }
    eventually_async(
        "the connections are gone",
        HELLO_TIMEOUT,
        POLL,
        async || d.peers.connections.is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_dials_settle_on_one_connection_without_waiting_for_a_timeout() {
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (daemon_tree(ta.path()).await, daemon_tree(tb.path()).await);
    let (a_id, b_id) = (a.node.identity.id(), b.node.identity.id());
    let to_b = format!("{b_id}@{}", b.peers.endpoint.local_addr().unwrap());
    let to_a = format!("{a_id}@{}", a.peers.endpoint.local_addr().unwrap());
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        let started = Instant::now();
        let (ab, ba) = tokio::join!(connect(&a.peers, &to_b), connect(&b.peers, &to_a));
        let took = started.elapsed();
        assert!(ab.is_ok() && ba.is_ok(), "round {round}: {ab:?} {ba:?}");
        assert!(
            took < HELLO_TIMEOUT,
            "round {round}: the crossing dials took {took:?}, as long as a hello timeout"
        );
        slowest = slowest.max(took);
        eventually_async("one connection each way", HELLO_TIMEOUT, POLL, async || {
            a.peers.connections.len() == 1
                && b.peers.connections.len() == 1
                && a.peers.peers.which_children().await.unwrap().len() == 1
                && b.peers.peers.which_children().await.unwrap().len() == 1
        })
        .await;
        let (va, vb) = (a.peers.connections.views(), b.peers.connections.views());
        let (da, db) = (va[0].direction, vb[0].direction);
        assert_ne!(da, db, "round {round}: both sides kept the same connection");
        assert!(matches!(
            (da, db),
            (Direction::Outbound, Direction::Inbound) | (Direction::Inbound, Direction::Outbound)
        ));
        hang_up(&a).await;
        hang_up(&b).await;
    }
    println!("{ROUNDS} rounds of crossing dials; the slowest settled in {slowest:?}");
}
