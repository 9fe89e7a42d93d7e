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
//!
//! The second case makes nat_b drop every QUIC handshake that A starts toward B, so only B's
//! dials can open the path (through nat_a's mapping, which A's failed punch opened): the direct
//! path must win even when the caller's own punch fails and it falls back to the relay.
//!
//! The third case cuts every path between the NATs, so the pair settles on the relay; once the
//! cut is lifted, the pair must move to the direct path by itself (the dialler's re-punch).
//!
//! Needs root, iproute2 and nftables (`.ci/run` installs them); without them the tests say so
//! and pass. Only 10.99.x.x addresses inside namespaces the tests make, deleted at the end.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kith::limits::{PUNCH_TIMEOUT, REPUNCH_BACKOFF_MIN};
use kith::testing::eventually_blocking;
use support::netns::{Lab, Proc};
use support::{connection, head_seq, kith, kith_json, seed_posts, timeline_texts, Home, POLL};

/// The port every daemon listens on (masquerade keeps it when the mapping is free).
const PORT: &str = "8008";
/// Deadline for anything that should take a second or two.
const SOON: Duration = Duration::from_secs(20);
/// After the follows, every punch (the caller's, the callee's dial-back, a second introduction
/// from a redialling dialer) and any fallback to the relay has happened within this.
const SETTLED: Duration = PUNCH_TIMEOUT.saturating_mul(3);
/// Relayed bytes allowed while 51 posts replicate on the direct path (a relayed handshake alone
/// is about 7 KB, a relayed post about 1 KB).
const RELAYED_MAX: u64 = 2_000;

/// The NAT lab of the research note: a bridge, the switchboard, two routers, two peers.
fn lab() -> Result<Lab, String> {
    lab_with(cone_nat)
}

/// The lab with each router's rules made by `nat`.
fn lab_with(nat: fn(u8) -> String) -> Result<Lab, String> {
    let lab = Lab::open(
        &["ip", "nft"],
        &["sw", "sb", "nat_a", "nat_b", "peer_a", "peer_b"],
    )?;
    lab.ip("sw", &["link", "add", "br0", "type", "bridge"]);
    lab.ip("sw", &["link", "set", "br0", "up"]);
    lab.veth(("sw", "sw-sb"), ("sb", "eth0"));
    lab.ip("sw", &["link", "set", "sw-sb", "master", "br0", "up"]);
    lab.addr("sb", "eth0", "10.99.0.10/24");
    router(&lab, "a", 1, 11, nat);
    router(&lab, "b", 2, 12, nat);
    Ok(lab)
}

/// `nat_SIDE` (public 10.99.0.PUBLIC on the bridge, private 10.99.NET.1) and `peer_SIDE`
/// (10.99.NET.2) behind it.
fn router(lab: &Lab, side: &str, net: u8, public: u8, nat: fn(u8) -> String) {
    let rules = nat;
    let (nat, peer, port) = (
        format!("nat_{side}"),
        format!("peer_{side}"),
        format!("sw-n{side}"),
    );
    lab.veth(("sw", &port), (&nat, "pub0"));
    lab.ip("sw", &["link", "set", &port, "master", "br0", "up"]);
    lab.addr(&nat, "pub0", &format!("10.99.0.{public}/24"));
    lab.veth((&nat, "lan0"), (&peer, "eth0"));
    lab.addr(&nat, "lan0", &format!("10.99.{net}.1/24"));
    lab.addr(&peer, "eth0", &format!("10.99.{net}.2/24"));
    lab.ip(
        &peer,
        &["route", "add", "default", "via", &format!("10.99.{net}.1")],
    );
    lab.exec(&nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.nft(&nat, &rules(net));
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

/// A symmetric NAT: as [`cone_nat`], but every flow gets a random source port, so the mapping
/// toward the switchboard is not the one toward the other peer and no punch can get through.
fn symmetric_nat(net: u8) -> String {
    cone_nat(net).replace("masquerade;", "masquerade fully-random;")
}

/// On nat_b, before conntrack: drop the QUIC packets that start a handshake from A's side. A
/// client's first Initials are the only long-header packets whose destination connection id
/// is not 8 bytes (quinn picks a random 20-byte one; every later packet carries an id chosen
/// by a kith endpoint, which are 8 bytes: `CID_BYTES` in src/net/endpoint.rs). B's own dials,
/// and A's answers to them, pass.
const NO_HANDSHAKES_FROM_A: &str = r#"table inet strict {
  chain pre { type filter hook prerouting priority -300;
    iifname "pub0" ip saddr 10.99.0.11 @th,64,1 1 @th,104,8 != 8 counter drop; }
}
"#;

/// A switchboard and two daemons in the lab, joined, not yet following each other.
struct Nodes {
    sb_dir: PathBuf,
    a: Home,
    b: Home,
    a_id: String,
    b_id: String,
    _procs: [Proc; 3],
    _sb_home: tempfile::TempDir,
}

fn start(lab: &Lab) -> Nodes {
    start_seeded(lab, 0)
}

/// As [`start`], with `posts` posts already in A's feed.
fn start_seeded(lab: &Lab, posts: usize) -> Nodes {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let sb = lab.spawn(
        "sb",
        &sb_dir,
        &["switchboard", "--listen", "10.99.0.10:7878"],
    );
    let sb_id = kith_json(&sb_dir, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let target = format!("{sb_id}@10.99.0.10:7878");

    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    if posts > 0 {
        seed_posts(&a.dir, posts);
    }
    let listen = format!("0.0.0.0:{PORT}");
    let args = [
        "daemon",
        "--listen",
        listen.as_str(),
        "--switchboard",
        target.as_str(),
    ];
    let (da, db) = (
        lab.spawn("peer_a", &a.dir, &args),
        lab.spawn("peer_b", &b.dir, &args),
    );
    eventually_blocking("both daemons join the switchboard", SOON, POLL, || {
        kith_json(&sb_dir, &["status", "--json"])["online"] == 2
    });
    Nodes {
        sb_dir,
        a,
        b,
        a_id,
        b_id,
        _procs: [sb, da, db],
        _sb_home: sb_home,
    }
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
    kith_json(sb_dir, &["status", "--json"])["relay"]["forwarded_bytes"]
        .as_u64()
        .expect("relay counters")
}

/// The address `dir`'s daemon has its connection with `peer` on, if connected.
fn peer_addr(dir: &Path, peer: &str) -> Option<String> {
    connection(dir, peer).and_then(|c| c["addr"].as_str().map(str::to_string))
}

/// Whether each side's connection is on the other's NAT mapping (not the relay's fd00::/8).
fn direct(n: &Nodes) -> bool {
    let not_relayed =
        |dir: &Path, peer: &str| connection(dir, peer).is_some_and(|c| c["relayed"] == false);
    peer_addr(&n.a.dir, &n.b_id).as_deref() == Some("10.99.0.12:8008")
        && peer_addr(&n.b.dir, &n.a_id).as_deref() == Some("10.99.0.11:8008")
        && not_relayed(&n.a.dir, &n.b_id)
        && not_relayed(&n.b.dir, &n.a_id)
}

/// Follow each other; the posts replicate, the connection goes direct, and from then on (51
/// posts, and until every punch and fallback is over) the switchboard relays almost nothing.
fn follow_and_go_direct(n: &Nodes) {
    let followed = follow(n);
    eventually_blocking(
        "the connection is direct, through both NATs",
        SOON,
        POLL,
        || direct(n),
    );
    println!(
        "replicated and direct {:?} after the follows",
        followed.elapsed()
    );
    stays_direct(n, followed);
}

/// Post, follow each other, and wait until the posts replicate; returns when the follows were
/// made.
fn follow(n: &Nodes) -> Instant {
    post(&n.a.dir, "a, behind nat_a");
    post(&n.b.dir, "b, behind nat_b");
    kith_json(&n.b.dir, &["follow", &n.a_id, "--json"]);
    kith_json(&n.a.dir, &["follow", &n.b_id, "--json"]);
    let followed = Instant::now();
    eventually_blocking("a and b replicate each other's posts", SOON, POLL, || {
        has(&n.a.dir, "b, behind nat_b") && has(&n.b.dir, "a, behind nat_a")
    });
    followed
}

/// On the direct path since `since`: 51 posts replicate, and until every punch and fallback is
/// over the switchboard relays almost nothing.
fn stays_direct(n: &Nodes, since: Instant) {
    let before = forwarded(&n.sb_dir);
    for i in 0..50 {
        post(&n.b.dir, &format!("live {i} from b"));
    }
    post(&n.a.dir, "live from a");
    eventually_blocking("the live posts arrive", SOON, POLL, || {
        has(&n.a.dir, "live 49 from b") && has(&n.b.dir, "live from a")
    });
    std::thread::sleep(SETTLED.saturating_sub(since.elapsed()));
    let grown = forwarded(&n.sb_dir) - before;
    println!("switchboard relayed {before} bytes until the path was direct, then {grown} during 51 posts");
    assert!(
        grown < RELAYED_MAX,
        "the switchboard still carries the traffic: {grown} bytes for 51 posts"
    );
    assert!(
        direct(n),
        "the direct connection was replaced: {:?}",
        peer_addr(&n.a.dir, &n.b_id)
    );
}

#[test]
fn peers_behind_cone_nats_punch_a_direct_path() {
    let started = Instant::now();
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let nodes = start(&lab);
    // The private networks are unroutable from each other (as on the Internet).
    let direct = kith(
        &nodes.a.dir,
        &["connect", &format!("{}@10.99.2.2:{PORT}", nodes.b_id)],
    );
    assert!(
        !direct.status.success(),
        "a reached b's private address: the lab is not isolating them"
    );
    follow_and_go_direct(&nodes);
    println!("took {:?} in all", started.elapsed());
}

#[test]
fn the_callees_dial_back_alone_opens_the_direct_path() {
    let started = Instant::now();
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    lab.nft("nat_b", NO_HANDSHAKES_FROM_A);
    let nodes = start(&lab);
    follow_and_go_direct(&nodes);
    assert_dropped(&lab, "strict", "no handshake from a");
    println!("took {:?} in all", started.elapsed());
}

/// Asserts that chain `pre` of nft table `table` on nat_b dropped packets: the case was exercised.
fn assert_dropped(lab: &Lab, table: &str, none: &str) {
    let rules = lab.read("nat_b", &["nft", "list", "chain", "inet", table, "pre"]);
    assert!(
        !rules.contains("counter packets 0 "),
        "{none} was dropped: the case was not exercised\n{rules}"
    );
}

/// On nat_b, before conntrack: drop everything from A's NAT, so no direct path exists (the
/// switchboard, elsewhere on the segment, still reaches both) until the test deletes the table.
const NO_PATH_FROM_A: &str = r#"table inet cut {
  chain pre { type filter hook prerouting priority -300;
    iifname "pub0" ip saddr 10.99.0.11 counter drop; }
}
"#;

/// A pair that had to settle on the relay moves to the direct path once one opens, without
/// reconnecting by hand: the side that dialled the relayed connection asks for a fresh
/// introduction now and then and punches again.
#[test]
fn a_relayed_pair_moves_to_a_direct_path_once_one_opens() {
    let started = Instant::now();
    let lab = match lab() {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    lab.nft("nat_b", NO_PATH_FROM_A);
    let nodes = start(&lab);
    let followed = follow(&nodes);
    std::thread::sleep(SETTLED.saturating_sub(followed.elapsed()));
    let relayed = connection(&nodes.a.dir, &nodes.b_id);
    assert!(
        relayed.as_ref().is_some_and(|c| c["relayed"] == true),
        "not on the relay: {relayed:?}"
    );
    assert_dropped(&lab, "cut", "nothing from a");

    lab.exec("nat_b", &["nft", "delete", "table", "inet", "cut"]);
    let opened = Instant::now();
    // The first retry comes REPUNCH_BACKOFF_MIN (± jitter) after the relayed connection; if it
    // came before the path opened, the next one twice that later.
    let limit = REPUNCH_BACKOFF_MIN.mul_f64(3.0 * 1.25) + SOON;
    let took = eventually_blocking(
        "the connection moves to the direct path",
        limit,
        POLL,
        || direct(&nodes),
    );
    println!("direct {took:?} after the path opened");
    stays_direct(&nodes, opened);
    println!("took {:?} in all", started.elapsed());
}

/// Behind two symmetric NATs no punch can work: a newcomer's first sync of 10,000 posts rides
/// the relay from the start (relay first: nothing waits for a punch to fail), and the pair
/// stays on the relay. The time is printed, never asserted (the issue wants ≤ 0.5 s).
#[test]
fn behind_symmetric_nats_the_first_sync_rides_the_relay_at_once() {
    const POSTS: u64 = 10_000;
    let lab = match lab_with(symmetric_nat) {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    let n = start_seeded(&lab, POSTS as usize);
    let followed = Instant::now();
    kith_json(&n.b.dir, &["follow", &n.a_id, "--json"]);
    kith_json(&n.a.dir, &["follow", &n.b_id, "--json"]);
    eventually_blocking("b holds all of a's posts", SOON, POLL, || {
        head_seq(&n.b.dir, &n.a_id) >= POSTS
    });
    let took = followed.elapsed();
    println!(
        "behind symmetric NATs: {POSTS} posts {} ms after `kith follow` (relayed)",
        took.as_millis()
    );
    std::thread::sleep(SETTLED.saturating_sub(followed.elapsed()));
    for (dir, peer) in [(&n.b.dir, &n.a_id), (&n.a.dir, &n.b_id)] {
        let conn = connection(dir, peer);
        assert!(
            conn.as_ref().is_some_and(|c| c["relayed"] == true),
            "not on the relay: {conn:?}"
        );
    }
    assert!(
        forwarded(&n.sb_dir) > 1_000_000,
        "the posts crossed the relay"
    );
}
