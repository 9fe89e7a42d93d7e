//! Two daemons in separate network namespaces that reach the switchboard but not each other:
//! only the relay can carry them, and they replicate each other's posts through it — through one
//! switchboard, and through a cluster of two where each daemon uses a different node (the
//! packets then cross the cluster link between the nodes).
//!
//! ```text
//! ns a: eth0 10.99.1.2 ──veth── 10.99.1.1 va ┐
//!                                             ├─ ns sb (switchboard, no forwarding)
//! ns b: eth0 10.99.2.2 ──veth── 10.99.2.1 vb ┘
//! ```
//! Needs root and iproute2 (`.ci/run` installs it); without them the test says so and does
//! nothing. Traffic stays inside the namespaces this test makes, which it deletes at the end.

mod support;

use std::path::Path;
use std::time::Duration;

use kith::testing::eventually_blocking;
use support::netns::Lab;
use support::{identity, kith, kith_json, Home, POLL};

/// The relay-only lab: a and b each on a veth into the switchboard's namespace, which does not
/// forward, so neither can reach the other.
fn lab() -> Result<Lab, String> {
    let lab = Lab::open(&["ip"], &["sb", "a", "b"])?;
    for (side, ns, net) in [("va", "a", "1"), ("vb", "b", "2")] {
        lab.veth(("sb", side), (ns, "eth0"));
        lab.addr("sb", side, &format!("10.99.{net}.1/24"));
        lab.addr(ns, "eth0", &format!("10.99.{net}.2/24"));
    }
    // No forwarding in the switchboard's namespace: a and b cannot reach each other.
    lab.exec("sb", &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    Ok(lab)
}

#[test]
fn peers_that_cannot_reach_each_other_replicate_through_the_relay() {
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let _sb = lab.spawn("sb", &sb_dir, &["switchboard", "--listen", "0.0.0.0:7878"]);

    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let _da = lab.spawn(
        "a",
        &a.dir,
        &[
            "daemon",
            "--listen",
            "0.0.0.0:8008",
            "--switchboard",
            "10.99.1.1:7878",
        ],
    );
    let _db = lab.spawn(
        "b",
        &b.dir,
        &[
            "daemon",
            "--listen",
            "0.0.0.0:8008",
            "--switchboard",
            "10.99.2.1:7878",
        ],
    );

    // Directly, a cannot reach b.
    let direct = kith(&a.dir, &["connect", &format!("{b_id}@10.99.2.2:8008")]);
    assert!(
        !direct.status.success(),
        "a reached b directly: the lab is not isolating them"
    );

    kith_json(&a.dir, &["post", "a, from its own namespace", "--json"]);
    kith_json(&b.dir, &["post", "b, from its own namespace", "--json"]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    let has = |dir: &Path, text: &str| {
        kith_json(dir, &["timeline", "--json"])["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == text)
    };
    let took = eventually_blocking(
        "a and b replicate through the switchboard",
        Duration::from_secs(60),
        POLL,
        || has(&a.dir, "b, from its own namespace") && has(&b.dir, "a, from its own namespace"),
    );
    println!("replicated across namespaces through the relay in {took:?}");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert!(status["relay"]["forwarded_packets"].as_u64().unwrap() > 0);
}

#[test]
fn peers_on_different_nodes_of_a_cluster_replicate_through_both() {
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let homes = tempfile::tempdir().unwrap();
    let (n1_dir, n2_dir) = (homes.path().join("n1"), homes.path().join("n2"));
    let n2_key = identity(&n2_dir);
    let _n1 = lab.spawn(
        "sb",
        &n1_dir,
        &[
            "switchboard",
            "--listen",
            "0.0.0.0:7878",
            "--cluster-key",
            &n2_key,
        ],
    );
    let _n2 = lab.spawn(
        "sb",
        &n2_dir,
        &[
            "switchboard",
            "--listen",
            "0.0.0.0:7879",
            "--join",
            "127.0.0.1:7878",
        ],
    );
    eventually_blocking("the nodes link", Duration::from_secs(30), POLL, || {
        let linked = |dir: &Path| {
            kith_json(dir, &["status", "--json"])["cluster"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        };
        linked(&n1_dir) && linked(&n2_dir)
    });

    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let _da = lab.spawn(
        "a",
        &a.dir,
        &[
            "daemon",
            "--listen",
            "0.0.0.0:8008",
            "--switchboard",
            "10.99.1.1:7878",
        ],
    );
    let _db = lab.spawn(
        "b",
        &b.dir,
        &[
            "daemon",
            "--listen",
            "0.0.0.0:8008",
            "--switchboard",
            "10.99.2.1:7879",
        ],
    );
    kith_json(&a.dir, &["post", "a, on node 1", "--json"]);
    kith_json(&b.dir, &["post", "b, on node 2", "--json"]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    let has = |dir: &Path, text: &str| {
        kith_json(dir, &["timeline", "--json"])["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == text)
    };
    let took = eventually_blocking(
        "a and b replicate through the cluster",
        Duration::from_secs(60),
        POLL,
        || has(&a.dir, "b, on node 2") && has(&b.dir, "a, on node 1"),
    );
    println!("replicated across two switchboard nodes in {took:?}");
    for dir in [&n1_dir, &n2_dir] {
        let status = kith_json(dir, &["status", "--json"]);
        assert!(
            status["relay"]["forwarded_packets"].as_u64().unwrap() > 0,
            "every node relayed: {status}"
        );
    }
}
