//! Hole punching through real NATs: two daemons behind separate masquerading routers (Linux
//! conntrack: endpoint-independent mapping, address-and-port-dependent filtering, the common
//! "port-restricted cone") reach a switchboard on a public segment but cannot route to each
//! other. After the switchboard introduces them they must end up on a direct path through the
//! NATs' mappings: the switchboard's relayed byte count stops growing while posts replicate.
//!
//! ```text
//! peer_a 10.99.1.2 ─lan0─ nat_a (10.99.1.1 | pub0 10.99.0.11) ─┐
//! peer_b 10.99.2.2 ─lan0─ nat_b (10.99.2.1 | pub0 10.99.0.12) ─┼─ br0 in ns sw (10.99.0.0/24)
//!                                         sb eth0 10.99.0.10 ──┘   ("public" segment)
//! ```
//! The routers have no default route, so the other side's private network is unroutable, and
//! their input chains drop unsolicited packets on the public side (otherwise an early punch
//! would make the router itself claim the port; see /work/shared/research/netns-nat-lab.md).
//! Needs root, iproute2 and nftables (`.ci/run` installs them); without them the test says so
//! and passes. Only 10.99.x.x addresses inside namespaces the test makes, deleted at the end.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::netns::Lab;
use support::{connection, kith, kith_json, timeline_texts, wait_for, Home};

/// The port every daemon listens on (masquerade keeps it when the mapping is free).
const PORT: &str = "8008";
/// Deadline for anything that should take a second or two.
const SOON: Duration = Duration::from_secs(20);

/// The NAT lab of the research note: a bridge, the switchboard, two routers, two peers.
fn lab() -> Result<Lab, String> {
    let lab = Lab::open(&["ip", "nft"], &["sw", "sb", "nat_a", "nat_b", "peer_a", "peer_b"])?;
    lab.ip("sw", &["link", "add", "br0", "type", "bridge"]);
    lab.ip("sw", &["link", "set", "br0", "up"]);
    lab.veth(("sw", "sw-sb"), ("sb", "eth0"));
    lab.ip("sw", &["link", "set", "sw-sb", "master", "br0", "up"]);
    lab.addr("sb", "eth0", "10.99.0.10/24");
    router(&lab, "a", 1, 11);
    router(&lab, "b", 2, 12);
    Ok(lab)
}

/// `nat_SIDE` (public 10.99.0.PUBLIC on the bridge, private 10.99.NET.1) and `peer_SIDE`
/// (10.99.NET.2) behind it.
fn router(lab: &Lab, side: &str, net: u8, public: u8) {
    let (nat, peer, port) = (format!("nat_{side}"), format!("peer_{side}"), format!("sw-n{side}"));
    lab.veth(("sw", &port), (&nat, "pub0"));
    lab.ip("sw", &["link", "set", &port, "master", "br0", "up"]);
    lab.addr(&nat, "pub0", &format!("10.99.0.{public}/24"));
    lab.veth((&nat, "lan0"), (&peer, "eth0"));
    lab.addr(&nat, "lan0", &format!("10.99.{net}.1/24"));
    lab.addr(&peer, "eth0", &format!("10.99.{net}.2/24"));
    lab.ip(&peer, &["route", "add", "default", "via", &format!("10.99.{net}.1")]);
    lab.exec(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.nft(&nat, &cone_nat(net));
}

/// Masquerade the private network out of pub0; let in only replies (conntrack) from outside.
fn cone_nat(net: u8) -> String {
    format!(
        r#"table ip nat {{
  chain post {{ type nat hook postrouting priority srcnat; oifname "pub0" ip saddr 10.99.{net}.0/24 masquerade; }}
}}
table inet fw {{
  chain input {{ type filter hook input priority 0; policy accept;
    iifname "pub0" ct state != {{ established, related }} counter drop; }}
  chain forward {{ type filter hook forward priority 0; policy drop;
    ct state {{ established, related }} accept; iifname "lan0" oifname "pub0" accept; }}
}}
"#
    )
}

fn post(dir: &Path, text: &str) {
    kith_json(dir, &["post", text, "--json"]);
}

/// Whether `dir`'s timeline has a post saying `text`.
fn has(dir: &Path, text: &str) -> bool {
    timeline_texts(dir).iter().any(|t| t == text)
}

/// Bytes the switchboard has relayed so far.
fn forwarded(sb_dir: &Path) -> u64 {
    kith_json(sb_dir, &["status", "--json"])["relay"]["forwarded_bytes"].as_u64().expect("relay counters")
}

/// The address `dir`'s daemon has its connection with `peer` on, if connected.
fn peer_addr(dir: &Path, peer: &str) -> Option<String> {
    connection(dir, peer).and_then(|c| c["addr"].as_str().map(str::to_string))
}

#[test]
fn peers_behind_cone_nats_punch_a_direct_path() {
    let started = Instant::now();
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let _sb = lab.spawn("sb", &sb_dir, &["switchboard", "--listen", "10.99.0.10:7878"]);
    let sb_id = kith_json(&sb_dir, &["status", "--json"])["id"].as_str().unwrap().to_string();
    let target = format!("{sb_id}@10.99.0.10:7878");

    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let listen = format!("0.0.0.0:{PORT}");
    let args = ["daemon", "--listen", listen.as_str(), "--switchboard", target.as_str()];
    let _da = lab.spawn("peer_a", &a.dir, &args);
    let _db = lab.spawn("peer_b", &b.dir, &args);
    wait_for("both daemons join the switchboard", SOON, || kith_json(&sb_dir, &["status", "--json"])["online"] == 2);

    // The private networks are unroutable from each other (as on the Internet).
    let direct = kith(&a.dir, &["connect", &format!("{b_id}@10.99.2.2:{PORT}")]);
    assert!(!direct.status.success(), "a reached b's private address: the lab is not isolating them");

    post(&a.dir, "a, behind nat_a");
    post(&b.dir, "b, behind nat_b");
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    let took = wait_for("a and b replicate each other's posts", SOON, || {
        has(&a.dir, "b, behind nat_b") && has(&b.dir, "a, behind nat_a")
    });
    println!("introduced and replicated {took:?} after the follows");

    // Direct: each side talks to the other's NAT mapping, not to the relay's fd00::/8 address.
    let (b_public, a_public) = (format!("10.99.0.12:{PORT}"), format!("10.99.0.11:{PORT}"));
    wait_for("the connection is direct, through both NATs", SOON, || {
        peer_addr(&a.dir, &b_id).as_ref() == Some(&b_public) && peer_addr(&b.dir, &a_id).as_ref() == Some(&a_public)
    });

    let before = forwarded(&sb_dir);
    for i in 0..50 {
        post(&b.dir, &format!("live {i} from b"));
    }
    post(&a.dir, "live from a");
    wait_for("the live posts arrive", SOON, || {
        has(&a.dir, "live 49 from b") && has(&b.dir, "live from a")
    });
    let grown = forwarded(&sb_dir) - before;
    println!("switchboard relayed {before} bytes before the direct path, {grown} more during 51 posts");
    assert!(grown < 2_000, "the switchboard still carries the traffic: {grown} bytes for 51 posts");
    assert_eq!(peer_addr(&a.dir, &b_id), Some(b_public), "a's connection left the direct path");
    println!("whole test (lab, processes, replication) took {:?}", started.elapsed());
}
