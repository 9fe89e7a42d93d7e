//! A peer connection actor that dies is handled by its supervisor and the peer is redialled: two
//! daemon trees in one runtime, the connection actor killed through its supervisor's cell.

mod support;

use std::time::Duration;

use kith::identity::FeedId;
use kith::rolodex::RolodexChange;
use kith::testing::eventually_async;
use kith_supervisors::trees::daemon::Daemon;
use support::in_process::daemon_tree;

const SOON: Duration = Duration::from_secs(20);
/// Poll step of the waits (`kith::testing::eventually_async`).
const POLL: Duration = Duration::from_millis(20);

fn head(d: &Daemon, feed: &FeedId) -> u64 {
    d.node
        .store
        .read()
        .unwrap()
        .head(feed)
        .unwrap()
        .map_or(0, |h| h.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_peer_connection_is_removed_by_its_supervisor_and_the_peer_redialled() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = daemon_tree(ta.path()).await;
    let mut b = daemon_tree(tb.path()).await;
    let b_id = b.node.identity.id();
    let b_addr = b.peers.endpoint.local_addr().unwrap().to_string();
    b.node.post("one".into(), None).await.unwrap();
    a.node
        .change(b_id, RolodexChange::Follow { addr: Some(b_addr) })
        .await
        .unwrap();
    eventually_async("A holds B's first post", SOON, POLL, async || {
        head(&a, &b_id) == 1
    })
    .await;

    let peers = a.peers.peers.clone();
    assert_eq!(
        peers.which_children().await.unwrap().len(),
        1,
        "one connection actor"
    );
    let sup = peers.actor().expect("the peers supervisor runs");
    let children = sup.get_cell().get_children();
    assert_eq!(
        children.len(),
        1,
        "the supervisor's one linked child is the connection actor"
    );
    let killed = children[0].get_id();
    children[0].kill();

    // The supervisor drops the dead temporary child; A's dialer redials, a new actor comes up.
    // (Actor ids are never reused; child ids carry quinn's stable id, which can be.)
    eventually_async(
        "a new connection actor replaces the killed one",
        SOON,
        POLL,
        async || {
            let now = sup.get_cell().get_children();
            now.len() == 1 && now[0].get_id() != killed && a.peers.connections.contains(&b_id)
        },
    )
    .await;
    let report = peers.report().await.unwrap();
    assert_eq!(
        report.total_restarts, 0,
        "temporary children are never restarted in place"
    );
    assert_eq!(
        report.children.len(),
        1,
        "the killed child is gone from the supervisor: {report:?}"
    );
    let now = a.peers.connections.views();
    assert_eq!(
        now[0].direction,
        kith::daemon::peer::Direction::Outbound,
        "the dialer made the new connection"
    );

    b.node.post("two".into(), None).await.unwrap();
    eventually_async(
        "A holds B's post made after the crash",
        SOON,
        POLL,
        async || head(&a, &b_id) == 2,
    )
    .await;

    a.root.shutdown().await.unwrap();
    b.root.shutdown().await.unwrap();
}
