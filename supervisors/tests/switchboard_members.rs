//! Only listed keys join a cluster, with real processes (the hardening issue's critical item).
//!
//! A switchboard with a fresh key that `--join`s a running one, and a raw client that claims the
//! switchboard role in its hello, are both refused in the hello with their own close code and
//! counted; neither learns who is online. A node whose key the victim lists (`--cluster-key`)
//! links as before and shares presence.

mod support;

use std::path::Path;
use std::time::Duration;

use kith::identity::FeedId;
use kith::net::hello::{GoodbyeReason, HelloError, NodeRole};
use kith::net::CloseCode;
use kith::testing::eventually_blocking;
use support::sb_client::Client;
use support::{free_port, identity, kith_json, Switchboard, POLL};

fn status(dir: &Path) -> serde_json::Value {
    kith_json(dir, &["status", "--json"])
}

fn cluster(dir: &Path) -> Vec<String> {
    status(dir)["cluster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn counter(dir: &Path, name: &str) -> u64 {
    status(dir)["counters"][name].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_switchboard_and_a_client_claiming_the_role_are_refused_and_learn_nothing() {
    let homes = tempfile::tempdir().unwrap();
    let (victim_dir, rogue_dir, member_dir) = (
        homes.path().join("victim"),
        homes.path().join("rogue"),
        homes.path().join("member"),
    );
    let (pv, pr, pm) = (free_port(), free_port(), free_port());
    let member_key = identity(&member_dir);
    let _victim = Switchboard::start_with(&victim_dir, pv, &["--cluster-key", &member_key]);
    let victim: FeedId = status(&victim_dir)["id"].as_str().unwrap().parse().unwrap();
    let _alice = Client::join(1, pv, &victim).await;

    // A switchboard with a fresh key joins the victim, pinning it as an operator would.
    let join = format!("{victim}@127.0.0.1:{pv}");
    let _rogue = Switchboard::start_with(&rogue_dir, pr, &["--join", &join]);
    let (vd, rd) = (victim_dir.clone(), rogue_dir.clone());
    tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "the victim refuses the rogue node",
            Duration::from_secs(20),
            POLL,
            || counter(&vd, "nodes_refused") >= 1,
        );
        // The rogue keeps trying; give it time to get anything through.
        std::thread::sleep(Duration::from_secs(3));
        assert!(cluster(&vd).is_empty(), "the victim linked the rogue");
        assert!(cluster(&rd).is_empty(), "the rogue linked the victim");
        assert_eq!(
            status(&rd)["online"].as_u64(),
            Some(0),
            "the rogue learnt who is online on the victim"
        );
    })
    .await
    .unwrap();

    // A raw client claiming the switchboard role: a goodbye, and its own close code.
    let before = counter(&victim_dir, "nodes_refused");
    match Client::hello(7, pv, &victim, NodeRole::Switchboard).await {
        Err(HelloError::PeerSaidGoodbye(GoodbyeReason::NotAClusterMember)) => {}
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a raw client was greeted as a cluster node"),
    }
    assert_eq!(
        HelloError::Refused(GoodbyeReason::NotAClusterMember).close_code(),
        Some(CloseCode::NotAClusterMember)
    );
    let vd = victim_dir.clone();
    tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "the claim is counted",
            Duration::from_secs(10),
            POLL,
            || counter(&vd, "nodes_refused") > before,
        )
    })
    .await
    .unwrap();
    // The same key in the daemon role is a client like any other.
    let _bob = Client::join(7, pv, &victim).await;

    // A listed node links and shares presence as before.
    let _member = Switchboard::start_with(&member_dir, pm, &["--join", &join]);
    let (vd, md) = (victim_dir.clone(), member_dir.clone());
    tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "the member links and sees who is online",
            Duration::from_secs(20),
            POLL,
            || cluster(&vd) == [member_key.clone()] && status(&md)["online"].as_u64() == Some(2),
        );
        assert!(
            status(&vd)["cluster_keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == member_key.as_str()),
            "status lists the member keys"
        );
    })
    .await
    .unwrap();
}
