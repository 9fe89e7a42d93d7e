//! Relaying across a switchboard cluster, with real processes: two `kith switchboard` nodes
//! joined into one cluster, a client on each. The client of node 1 asks to reach the client of
//! node 2; node 2's client is asked and accepts; then raw relayed packets flow both ways through
//! both nodes (node 1 → node 2 on the cluster link, batched per node), stamped with the
//! authenticated source. Refusals reach the caller with the callee's reason. Also: a peer that
//! rejoins on a new connection keeps relaying when its old connection ends, and a client that
//! asks for introductions too fast is refused past its rate (the callee is not asked).
//!
//! The clients speak the switchboard protocol directly (key-bound QUIC, hello, join, introduce)
//! and send `[32-byte key][payload]` datagrams: what an inner QUIC packet is to a switchboard.
//!
//! And a daemon that fails over within its cluster (issue 17, item 1): three nodes, real `kith`
//! daemons given the whole cluster, the node of one of them killed; it is online again through
//! another node, and posts reach it again, within the presence down period plus 5 s.

mod support;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use kith::identity::FeedId;
use kith::limits::{SB_INTRODUCTIONS_BURST, SB_INTRODUCTIONS_PER_SEC};
use kith::testing::eventually_blocking;
use kith::wire::switchboard::{ClientMsg, IntroAnswer, ServerMsg};
use support::netns::{Lab, Proc};
use support::sb_client::Client;
use support::{free_port, head_seq, identity, kith, kith_json, Home, Switchboard, POLL};

/// One switchboard on loopback: its home (kept while in scope), process, port and id.
fn one_switchboard() -> (tempfile::TempDir, Switchboard, u16, FeedId) {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let sb = Switchboard::start(home.path(), port);
    let node = id_of(home.path());
    (home, sb, port, node)
}

fn id_of(dir: &Path) -> FeedId {
    kith_json(dir, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_two_nodes_are_introduced_and_relayed_through_the_cluster() {
    let homes = tempfile::tempdir().unwrap();
    let (d1, d2) = (homes.path().join("n1"), homes.path().join("n2"));
    let (p1, p2) = (free_port(), free_port());
    let n2_key = identity(&d2);
    let _n1 = Switchboard::start_with(&d1, p1, &["--cluster-key", &n2_key]);
    let n1 = id_of(&d1);
    let _n2 = Switchboard::start_with(&d2, p2, &["--join", &format!("{n1}@127.0.0.1:{p1}")]);
    let n2 = id_of(&d2);
    let online = |dir: &Path| {
        kith_json(dir, &["status", "--json"])["online"]
            .as_u64()
            .unwrap()
    };

    let mut a = Client::join(1, p1, &n1).await;
    let mut b = Client::join(2, p2, &n2).await;
    let mut c = Client::join(3, p2, &n2).await;
    tokio::task::spawn_blocking(move || {
        eventually_blocking(
            "both nodes see all three online",
            Duration::from_secs(20),
            POLL,
            || online(&d1) == 3 && online(&d2) == 3,
        )
    })
    .await
    .unwrap();

    // a, on node 1, asks for b, on node 2: b is asked (without a's address), and answers
    // direct: b is then told a's observed address, and a b's.
    a.write(ClientMsg::Introduce { to: b.id }).await;
    match b.read().await {
        ServerMsg::IntroRequest { from } => assert_eq!(from, a.id),
        other => panic!("b was not asked: {other:?}"),
    }
    b.write(ClientMsg::IntroAnswer {
        from: a.id,
        answer: IntroAnswer::Direct,
    })
    .await;
    match b.read().await {
        ServerMsg::PunchTo { peer, observed } => {
            assert_eq!(peer, a.id);
            assert_eq!(
                observed.port(),
                a.endpoint.local_addr().unwrap().port(),
                "a's observed address"
            );
        }
        other => panic!("b was not told where a is: {other:?}"),
    }
    match a.read().await {
        ServerMsg::Introduced { peer, observed } => {
            assert_eq!(peer, b.id);
            assert_eq!(
                observed.map(|o| o.port()),
                Some(b.endpoint.local_addr().unwrap().port()),
                "b's observed address"
            );
        }
        other => panic!("a was not introduced: {other:?}"),
    }

    // Packets cross both nodes, stamped with the sender's proven key, both ways.
    for i in 0..20u8 {
        let got = a.relay(&b, &[i; 1_200]).await;
        assert_eq!(&got[..32], &a.id.0[..], "stamped with a's key");
        assert_eq!(&got[32..], &[i; 1_200][..]);
        let back = b.relay(&a, b"pong").await;
        assert_eq!(&back[..32], &b.id.0[..]);
        assert_eq!(&back[32..], b"pong");
    }
    let forwarded = |dir: &Path| {
        kith_json(dir, &["status", "--json"])["relay"]["forwarded_packets"]
            .as_u64()
            .unwrap()
    };
    let (d1, d2) = (homes.path().join("n1"), homes.path().join("n2"));
    assert!(
        forwarded(&d1) >= 40 && forwarded(&d2) >= 40,
        "both nodes forwarded every packet"
    );

    // c, not introduced to a, cannot send to it; and c declines a's request.
    c.conn
        .send_datagram(Bytes::from([&a.id.0[..], b"sneak"].concat()))
        .unwrap();
    a.write(ClientMsg::Introduce { to: c.id }).await;
    match c.read().await {
        ServerMsg::IntroRequest { from, .. } => assert_eq!(from, a.id),
        other => panic!("c was not asked: {other:?}"),
    }
    c.write(ClientMsg::IntroAnswer {
        from: a.id,
        answer: IntroAnswer::Refuse,
    })
    .await;
    match a.read().await {
        ServerMsg::IntroRefused {
            to,
            reason,
            declined,
        } => {
            assert_eq!(to, c.id);
            assert!(reason.contains("they do not follow you"), "{reason}");
            assert!(
                declined,
                "the callee's own refusal crosses the cluster as one"
            );
        }
        other => panic!("a was not refused: {other:?}"),
    }
    let stray = tokio::time::timeout(Duration::from_millis(300), a.conn.read_datagram()).await;
    assert!(stray.is_err(), "c's packet must not reach a");

    // Someone connected nowhere in the cluster.
    let nobody = FeedId([42; 32]);
    a.write(ClientMsg::Introduce { to: nobody }).await;
    match a.read().await {
        ServerMsg::IntroRefused { to, reason, .. } => {
            assert_eq!(to, nobody);
            assert!(reason.contains("not connected"), "{reason}");
        }
        other => panic!("a was not refused: {other:?}"),
    }
}

/// A peer that rejoins on a new connection while its old one is still open keeps relaying when
/// the old connection finally ends (its session's cleanup must not undo the new registration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoined_peer_keeps_relaying_when_its_old_connection_ends() {
    let (_home, _sb, port, node) = one_switchboard();
    let old = Client::join(1, port, &node).await;
    let mut b = Client::join(2, port, &node).await;
    let mut a = Client::join(1, port, &node).await;
    a.write(ClientMsg::Introduce { to: b.id }).await;
    assert!(matches!(b.read().await, ServerMsg::IntroRequest { from, .. } if from == a.id));
    b.write(ClientMsg::IntroAnswer {
        from: a.id,
        answer: IntroAnswer::Direct,
    })
    .await;
    assert!(matches!(a.read().await, ServerMsg::Introduced { peer, .. } if peer == b.id));
    assert_eq!(&a.relay(&b, b"before").await[32..], b"before");

    old.conn.close(0u32.into(), b"gone");
    old.conn.closed().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        &a.relay(&b, b"after").await[32..],
        b"after",
        "the new connection still relays"
    );
    assert_eq!(&b.relay(&a, b"back").await[32..], b"back");
}

/// A client that asks for introductions faster than `SB_INTRODUCTIONS_PER_SEC` is refused past
/// its burst, by name, and the callee is asked only for those within the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_for_introductions_too_fast_is_refused_past_its_rate() {
    let (home, _sb, port, node) = one_switchboard();
    let (mut a, mut b) = (
        Client::join(1, port, &node).await,
        Client::join(2, port, &node).await,
    );
    let started = std::time::Instant::now();
    const ASKED: usize = 3 * SB_INTRODUCTIONS_BURST as usize;
    for _ in 0..ASKED {
        a.write(ClientMsg::Introduce { to: b.id }).await;
    }
    let (to_a, to_b) = tokio::join!(a.drain(), b.drain());
    let allowed = SB_INTRODUCTIONS_BURST as f64
        + f64::from(SB_INTRODUCTIONS_PER_SEC) * started.elapsed().as_secs_f64();
    let refused = to_a.iter().filter(|m| matches!(m, ServerMsg::IntroRefused { reason, .. } if reason.contains("too many introductions"))).count();
    let asked = to_b
        .iter()
        .filter(|m| matches!(m, ServerMsg::IntroRequest { from, .. } if *from == a.id))
        .count();
    println!(
        "{ASKED} asked: {asked} passed on to b, {refused} refused (allowed at most {allowed:.0})"
    );
    assert_eq!(
        refused + asked,
        ASKED,
        "every request was either passed on or refused: {to_a:?}"
    );
    assert!(
        asked as f64 <= allowed.ceil(),
        "{asked} passed on, more than {allowed:.0}"
    );
    assert!(
        asked >= SB_INTRODUCTIONS_BURST as usize,
        "the burst passed: {asked}"
    );
    let counters = &kith_json(home.path(), &["status", "--json"])["counters"];
    assert_eq!(
        counters["introductions_refused"].as_u64(),
        Some(refused as u64),
        "{counters}"
    );
}

/// The failover test's presence heartbeat: a node is marked down after 20 silent periods.
const FAILOVER_BROADCAST_MS: u64 = 500;
/// Its down period (`--presence-broadcast-ms` × 20).
const FAILOVER_DOWN: Duration = Duration::from_millis(FAILOVER_BROADCAST_MS * 20);

/// Where daemon `dir`'s one switchboard link is now: the member's address, if it is joined.
fn linked_member(dir: &Path) -> Option<String> {
    let status = kith_json(dir, &["status", "--json"]);
    let link = status["switchboards"].as_array()?.first()?.clone();
    if link["state"] != "joined" {
        return None;
    }
    link["member"].as_str().map(str::to_string)
}

fn kith_ok(dir: &Path, args: &[&str]) {
    let out = kith(dir, args);
    assert!(
        out.status.success(),
        "kith {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 17's done-when for failover, with real processes in one network namespace whose
/// nftables drop every datagram between the two daemons' ports, so that they can only reach
/// each other through the switchboards' relay (as two daemons behind symmetric NATs): three
/// nodes; A is given the cluster as its members with their keys and lands on node 1, B is given
/// it as addresses plus the nodes' keys and lands on node 2. Node 2 is killed (SIGKILL): B's
/// link notices within its idle timeout and moves to another member, the relayed connection is
/// dialled again through the new node, A's next post reaches B, and every surviving node lists
/// B exactly once — all within the down period plus 5 s of the kill (the time is printed).
#[test]
fn a_daemon_whose_node_dies_is_online_through_another_node_and_gets_posts_again() {
    let lab = match Lab::open(&["ip", "nft"], &["fo"]) {
        Ok(lab) => lab,
        Err(why) => return println!("skipped: {why}"),
    };
    lab.nft(
        "fo",
        "table inet nodirect {\n\
         chain out { type filter hook output priority 0; \
         udp sport { 9101, 9102 } udp dport { 9101, 9102 } drop; }\n\
         }\n",
    );
    let homes = tempfile::tempdir().unwrap();
    let dirs: Vec<std::path::PathBuf> = (1..=3)
        .map(|n| homes.path().join(format!("sb{n}")))
        .collect();
    let keys: Vec<String> = dirs.iter().map(|d| identity(d)).collect();
    let addr = |n: usize| format!("127.0.0.1:780{}", n + 1);
    let pinned = |n: usize| format!("{}@{}", keys[n], addr(n));
    let period = FAILOVER_BROADCAST_MS.to_string();
    let extra: [Vec<String>; 3] = [
        vec![
            "--cluster-key".into(),
            keys[1].clone(),
            "--cluster-key".into(),
            keys[2].clone(),
        ],
        vec![
            "--join".into(),
            pinned(0),
            "--cluster-key".into(),
            keys[2].clone(),
        ],
        vec!["--join".into(), pinned(0), "--join".into(), pinned(1)],
    ];
    let mut nodes: Vec<Option<Proc>> = (0..3)
        .map(|n| {
            let mut args: Vec<String> = vec![
                "switchboard".into(),
                "--listen".into(),
                addr(n),
                "--presence-broadcast-ms".into(),
                period.clone(),
            ];
            args.extend(extra[n].iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Some(lab.spawn("fo", &dirs[n], &args))
        })
        .collect();
    let online = |n: usize| {
        kith_json(&dirs[n], &["status", "--json"])["online"]
            .as_u64()
            .unwrap()
    };

    // A: the members with their keys, node 1 first. B: the addresses, node 2 first, and the
    // nodes' keys alone (what a DNS name resolving to every node would be given with).
    let (a, b) = (Home::init(), Home::init());
    let (ida, idb) = (a.id(), b.id());
    let a_cluster = format!("{},{},{}", pinned(0), pinned(1), pinned(2));
    let b_cluster = format!(
        "{},{},{},{},{},{}",
        addr(1),
        addr(2),
        addr(0),
        keys[0],
        keys[1],
        keys[2]
    );
    let _pa = lab.spawn(
        "fo",
        &a.dir,
        &[
            "daemon",
            "--listen",
            "127.0.0.1:9101",
            "--switchboard",
            &a_cluster,
        ],
    );
    let _pb = lab.spawn(
        "fo",
        &b.dir,
        &[
            "daemon",
            "--listen",
            "127.0.0.1:9102",
            "--switchboard",
            &b_cluster,
        ],
    );
    kith_ok(&a.dir, &["follow", &idb]);
    kith_ok(&b.dir, &["follow", &ida]);
    eventually_blocking(
        "A on node 1 and B on node 2",
        Duration::from_secs(20),
        POLL,
        || {
            linked_member(&a.dir).as_deref() == Some(addr(0).as_str())
                && linked_member(&b.dir).as_deref() == Some(addr(1).as_str())
        },
    );
    eventually_blocking(
        "every node lists A and B",
        Duration::from_secs(20),
        POLL,
        || (0..3).all(|n| online(n) == 2),
    );
    kith_ok(&a.dir, &["post", "before the node dies"]);
    let before = head_seq(&a.dir, &ida);
    eventually_blocking(
        "B holds A's first post",
        Duration::from_secs(20),
        POLL,
        || head_seq(&b.dir, &ida) >= before,
    );
    let relayed = support::connection(&a.dir, &idb).expect("A is connected to B");
    assert_eq!(
        relayed["relayed"], true,
        "only the relay joins them: {relayed}"
    );

    // Node 2 dies without a word.
    drop(nodes[1].take());
    let killed = std::time::Instant::now();
    kith_ok(&a.dir, &["post", "after the node died"]);
    let after = head_seq(&a.dir, &ida);
    assert!(after > before);
    let bound = FAILOVER_DOWN + Duration::from_secs(5);
    eventually_blocking("B is linked through another node", bound, POLL, || {
        linked_member(&b.dir).is_some_and(|m| m != addr(1))
    });
    let moved = killed.elapsed();
    println!(
        "B is on {:?} {moved:?} after the kill",
        linked_member(&b.dir)
    );
    eventually_blocking(
        "A's post reaches B again",
        bound.saturating_sub(killed.elapsed()),
        POLL,
        || head_seq(&b.dir, &ida) >= after,
    );
    let reached = killed.elapsed();
    assert!(
        support::connection(&b.dir, &ida).is_some(),
        "B is connected to A again"
    );
    // Presence shows B twice (its dead node's entry and its new one) at most until the dead node
    // is marked down: one down period.
    eventually_blocking(
        "the surviving nodes list A and B once each",
        bound.saturating_sub(killed.elapsed()),
        POLL,
        || online(0) == 2 && online(2) == 2,
    );
    let single = killed.elapsed();
    let sees_b = kith_json(&a.dir, &["contacts", "--json"])["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == idb.as_str() && c["online"] == true);
    assert!(sees_b, "A sees B online");
    println!(
        "after the kill: B linked again after {moved:?}, A's post reached B after {reached:?}, \
         B listed once after {single:?} (down period {FAILOVER_DOWN:?}; bound {bound:?})"
    );
}
