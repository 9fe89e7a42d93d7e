//! Issue 4's acceptance criteria with real `kith` daemons talking QUIC on loopback: live posts,
//! a 10,000-entry backlog, resuming after SIGKILL, no friends of friends, blocks, and redialling
//! a peer that died and came back.
//!
//! Every wait is a bounded poll with a generous deadline; observed latencies are printed (run
//! with `--nocapture` to read them), never asserted.

mod support;

use std::time::{Duration, Instant};

use kith::testing::eventually_blocking;
use support::{
    connection, head_offline, head_seq, kith, kith_json, listen_addr, seed_posts, status,
    timeline_texts, verify_offline, Daemon, Home, POLL,
};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
/// Deadline for anything that should take well under a second.
const SOON: Duration = Duration::from_secs(20);
/// Deadline for a bulk sync in a debug build on a shared 2-core box.
const BULK: Duration = Duration::from_secs(90);

fn post(dir: &std::path::Path, text: &str) -> u64 {
    let out = kith_json(dir, &["post", text, "--json"]);
    assert!(
        out["id"].as_str().is_some_and(|id| id.starts_with('%')),
        "post: {out}"
    );
    out["seq"].as_u64().unwrap_or(0)
}

fn follow(dir: &std::path::Path, id: &str, addr: &str) {
    let out = kith_json(dir, &["follow", id, "--addr", addr, "--json"]);
    assert_eq!(out["contact"]["following"], true);
}

#[test]
fn a_new_post_reaches_the_follower_timeline_live() {
    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let _da = Daemon::start(&a.dir, LOOPBACK);
    post(&b.dir, "before the follow");
    follow(&a.dir, &b_id, &listen_addr(&b.dir));
    eventually_blocking("the backlog post in A's timeline", SOON, POLL, || {
        timeline_texts(&a.dir)
            .iter()
            .any(|t| t == "before the follow")
    });
    assert!(connection(&a.dir, &b_id).is_some(), "A is connected to B");
    let mut latencies = Vec::new();
    for i in 0..5 {
        let text = format!("live post {i}");
        post(&b.dir, &text);
        // The clock starts when B acknowledged the post (it is durable at B).
        latencies.push(eventually_blocking(
            "a live post in A's timeline",
            SOON,
            POLL,
            || timeline_texts(&a.dir).contains(&text),
        ));
    }
    let ms: Vec<u128> = latencies.iter().map(Duration::as_millis).collect();
    eprintln!("live post → follower's timeline, ms (includes ~one `kith timeline` poll): {ms:?}");
}

#[test]
fn a_ten_thousand_entry_backlog_syncs() {
    const N: u64 = 10_000;
    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    seed_posts(&b.dir, N as usize);
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let da = Daemon::start(&a.dir, LOOPBACK);
    assert_eq!(head_seq(&b.dir, &b_id), N);
    follow(&a.dir, &b_id, &listen_addr(&b.dir));
    let took = eventually_blocking("A holds all of B's backlog", BULK, POLL, || {
        head_seq(&a.dir, &b_id) == N
    });
    eprintln!(
        "{N} entries synced in {took:?} ({:.0}/s, debug build)",
        N as f64 / took.as_secs_f64()
    );
    let texts = timeline_texts(&a.dir);
    assert!(texts
        .iter()
        .any(|t| t == "backlog post 0: some text so it looks like a short message"));
    assert!(texts
        .iter()
        .any(|t| t.starts_with(&format!("backlog post {}:", N - 1))));
    assert!(da.stop(), "A stops cleanly");
    assert_eq!(
        verify_offline(&a.dir, &b_id),
        N,
        "A's copy of B's feed re-verifies from seq 1"
    );
}

#[test]
fn a_follower_killed_mid_sync_resumes_without_a_resend() {
    // Large enough that a debug build cannot sync it between two polls (~7,500/s here).
    const N: usize = 40_000;
    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    let a_id = a.id();
    let sizes = seed_posts(&b.dir, N);
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let b_addr = listen_addr(&b.dir);
    let da = Daemon::start(&a.dir, LOOPBACK);
    follow(&a.dir, &b_id, &b_addr);
    // Kill A past the middle, so that a resend from seq 1 would cost clearly more than resuming.
    eventually_blocking("A holds half of B's feed", BULK, POLL, || {
        head_seq(&a.dir, &b_id) > N as u64 / 2
    });
    da.kill();
    let held = head_offline(&a.dir, &b_id) as usize;
    eprintln!("A was killed holding {held} of {N}");
    assert!(
        held > 0 && held < N,
        "A must be killed mid-sync (held {held} of {N}); raise N if this box got faster"
    );
    assert_eq!(
        verify_offline(&a.dir, &b_id),
        held as u64,
        "what A kept after SIGKILL is a valid prefix"
    );

    let _da = Daemon::start(&a.dir, LOOPBACK);
    let took = eventually_blocking("A completes B's feed after its restart", BULK, POLL, || {
        head_seq(&a.dir, &b_id) == N as u64
    });
    // Bytes B put on the wire in the new session (UDP payloads: QUIC and frame overheads included).
    let conn = wait_for_connection(&b.dir, &a_id);
    let sent = conn["bytes_sent"].as_u64().expect("bytes_sent") as usize;
    let missing: usize = sizes[held..].iter().sum();
    let everything: usize = sizes.iter().sum();
    eprintln!(
        "resumed in {took:?}: B sent {sent} bytes; the {} missing entries weigh {missing}, the whole feed {everything}",
        N - held
    );
    // Criterion: the second session costs at most the missing entries plus 35% and 64 KiB of
    // protocol overhead (QUIC, framing, acks, clocks: ~17% measured). A resend from seq 1 would
    // need at least `everything` bytes, which is more than the budget since A held over half.
    let budget = missing + missing * 35 / 100 + 64 * 1024;
    assert!(
        sent <= budget,
        "B sent {sent} bytes for {missing} bytes of missing entries (budget {budget})"
    );
    assert!(
        budget < everything,
        "the budget must be below a full resend for the test to mean anything"
    );
    assert!(_da.stop(), "A stops cleanly");
    assert_eq!(verify_offline(&a.dir, &b_id), N as u64);
}

/// The connection with `peer` as `dir`'s daemon shows it, waiting for it to come up.
fn wait_for_connection(dir: &std::path::Path, peer: &str) -> serde_json::Value {
    let mut found = None;
    eventually_blocking("the connection to show in status", SOON, POLL, || {
        found = connection(dir, peer);
        found.is_some()
    });
    found.unwrap_or_default()
}

#[test]
fn friends_of_friends_never_reach_the_store() {
    let (a, b, c) = (Home::init(), Home::init(), Home::init());
    let (b_id, c_id) = (b.id(), c.id());
    let _dc = Daemon::start(&c.dir, LOOPBACK);
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let da = Daemon::start(&a.dir, LOOPBACK);
    for text in ["c one", "c two", "c three"] {
        post(&c.dir, text);
    }
    follow(&b.dir, &c_id, &listen_addr(&c.dir));
    eventually_blocking("B holds C's posts", SOON, POLL, || {
        head_seq(&b.dir, &c_id) == 3
    });
    follow(&a.dir, &b_id, &listen_addr(&b.dir));
    post(&b.dir, "b one");
    eventually_blocking("A holds B's post", SOON, POLL, || {
        head_seq(&a.dir, &b_id) >= 2
    });
    // A live post of C that B relays into its store while A is connected to B, then one of B's
    // after it: once A has B's later post, C's would have arrived had anything been sent.
    post(&c.dir, "c four");
    eventually_blocking("B holds C's live post", SOON, POLL, || {
        head_seq(&b.dir, &c_id) == 4
    });
    let last = post(&b.dir, "b two");
    eventually_blocking("A holds B's later post", SOON, POLL, || {
        head_seq(&a.dir, &b_id) == last
    });
    assert!(
        connection(&a.dir, &b_id).is_some(),
        "A is still connected to B (it was never sent anything unwanted)"
    );
    assert_eq!(head_seq(&a.dir, &c_id), 0, "C's feed is not in A's status");
    assert!(!timeline_texts(&a.dir).iter().any(|t| t.starts_with("c ")));
    assert!(connection(&a.dir, &c_id).is_none(), "A never talks to C");
    assert!(da.stop());
    assert_eq!(
        head_offline(&a.dir, &c_id),
        0,
        "not one of C's entries is in A's store"
    );
}

#[test]
fn a_blocked_follower_gets_nothing_and_is_refused() {
    let (a, b, c) = (Home::init(), Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let b_addr = listen_addr(&b.dir);
    let da = Daemon::start(&a.dir, LOOPBACK);
    let _dc = Daemon::start(&c.dir, LOOPBACK);
    post(&b.dir, "before the block");
    follow(&a.dir, &b_id, &b_addr);
    follow(&c.dir, &b_id, &b_addr);
    eventually_blocking("A holds B's first post", SOON, POLL, || {
        head_seq(&a.dir, &b_id) == 1
    });

    let blocked = kith_json(&b.dir, &["block", &a_id, "--json"]);
    assert_eq!(blocked["contact"]["blocked"], true);
    eventually_blocking("B drops its connection with A", SOON, POLL, || {
        connection(&b.dir, &a_id).is_none()
    });
    eventually_blocking("A sees the connection gone", SOON, POLL, || {
        connection(&a.dir, &b_id).is_none()
    });
    post(&b.dir, "after the block");
    // C (not blocked) is the control: the post does propagate.
    eventually_blocking("C holds B's post after the block", SOON, POLL, || {
        head_seq(&c.dir, &b_id) == 2
    });
    // A keeps redialling B (its dialer backs off from 250 ms); watch several attempts' worth.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            connection(&b.dir, &a_id).is_none(),
            "B accepted a connection from the id it blocked"
        );
        assert!(
            connection(&a.dir, &b_id).is_none(),
            "A got a connection to B, which blocked it"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        head_seq(&a.dir, &b_id),
        1,
        "A got nothing of B's after the block"
    );
    assert!(da.stop());
    assert_eq!(head_offline(&a.dir, &b_id), 1);
    // The dial is refused by B, not just unanswered: `kith connect` says so.
    let _da = Daemon::start(&a.dir, LOOPBACK);
    let out = kith(&a.dir, &["connect", &format!("{b_id}@{b_addr}")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let connected = out.status.success() && connection(&a.dir, &b_id).is_some();
    assert!(!connected, "B let its blocked follower connect: {stdout}");
}

#[test]
fn a_peer_that_dies_and_comes_back_is_redialled() {
    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    let db = Daemon::start(&b.dir, LOOPBACK);
    let b_addr = listen_addr(&b.dir);
    let _da = Daemon::start(&a.dir, LOOPBACK);
    post(&b.dir, "first life");
    follow(&a.dir, &b_id, &b_addr);
    eventually_blocking("A holds B's first post", SOON, POLL, || {
        head_seq(&a.dir, &b_id) == 1
    });
    let first = connection(&a.dir, &b_id).expect("connected");
    db.kill();
    let _db = Daemon::start(&b.dir, &["--listen", &b_addr]);
    post(&b.dir, "second life");
    let took = eventually_blocking(
        "A redials B and gets its new post",
        Duration::from_secs(90),
        POLL,
        || head_seq(&a.dir, &b_id) == 2,
    );
    let second = connection(&a.dir, &b_id).expect("connected again");
    assert_ne!(first["since_ms"], second["since_ms"], "a new connection");
    assert_eq!(second["direction"], "outbound", "A's dialer made it");
    eprintln!("B killed and restarted on {b_addr}: A redialled and had the new post {took:?} after B was back");
    let _ = status(&a.dir);
}
