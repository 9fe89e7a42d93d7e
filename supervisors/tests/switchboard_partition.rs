//! A 3-node switchboard cluster cut 2 | 1 and healed, with real processes in network namespaces
//! (issue 17, item 2).
//!
//! ```text
//! ns s1: switchboard 1, daemon A (and D, started during the cut)   10.77.0.1 ┐
//! ns s2: switchboard 2, daemon B                                    10.77.0.2 ├─ ns hub: bridge
//! ns s3: switchboard 3, daemon C (and E, started during the cut)   10.77.0.3 ┘
//! ```
//! The cut is an nft table in s3 dropping everything to and from s1 and s2. While it holds,
//! daemons on both sides keep posting; each side marks the other's node down and keeps serving
//! and introducing its own clients (D, new on side 1|2, is introduced to A across nodes 1 and 2
//! and gets A's posts; E, new on side 3, is introduced to C and gets C's posts); B stops
//! gracefully on side 1|2, a leave node 3 cannot hear. After the heal every node lists exactly
//! the live presences (A, C, D, E: B is no ghost on node 3, E is not lost on nodes 1 and 2; the
//! time it took is printed beside the issue's bound of two broadcast periods plus one transfer,
//! not asserted), and replication resumes across the former cut (C gets A's posts from the cut
//! and A gets C's).
//!
//! The nodes run a 300 ms heartbeat (`--presence-broadcast-ms`, down after 6 s) so that the cut
//! outlasts the down period and the test stays short. Needs root, iproute2 and nftables (`.ci/run`
//! installs them); without them the test says so and does nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kith::testing::eventually_blocking;
use support::netns::{Lab, Proc};
use support::{head_seq, identity, kith, kith_json, Home, POLL};

/// The nodes' heartbeat period.
const BROADCAST: Duration = Duration::from_millis(300);
/// One full-state transfer of a handful of presences between two nodes on this bridge, with
/// room for a loaded 2-core machine: with two broadcast periods, the issue's bound for the heal,
/// printed beside the measured time. Speed is not asserted (the wait is bounded generously):
/// the heal also waits for the cluster link's QUIC probe timeout, which grows during the cut.
const TRANSFER: Duration = Duration::from_millis(700);

fn lab() -> Result<Lab, String> {
    let lab = Lab::open(&["ip", "nft"], &["hub", "s1", "s2", "s3"])?;
    lab.ip("hub", &["link", "add", "br0", "type", "bridge"]);
    lab.ip("hub", &["link", "set", "br0", "up"]);
    for n in 1..=3 {
        let (port, ns) = (format!("v{n}"), format!("s{n}"));
        lab.veth(("hub", &port), (&ns, "eth0"));
        lab.ip("hub", &["link", "set", &port, "master", "br0"]);
        lab.ip("hub", &["link", "set", &port, "up"]);
        lab.addr(&ns, "eth0", &format!("10.77.0.{n}/24"));
    }
    Ok(lab)
}

fn online(dir: &Path) -> u64 {
    kith_json(dir, &["status", "--json"])["online"]
        .as_u64()
        .unwrap()
}

/// Whether daemon `dir` sees `id` online, as its switchboard told it (`kith contacts`).
fn sees_online(dir: &Path, id: &str) -> bool {
    kith_json(dir, &["contacts", "--json"])["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id && c["online"] == true)
}

fn post(dir: &Path, text: &str) {
    let out = kith(dir, &["post", text]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn follow(dir: &Path, id: &str) {
    let out = kith(dir, &["follow", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Node {
    dir: PathBuf,
    _proc: Proc,
}

#[test]
fn a_cut_cluster_keeps_serving_both_sides_and_heals_without_ghosts_or_losses() {
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let started = Instant::now();
    let homes = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|n| homes.path().join(format!("sb{n}")))
        .collect();
    let keys: Vec<String> = dirs.iter().map(|d| identity(d)).collect();
    let period = BROADCAST.as_millis().to_string();
    let common = [
        "switchboard",
        "--listen",
        "0.0.0.0:7878",
        "--presence-broadcast-ms",
        &period,
    ];
    let seed = |n: usize| format!("{}@10.77.0.{}:7878", keys[n], n + 1);
    let (s1, s2) = (seed(0), seed(1));
    let args: [Vec<&str>; 3] = [
        vec!["--cluster-key", &keys[1], "--cluster-key", &keys[2]],
        vec!["--join", &s1, "--cluster-key", &keys[2]],
        vec!["--join", &s1, "--join", &s2],
    ];
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let all: Vec<&str> = common
                .iter()
                .copied()
                .chain(args[i].iter().copied())
                .collect();
            Node {
                dir: dirs[i].clone(),
                _proc: lab.spawn(&format!("s{}", i + 1), &dirs[i], &all),
            }
        })
        .collect();

    let daemon = |ns: &str, home: &Home, port: u16, node: usize| {
        let listen = format!("0.0.0.0:{port}");
        let sb = seed(node);
        lab.spawn(
            ns,
            &home.dir,
            &["daemon", "--listen", &listen, "--switchboard", &sb],
        )
    };
    let (a, b, c, d, e) = (
        Home::init(),
        Home::init(),
        Home::init(),
        Home::init(),
        Home::init(),
    );
    let (ida, idb, idc, idd, ide) = (a.id(), b.id(), c.id(), d.id(), e.id());
    let _pa = daemon("s1", &a, 8008, 0);
    let pb = daemon("s2", &b, 8008, 1);
    let _pc = daemon("s3", &c, 8008, 2);
    // Follows both ways where a pair must connect: a callee may accept only ids it follows.
    for id in [&idb, &idc, &idd, &ide] {
        follow(&a.dir, id);
    }
    follow(&b.dir, &ida);
    for id in [&ida, &idb, &ide] {
        follow(&c.dir, id);
    }
    post(&a.dir, "before the cut");
    eventually_blocking(
        "every node lists A, B, C",
        Duration::from_secs(20),
        POLL,
        || nodes.iter().all(|n| online(&n.dir) == 3),
    );
    eventually_blocking(
        "C holds A's first post",
        Duration::from_secs(20),
        POLL,
        || head_seq(&c.dir, &ida) >= 1,
    );

    let c_had_a = head_seq(&c.dir, &ida);
    // The cut: s3 drops everything to and from s1 and s2.
    lab.nft(
        "s3",
        "table inet cut {\n\
         chain in { type filter hook input priority 0; ip saddr { 10.77.0.1, 10.77.0.2 } drop; }\n\
         chain out { type filter hook output priority 0; ip daddr { 10.77.0.1, 10.77.0.2 } drop; }\n\
         }\n",
    );
    let cut_at = Instant::now();
    for i in 0..3 {
        post(&a.dir, &format!("a during the cut {i}"));
        post(&c.dir, &format!("c during the cut {i}"));
    }
    eventually_blocking(
        "each side marks the other down (20 periods of silence)",
        Duration::from_secs(20),
        POLL,
        || online(&nodes[0].dir) == 2 && online(&nodes[1].dir) == 2 && online(&nodes[2].dir) == 1,
    );
    // Each side keeps introducing its own: D (node 2) reaches A (node 1), E (node 3) reaches C.
    let _pd = daemon("s2", &d, 8009, 1);
    let _pe = daemon("s3", &e, 8009, 2);
    follow(&d.dir, &ida);
    follow(&e.dir, &idc);
    // A is shown E's presence only because E chose A (`presence_visible_to` is `follows` by
    // default); A reaches E only after the heal.
    follow(&e.dir, &ida);
    let a_seq = head_seq(&a.dir, &ida);
    let c_seq = head_seq(&c.dir, &idc);
    eventually_blocking(
        "D gets A's posts on side 1|2",
        Duration::from_secs(20),
        POLL,
        || head_seq(&d.dir, &ida) >= a_seq,
    );
    eventually_blocking(
        "E gets C's posts on side 3",
        Duration::from_secs(20),
        POLL,
        || head_seq(&e.dir, &idc) >= c_seq,
    );
    assert!(
        head_seq(&b.dir, &ida) >= 1,
        "B kept replicating A on its side"
    );
    assert_eq!(head_seq(&c.dir, &ida), c_had_a, "nothing crossed the cut");
    // B leaves on side 1|2; node 3 cannot hear it.
    pb.terminate();
    eventually_blocking(
        "side 1|2 lists A and D",
        Duration::from_secs(20),
        POLL,
        || online(&nodes[0].dir) == 2 && online(&nodes[1].dir) == 2,
    );
    assert_eq!(online(&nodes[2].dir), 2, "side 3 lists C and E");
    post(&a.dir, "a, last before the heal");
    let cut_for = cut_at.elapsed();

    // The heal.
    lab.exec("s3", &["nft", "delete", "table", "inet", "cut"]);
    let healed_at = Instant::now();
    let bound = BROADCAST * 2 + TRANSFER;
    eventually_blocking(
        "every node lists exactly A, C, D and E",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || nodes.iter().all(|n| online(&n.dir) == 4),
    );
    let converged = healed_at.elapsed();
    eprintln!("cut held {cut_for:?}; every node listed the live presences {converged:?} after the heal (bound {bound:?})");
    // Exactly the live ones, by id: node 3 never heard B leave, nodes 1 and 2 never heard E join.
    assert!(!sees_online(&c.dir, &idb), "B is a ghost on node 3");
    assert!(sees_online(&c.dir, &ida));
    assert!(sees_online(&a.dir, &ide), "E is lost on node 1");
    assert!(sees_online(&a.dir, &idc));
    assert!(!sees_online(&a.dir, &idb));
    std::thread::sleep(BROADCAST * 4);
    assert!(
        nodes.iter().all(|n| online(&n.dir) == 4),
        "and they stay converged"
    );

    // Replication resumes across the former cut.
    let (a_now, c_now) = (head_seq(&a.dir, &ida), head_seq(&c.dir, &idc));
    eventually_blocking(
        "C gets A's posts from the cut",
        Duration::from_secs(30),
        POLL,
        || head_seq(&c.dir, &ida) >= a_now,
    );
    eventually_blocking(
        "A gets C's posts from the cut",
        Duration::from_secs(30),
        POLL,
        || head_seq(&a.dir, &idc) >= c_now,
    );
    eprintln!("whole test: {:?}", started.elapsed());
}
