//! Presence over real QUIC: two trackers on loopback endpoints gossip through `QuicPresence`;
//! a track on one node is listed on the other, an untrack leaves both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kith::identity::FeedId;
use kith::net::endpoint::accept;
use kith::net::PeerEndpoint;
use kith::presence::driver::pool::{Tracker, TrackerPool};
use kith::presence::driver::transport::Inbound;
use kith::presence::{Options, Owner, ReplicaName};
use kith::switchboard::cluster::presence_link::QuicPresence;
use kith::testing::eventually;

fn name(key: &SigningKey) -> ReplicaName {
    ReplicaName::new(&FeedId::from(key.verifying_key()).to_string())
}

/// Bound and poll step of the waits (`kith::testing::eventually`).
const BOUND: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackers_gossip_over_quic() {
    let (ka, kb) = (
        SigningKey::from_bytes(&[1; 32]),
        SigningKey::from_bytes(&[2; 32]),
    );
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = PeerEndpoint::bind(local, &ka).unwrap();
    let b = PeerEndpoint::bind(local, &kb).unwrap();
    let b_addr = b.local_addr().unwrap();

    let pool = TrackerPool::new(Options {
        shard_count: 2,
        ..Options::with_periods(50, 2, 1_000)
    })
    .unwrap();
    let (link_a, link_b) = (QuicPresence::new(name(&ka)), QuicPresence::new(name(&kb)));
    let ta: Tracker = pool
        .start(name(&ka).as_str(), Arc::new(link_a.clone()), 1)
        .await
        .unwrap();
    let tb: Tracker = pool
        .start(name(&kb).as_str(), Arc::new(link_b.clone()), 2)
        .await
        .unwrap();

    let accepting = tokio::spawn(async move {
        let incoming = b.incoming().await.unwrap();
        let conn = accept(incoming).await.unwrap();
        (b, conn)
    });
    let (conn_ab, key) = a.dial(b_addr, kb.verifying_key()).await.unwrap();
    assert_eq!(key, kb.verifying_key());
    let (_b, (conn_ba, client_key)) = accepting.await.unwrap();
    assert_eq!(client_key, ka.verifying_key());

    link_a.attach(name(&kb), conn_ab, Arc::new(ta.clone()) as Arc<dyn Inbound>);
    link_b.attach(name(&ka), conn_ba, Arc::new(tb.clone()) as Arc<dyn Inbound>);

    ta.track(Owner(1), "online", "alice", b"writing".to_vec())
        .await
        .unwrap();
    eventually("b lists alice", BOUND, POLL, || {
        tb.list("online").iter().any(|p| p.row.key == "alice")
    })
    .await;
    let seen = tb.list("online");
    assert_eq!(seen[0].row.meta, b"writing".to_vec());

    tb.track(Owner(7), "online", "bob", vec![]).await.unwrap();
    eventually("a lists bob", BOUND, POLL, || {
        ta.list("online").iter().any(|p| p.row.key == "bob")
    })
    .await;

    ta.untrack(Owner(1), "online", "alice").await.unwrap();
    eventually("alice leaves b", BOUND, POLL, || {
        tb.list("online").iter().all(|p| p.row.key != "alice")
    })
    .await;
}
