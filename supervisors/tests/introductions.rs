//! Introductions with three outcomes and the relay first, with real `kith` processes on
//! loopback (introductions issue, items 4–7):
//!
//! - the `first timeline` case: a newcomer follows a friend holding 10,000 posts through a
//!   switchboard, the friend follows back; the times are printed (never asserted), and the pair
//!   ends on the direct path (relay first, direct when it opens);
//! - a follower who is not followed back gets the public posts through the relay only, and
//!   neither side learns the other's address (checked on the wire with a raw client on each
//!   side, and in the daemons' connection tables);
//! - a callee on `--serve follows` refuses, and the caller's `kith contacts`, `kith status`
//!   and `kith connect` say why;
//! - `kith switchboards` lists the remembered switchboards and `forget` drops one for good.
//!
//! The 20-run loop of the first timeline is `#[ignore]`d (about a minute and a half here); run it
//! with `cargo test -p kith-supervisors --test introductions -- --ignored --nocapture`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use kith::identity::FeedId;
use kith::testing::eventually_blocking;
use kith::wire::switchboard::{ClientMsg, IntroAnswer, ServerMsg};
use support::sb_client::Client;
use support::{
    connection, free_port, head_seq, kith, kith_json, seed_posts, timeline_texts, Daemon, Home,
    Switchboard, POLL,
};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
/// Deadline for anything that should take a second or two.
const SOON: Duration = Duration::from_secs(30);
const POSTS: usize = 10_000;

/// A switchboard on loopback and its `@ID@127.0.0.1:PORT` target.
fn switchboard(dir: &Path) -> (Switchboard, String, u16) {
    let port = free_port();
    let sb = Switchboard::start(dir, port);
    let id = kith_json(dir, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    (sb, format!("{id}@127.0.0.1:{port}"), port)
}

fn online(sb: &Path) -> u64 {
    kith_json(sb, &["status", "--json"])["online"]
        .as_u64()
        .unwrap_or(0)
}

/// A daemon on loopback using the switchboard `target`, with extra flags.
fn daemon(dir: &Path, target: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["--switchboard", target];
    args.extend_from_slice(LOOPBACK);
    args.extend_from_slice(extra);
    Daemon::start(dir, &args)
}

fn contact(dir: &Path, id: &str) -> serde_json::Value {
    kith_json(dir, &["contacts", "--json"])["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_default()
}

/// One run of the first timeline: returns the time from the newcomer's `kith follow` until it
/// holds all of the friend's posts.
fn first_timeline(sb_dir: &Path, target: &str, run: usize) -> Duration {
    let (friend, newcomer) = (Home::init(), Home::init());
    let (friend_id, newcomer_id) = (friend.id(), newcomer.id());
    seed_posts(&friend.dir, POSTS);
    let before = online(sb_dir);
    let df = daemon(&friend.dir, target, &[]);
    let dn = daemon(&newcomer.dir, target, &[]);
    eventually_blocking("both daemons join the switchboard", SOON, POLL, || {
        online(sb_dir) >= before + 2
    });
    let followed = Instant::now();
    kith_json(&newcomer.dir, &["follow", &friend_id, "--json"]);
    kith_json(&friend.dir, &["follow", &newcomer_id, "--json"]);
    eventually_blocking("the newcomer holds every post", SOON, POLL, || {
        head_seq(&newcomer.dir, &friend_id) >= POSTS as u64
    });
    let took = followed.elapsed();
    println!(
        "run {run}: {POSTS} posts {} ms after `kith follow`",
        took.as_millis()
    );
    // Relay first, direct when it opens: on loopback the pair ends on the direct path.
    eventually_blocking("the pair moves onto the direct path", SOON, POLL, || {
        connection(&newcomer.dir, &friend_id).is_some_and(|c| c["relayed"] == false)
            && connection(&friend.dir, &newcomer_id).is_some_and(|c| c["relayed"] == false)
    });
    // Both are gone before the next run starts (the switchboard count goes back). Stopped, not
    // killed, so they leave at once instead of at the switchboard's idle timeout.
    assert!(df.stop() && dn.stop(), "the daemons stop cleanly");
    eventually_blocking("both daemons left the switchboard", SOON, POLL, || {
        online(sb_dir) == before
    });
    took
}

fn first_timeline_loop(runs: usize) {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let (_sb, target, _) = switchboard(&sb_dir);
    let times: Vec<u128> = (1..=runs)
        .map(|run| first_timeline(&sb_dir, &target, run).as_millis())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    println!(
        "first timeline through a switchboard, {runs} runs, ms: {times:?} (median {}, max {}; debug build unless --release)",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

#[test]
fn first_timeline_three_runs() {
    first_timeline_loop(3);
}

/// The loop of 20 the issue asks for (times printed, not asserted).
#[test]
#[ignore = "about 90 s: cargo test -p kith-supervisors --test introductions -- --ignored --nocapture"]
fn first_timeline_twenty_runs() {
    first_timeline_loop(20);
}

/// B follows A, A does not follow B: A (serving everyone, introductions by default `relay`)
/// lets B reach it through the relay only; A's posts reach B, and neither daemon holds the
/// other's real address.
#[test]
fn a_follower_not_followed_back_gets_the_posts_through_the_relay_only() {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let (_sb, target, _) = switchboard(&sb_dir);
    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    // A shows its presence to its followers: B sees it online once it has asked for A's feed.
    let _da = daemon(&a.dir, &target, &["--presence-visible-to", "followers"]);
    kith_json(&a.dir, &["post", "public words from a", "--json"]);
    let _db = daemon(&b.dir, &target, &[]);
    eventually_blocking("both joined", SOON, POLL, || online(&sb_dir) == 2);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    eventually_blocking("a's post reaches b", SOON, POLL, || {
        timeline_texts(&b.dir).contains(&"public words from a".to_string())
    });
    // Both ends of the connection are on the relay (the peer's fake relay address), and stay
    // there: nothing is punched, since no address crossed.
    std::thread::sleep(kith::limits::PUNCH_TIMEOUT * 2);
    let (at_b, at_a) = (connection(&b.dir, &a_id), connection(&a.dir, &b_id));
    for (side, conn) in [("b", &at_b), ("a", &at_a)] {
        let conn = conn
            .as_ref()
            .unwrap_or_else(|| panic!("{side} is not connected"));
        assert_eq!(conn["relayed"], true, "{side}: {conn}");
        assert!(
            !conn["addr"].as_str().unwrap().contains("127.0.0.1"),
            "{side} learned a real address: {conn}"
        );
    }
    let c = contact(&b.dir, &a_id);
    assert_eq!(c["connection"], "relayed", "{c}");
    assert_eq!(c["introduction"]["answer"], "relay_only", "{c}");
    let text = String::from_utf8(kith(&b.dir, &["contacts"]).stdout).unwrap();
    assert!(
        text.contains("connected, relayed through a switchboard"),
        "{text}"
    );
    assert!(
        text.contains("online since"),
        "presence in the text: {text}"
    );

    // A follows back: the pair moves to the direct path (A's dialer asks for an introduction
    // and B, who follows A, answers direct).
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    eventually_blocking("the pair goes direct once both follow", SOON, POLL, || {
        connection(&b.dir, &a_id).is_some_and(|c| c["relayed"] == false)
    });
}

/// The switchboard's introduction messages carry no address when the callee answers relay
/// only: a raw client is the caller of a real daemon, and another raw client the callee of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_introduction_carries_no_address_to_either_side() {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let sb_dir2 = sb_dir.clone();
    let (_sb, target, port) = tokio::task::spawn_blocking(move || switchboard(&sb_dir2))
        .await
        .unwrap();
    let node: FeedId = target.rsplit_once('@').unwrap().0.parse().unwrap();
    let a = Home::init();
    let a_id: FeedId = a.id().parse().unwrap();
    let (a_dir, t) = (a.dir.clone(), target.clone());
    let _da = tokio::task::spawn_blocking(move || daemon(&a_dir, &t, &[]))
        .await
        .unwrap();
    let mut x = Client::join(41, port, &node).await;
    let mut y = Client::join(42, port, &node).await;

    // x (a stranger to a) asks for a: a answers relay only; x's introduction has no address.
    x.write(ClientMsg::Introduce { to: a_id }).await;
    match x.read().await {
        ServerMsg::Introduced { peer, observed } => {
            assert_eq!(peer, a_id);
            assert_eq!(observed, None, "the caller learned the callee's address");
        }
        other => panic!("x was not introduced: {other:?}"),
    }

    // a follows y: a's dialer asks for y; y is shown the request (the type has no address),
    // answers relay only, and is never told where a is.
    let (a_dir, y_id) = (a.dir.clone(), y.id.to_string());
    tokio::task::spawn_blocking(move || kith_json(&a_dir, &["follow", &y_id, "--json"]))
        .await
        .unwrap();
    let from = loop {
        match y.read().await {
            ServerMsg::IntroRequest { from } => break from,
            ServerMsg::Presence { .. } => continue,
            other => panic!("y was sent {other:?}"),
        }
    };
    assert_eq!(from, a_id);
    y.write(ClientMsg::IntroAnswer {
        from,
        answer: IntroAnswer::RelayOnly,
    })
    .await;
    for msg in y.drain().await {
        assert!(
            !matches!(msg, ServerMsg::PunchTo { .. }),
            "the callee was told the caller's address: {msg:?}"
        );
    }
    let (a_dir, y_id) = (a.dir.clone(), y.id.to_string());
    let c = tokio::task::spawn_blocking(move || contact(&a_dir, &y_id))
        .await
        .unwrap();
    assert_eq!(c["introduction"]["answer"], "relay_only", "{c}");
    // A direct answer, by contrast, gives the callee the caller's address.
    x.write(ClientMsg::Introduce { to: y.id }).await;
    assert!(matches!(y.read().await, ServerMsg::IntroRequest { from } if from == x.id));
    y.write(ClientMsg::IntroAnswer {
        from: x.id,
        answer: IntroAnswer::Direct,
    })
    .await;
    match y.read().await {
        ServerMsg::PunchTo { peer, observed } => {
            assert_eq!(peer, x.id);
            assert_eq!(observed.port(), x.endpoint.local_addr().unwrap().port());
        }
        other => panic!("y was not told where x is: {other:?}"),
    }
    assert!(matches!(
        x.read().await,
        ServerMsg::Introduced {
            observed: Some(_),
            ..
        }
    ));
}

/// A on `--serve follows` refuses a stranger's introduction, and B is told why in `kith
/// contacts` (text and JSON), `kith status` and `kith connect`.
#[test]
fn a_refused_introduction_says_they_do_not_follow_you() {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let (_sb, target, _) = switchboard(&sb_dir);
    let (a, b) = (Home::init(), Home::init());
    let a_id = a.id();
    // A shows its presence to everyone, so that B's status can say A is online and why it
    // refused (with the default, `follows`, B would see A as offline).
    let _da = daemon(
        &a.dir,
        &target,
        &["--serve", "follows", "--presence-visible-to", "everyone"],
    );
    let _db = daemon(&b.dir, &target, &[]);
    eventually_blocking("both joined", SOON, POLL, || online(&sb_dir) == 2);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    eventually_blocking("b's contacts say why", SOON, POLL, || {
        let text = String::from_utf8(kith(&b.dir, &["contacts"]).stdout).unwrap();
        text.contains("refused: they do not follow you")
    });
    let c = contact(&b.dir, &a_id);
    assert_eq!(c["introduction"]["answer"], "refused", "{c}");
    assert!(c["connection"].is_null(), "{c}");
    let status = String::from_utf8(kith(&b.dir, &["status"]).stdout).unwrap();
    assert!(
        status.contains(&format!("{a_id} online; refused: they do not follow you")),
        "{status}"
    );
    let out = kith(&b.dir, &["connect", &a_id]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("they do not follow you"), "{err}");
}

/// `kith switchboards` lists what the daemon remembers; `forget` closes the link and the
/// daemon, restarted without `--switchboard`, no longer dials it.
#[test]
fn remembered_switchboards_are_listed_and_forgotten() {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let (_sb, target, port) = switchboard(&sb_dir);
    let sb_id = target.rsplit_once('@').unwrap().0.to_string();
    let a = Home::init();
    let da = daemon(&a.dir, &target, &[]);
    eventually_blocking("joined", SOON, POLL, || online(&sb_dir) == 1);
    let list = kith_json(&a.dir, &["switchboards", "--json"]);
    let host = format!("127.0.0.1:{port}");
    let entry = &list["switchboards"][0];
    assert_eq!(entry["host"], host.as_str(), "{list}");
    assert_eq!(entry["id"], sb_id.as_str(), "{list}");
    assert_eq!(entry["remembered"], true, "{list}");
    assert_eq!(entry["link"]["state"], "joined", "{list}");
    let text = String::from_utf8(kith(&a.dir, &["switchboards"]).stdout).unwrap();
    assert!(text.contains(&host) && text.contains("joined"), "{text}");

    let gone = kith_json(&a.dir, &["switchboards", "forget", &sb_id, "--json"]);
    assert_eq!(gone["forgotten"][0], host.as_str(), "{gone}");
    eventually_blocking("the link is closed", SOON, POLL, || online(&sb_dir) == 0);
    let list = kith_json(&a.dir, &["switchboards", "--json"]);
    assert_eq!(
        list["switchboards"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
    let again = kith(&a.dir, &["switchboards", "forget", &host]);
    assert!(!again.status.success(), "forgetting twice is an error");
    assert!(da.stop());

    let _da = Daemon::start(&a.dir, LOOPBACK);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(online(&sb_dir), 0, "a forgotten switchboard is not dialled");
    let list = kith_json(&a.dir, &["switchboards", "--json"]);
    assert_eq!(
        list["switchboards"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
}
