//! The social layer with real `kith` daemons on loopback: names and petnames, threads across
//! three users (and a reply whose parent is not held), mentions, reactions, the contact card and
//! the kept listen port, and an identity restored from its recovery phrase that gets its feed
//! back and posts on without a fork.
//!
//! Every wait is a bounded poll; nothing about speed is asserted.

mod support;

use support::node::{Node, LOOPBACK, SOON};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kith::testing::eventually_blocking;
use serde_json::Value;
use support::{head_seq, kith, kith_bin, kith_json, listen_addr, Daemon, Home, POLL};

impl Node {
    fn post(&self, text: &str, reply_to: Option<&str>) -> String {
        let mut args = vec!["post", text];
        if let Some(parent) = reply_to {
            args.extend(["--reply-to", parent]);
        }
        let out = self.json(&args);
        out["id"].as_str().expect("post prints its id").to_string()
    }
}

fn entries(v: &Value) -> Vec<Value> {
    v["entries"].as_array().cloned().unwrap_or_default()
}

fn fails_with(dir: &Path, args: &[&str], words: &str) {
    let out = kith(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kith {args:?} succeeded");
    assert!(err.contains(words), "kith {args:?}: {err}");
}

#[test]
fn names_petnames_threads_mentions_and_reactions_reach_the_followers() {
    let (a, b, c, e) = (Node::start(), Node::start(), Node::start(), Node::start());
    // A, B and C follow each other; C also follows E, whom A does not follow; E follows A.
    for (x, y) in [
        (&a, &b),
        (&a, &c),
        (&b, &a),
        (&b, &c),
        (&c, &a),
        (&c, &b),
        (&c, &e),
        (&e, &a),
    ] {
        x.follow(y);
    }

    // --- names ---
    a.json(&[
        "profile",
        "set",
        "--name",
        "Ada",
        "--description",
        "counts things",
    ]);
    b.json(&["profile", "set", "--name", "Bob"]);
    fails_with(
        a.dir(),
        &["profile", "set", "--name", "evil\u{1b}[2J"],
        "name refused",
    );
    fails_with(
        a.dir(),
        &["profile", "set", "--name", &"x".repeat(200)],
        "name refused",
    );
    let root = a.post("first post of a thread", None);
    for (x, y) in [(&b, &a), (&c, &a), (&a, &b), (&c, &b)] {
        x.holds(y, y.seq());
    }
    let tl = b.json(&["timeline"]);
    let from_a: Vec<Value> = entries(&tl)
        .into_iter()
        .filter(|e| e["author"] == a.id.as_str())
        .collect();
    assert!(!from_a.is_empty(), "{tl}");
    assert!(from_a.iter().all(|e| e["author_name"] == "Ada"), "{tl}");
    let text = String::from_utf8_lossy(&kith(b.dir(), &["timeline"]).stdout).into_owned();
    assert!(text.contains("Ada #"), "{text}");
    let profile = b.json(&["profile", &a.id]);
    assert_eq!(profile["name"], "Ada");
    assert_eq!(profile["description"], "counts things");
    assert_eq!(profile["following"], true);
    assert_eq!(profile["follows_you"], true);
    assert!(profile["posts"].as_u64() >= Some(1));
    assert_eq!(profile["follows"], 2);
    let contacts = b.json(&["contacts"]);
    let of_a = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == a.id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(of_a["name"], "Ada");
    assert_eq!(of_a["label"], "Ada");
    assert!(of_a["last_seen_ms"].as_u64().is_some(), "{of_a}");

    // A petname wins on B, and is never published.
    let pet = b.json(&["contacts", "name", &a.id, "Mum"]);
    assert_eq!(pet["contact"]["label"], "Mum");
    let tl = b.json(&["timeline"]);
    assert!(entries(&tl)
        .iter()
        .filter(|e| e["author"] == a.id.as_str())
        .all(|e| e["author_name"] == "Mum"));
    assert!(!b.json(&["feed"]).to_string().contains("Mum"));
    assert!(!a.json(&["feed", &b.id]).to_string().contains("Mum"));
    fails_with(
        b.dir(),
        &["contacts", "name", &a.id, "tab\there"],
        "name refused",
    );

    // E takes Ada's name: on C, who follows both, each shows with its short id.
    e.json(&["profile", "set", "--name", "Ada"]);
    c.holds(&e, e.seq());
    let labels = c.json(&["contacts"]);
    for who in [&a, &e] {
        let label = labels["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == who.id.as_str())
            .map(|x| x["label"].as_str().unwrap_or("").to_string())
            .unwrap();
        assert!(label.starts_with("Ada (@"), "{label}");
    }

    // --- a thread of depth 3 across three users, and a reply whose parent A lacks ---
    b.holds(&a, a.seq());
    let r1 = b.post("B answers A", Some(&root));
    c.holds(&b, b.seq());
    let r2 = c.post("C answers B", Some(&r1));
    a.holds(&c, c.seq());
    let r3 = a.post("A answers C", Some(&r2));
    e.holds(&a, 1);
    let e1 = e.post("E answers A, unseen by A", Some(&root));
    for x in [&a, &b, &c] {
        x.holds(&a, a.seq());
        x.holds(&b, b.seq());
        x.holds(&c, c.seq());
    }
    for x in [&a, &b, &c] {
        let t = x.json(&["thread", &r2]);
        // C follows E, so C also holds E's answer to the root (last, after the branch above).
        let mut want = vec![(r1.clone(), 1), (r2.clone(), 2), (r3.clone(), 3)];
        if std::ptr::eq(x, &c) {
            want.push((e1.clone(), 1));
        }
        assert_eq!(t["root"]["id"], root.as_str(), "{t}");
        let got: Vec<(String, u64)> = t["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["depth"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{t}");
        assert_eq!(t["missing"], 0);
        let text = String::from_utf8_lossy(&kith(x.dir(), &["thread", &root]).stdout).into_owned();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(at("first post") < at("B answers A"));
        assert!(at("B answers A") < at("C answers B"));
        assert!(at("C answers B") < at("A answers C"));
    }
    // The timeline marks a reply with its parent's author and first words.
    let tl = c.json(&["timeline"]);
    let reply = entries(&tl)
        .into_iter()
        .find(|x| x["id"] == r2.as_str())
        .unwrap();
    assert_eq!(reply["reply_to_author"], "Bob", "{reply}");
    assert_eq!(reply["reply_to_excerpt"], "B answers A");
    let text = String::from_utf8_lossy(&kith(c.dir(), &["timeline"]).stdout).into_owned();
    assert!(text.contains("re Bob: \"B answers A\""), "{text}");

    // C answers E's reply: A holds C's answer but not E's message, and says so.
    c.holds(&e, e.seq());
    let r4 = c.post("C answers E", Some(&e1));
    a.holds(&c, c.seq());
    let t = a.json(&["thread", &root]);
    let orphan = t["replies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == r4.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("C's answer to E in A's thread: {t}"));
    assert_eq!(orphan["parent_missing"], true);
    assert_eq!(t["missing"], 1);
    let text = String::from_utf8_lossy(&kith(a.dir(), &["thread", &root]).stdout).into_owned();
    assert!(text.contains("not held here"), "{text}");
    // Replying to a message this node does not hold is refused by name.
    fails_with(
        a.dir(),
        &["post", "blind", "--reply-to", &e1],
        "not held here",
    );
    fails_with(
        a.dir(),
        &["post", "bad", "--reply-to", "%nope.b3"],
        "not a message id",
    );

    // --- mentions ---
    let m1 = a.post("thanks @Bob for the answer", None);
    let m2 = c.post(&format!("and {} too", b.id), None);
    let none = a.post("no mention of anyone", None);
    let out = a.json(&["post", "hello @nobody-known"]);
    assert_eq!(out["mentions"], serde_json::json!([]));
    b.holds(&a, a.seq());
    b.holds(&c, c.seq());
    let mentions: Vec<String> = entries(&b.json(&["mentions"]))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        mentions.contains(&m1) && mentions.contains(&m2),
        "{mentions:?}"
    );
    assert!(!mentions.contains(&none));
    assert!(entries(&a.json(&["mentions"])).is_empty());

    // --- reactions: counted once per feed and reaction ---
    b.json(&["react", &root, "👍"]);
    b.json(&["react", &root, "👍"]);
    c.json(&["react", &root, "👍"]);
    c.json(&["react", &root, "wow"]);
    fails_with(c.dir(), &["react", &root, "   "], "reaction refused");
    fails_with(
        c.dir(),
        &["react", &root, &"x".repeat(40)],
        "reaction refused",
    );
    fails_with(c.dir(), &["react", "%nope.b3", "👍"], "not a message id");
    a.holds(&b, b.seq());
    a.holds(&c, c.seq());
    let t = a.json(&["thread", &root]);
    assert_eq!(
        t["root"]["reactions"],
        serde_json::json!([{"text": "👍", "count": 2}, {"text": "wow", "count": 1}]),
        "{t}"
    );
    let text = String::from_utf8_lossy(&kith(a.dir(), &["feed"]).stdout).into_owned();
    assert!(text.contains("👍 2"), "{text}");
}

#[test]
fn a_contact_card_is_followed_and_the_port_is_kept_across_restarts() {
    // The default port: kept in the data directory, the same after a restart.
    let home = Home::init();
    let first = {
        let _d = Daemon::start(&home.dir, &[]);
        listen_addr(&home.dir)
    };
    let kept = std::fs::read_to_string(home.dir.join("listen.port")).unwrap();
    assert_eq!(first.rsplit(':').next().unwrap(), kept.trim());
    let again = {
        let _d = Daemon::start(&home.dir, &[]);
        listen_addr(&home.dir)
    };
    assert_eq!(first, again);

    // A card names the node and where to dial it; a fresh node follows it and replicates.
    let (a, b) = (Node::start(), Node::start());
    a.post("reachable by card", None);
    let card = a.json(&["card"]);
    let text = card["card"].as_str().unwrap().to_string();
    assert!(text.starts_with(&format!("kith:{}", a.id)), "{card}");
    assert!(text.contains(&format!("addr={}", a.addr)), "{card}");
    let qr = String::from_utf8_lossy(&kith(a.dir(), &["card", "--qr"]).stdout).into_owned();
    assert!(qr.contains('█') || qr.contains('▀'), "{qr}");
    assert!(qr.ends_with(&format!("{text}\n")));
    let followed = b.json(&["follow", &text]);
    assert_eq!(followed["contact"]["following"], true, "{followed}");
    b.holds(&a, a.seq());
    fails_with(b.dir(), &["follow", "kith:@garbage.ed25519"], "card");
    fails_with(
        b.dir(),
        &["follow", &format!("kith:{}?addr=nohost", a.id)],
        "not HOST:PORT",
    );
}

fn restore(dir: &Path, phrase: &str) -> std::process::Output {
    let mut child = Command::new(kith_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["init", "--restore", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn init --restore");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(phrase.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_restored_identity_gets_its_feed_back_and_posts_on_without_a_fork() {
    let mut a = Node::start();
    let b = Node::start();
    b.follow(&a);
    for i in 0..5 {
        a.post(&format!("before the laptop was lost {i}"), None);
    }
    b.holds(&a, a.seq());
    let held = a.seq();
    let export = a.json(&["identity", "export"]);
    let phrase = export["phrase"].as_str().unwrap().to_string();
    assert_eq!(phrase.split(' ').count(), 24);
    assert_eq!(export["id"], a.id.as_str());
    let a_id = a.id.clone();
    // The laptop is lost: its daemon gone (its connections closed), its data directory with it.
    a.stop();
    drop(a);

    // A mistyped phrase is refused by name and leaves no identity behind.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("restored");
    let mut words: Vec<&str> = phrase.split(' ').collect();
    let other = (1..24).find(|&i| words[i] != words[0]).unwrap();
    words.swap(0, other);
    let out = restore(&dir, &words.join(" "));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kith recovery phrase"));
    assert!(!dir.join("secret.key").exists());

    let out = restore(&dir, &format!("{phrase}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(restored["id"], a_id.as_str());
    // Without --resync-own-feed the daemon refuses: it would fork the feed.
    let out = kith(&dir, &["daemon", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resync-own-feed"));
    let _da = Daemon::start(&dir, &["--listen", "127.0.0.1:0", "--resync-own-feed"]);
    // Nothing is appended to the own feed before it is back: not a post, not a follow.
    fails_with(&dir, &["post", "too early"], "resyncing your own feed");
    fails_with(&dir, &["follow", &b.id], "resyncing your own feed");
    // The restored node reaches B, who follows it and holds its feed: the feed comes back.
    kith_json(
        &dir,
        &["connect", &format!("{}@{}", b.id, b.addr), "--json"],
    );
    eventually_blocking("the own feed back from B", SOON, POLL, || {
        head_seq(&dir, &a_id) == held
    });
    let next = kith_json(&dir, &["post", "back again", "--json"]);
    assert_eq!(next["seq"], held + 1);
    eventually_blocking("B takes the new post: no fork", SOON, POLL, || {
        head_seq(b.dir(), &a_id) == held + 1
    });
}

/// A restored identity whose feed is longer than one replication batch
/// (`REPLICATION_BATCH_MAX`): posting stays refused until every entry a follower holds is
/// back, not only the first batch, so the first post after the restore follows the whole feed
/// and the follower takes it (no fork). A client keeps trying to post during the catch-up.
#[test]
fn a_restored_feed_longer_than_one_batch_is_whole_before_the_next_post() {
    let held = 12 * kith::limits::REPLICATION_BATCH_MAX + 500;
    let home = Home::init();
    support::seed_posts(&home.dir, held);
    let a_id = home.id();
    let a_daemon = Daemon::start(&home.dir, LOOPBACK);
    let a_addr = listen_addr(&home.dir);
    let b = Node::start();
    let followed = b.json(&["follow", &a_id, "--addr", &a_addr]);
    assert_eq!(followed["contact"]["following"], true, "{followed}");
    eventually_blocking("B holds all of A", SOON, POLL, || {
        head_seq(b.dir(), &a_id) == held as u64
    });
    let phrase = kith_json(&home.dir, &["identity", "export", "--json"])["phrase"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(a_daemon.stop(), "A stops cleanly");
    drop(home);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("restored");
    let out = restore(&dir, &phrase);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _da = Daemon::start(&dir, &["--listen", "127.0.0.1:0", "--resync-own-feed"]);
    // A client that posts as soon as it is let: its first accepted post must follow the whole
    // feed B holds.
    let poster = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + SOON;
            let mut refused = 0u32;
            while std::time::Instant::now() < deadline {
                let out = kith(&dir, &["post", "first after the restore", "--json"]);
                if out.status.success() {
                    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                    return (v["seq"].as_u64(), refused);
                }
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                assert!(err.contains("resyncing your own feed"), "{err}");
                refused += 1;
            }
            (None, refused)
        })
    };
    kith_json(
        &dir,
        &["connect", &format!("{}@{}", b.id, b.addr), "--json"],
    );
    let (seq, refused) = poster.join().unwrap();
    println!("{refused} posts refused while the feed came back");
    assert_eq!(
        seq,
        Some(held as u64 + 1),
        "the first post after the restore follows all {held} entries B holds"
    );
    assert_eq!(head_seq(&dir, &a_id), held as u64 + 1);
    eventually_blocking("B takes the new post: no fork", SOON, POLL, || {
        head_seq(b.dir(), &a_id) == held as u64 + 1
    });
}

/// `kith follow CARD` on a running node that knows no switchboard, given only the card of a node
/// behind one (its addresses taken out, so that the switchboard is the only way to it): the
/// daemon links to the card's switchboard at once — no restart — and replicates the node's feed
/// through it. Following the card again adds no second link.
#[test]
fn following_a_card_links_to_its_switchboard_without_a_restart() {
    let sb_home = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let _sb = support::Switchboard::start(sb_home.path(), port);
    let sb = format!("127.0.0.1:{port}");
    let a_home = Home::init();
    let _a = Daemon::start(
        &a_home.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &sb],
    );
    let a_id = a_home.id();
    kith_json(
        &a_home.dir,
        &["post", "only through the switchboard", "--json"],
    );
    eventually_blocking("A joined its switchboard", SOON, POLL, || {
        kith_json(&a_home.dir, &["switchboards", "--json"])["switchboards"][0]["link"]["state"]
            == "joined"
    });
    let card = kith_json(&a_home.dir, &["card", "--json"]);
    let full = card["card"].as_str().unwrap();
    assert!(
        full.contains("sb="),
        "the card names the switchboard: {full}"
    );
    // Only the id and the switchboard: no address to dial.
    let (head, query) = full.split_once('?').unwrap();
    let parts: Vec<&str> = query.split('&').filter(|p| p.starts_with("sb=")).collect();
    let only_sb = format!("{head}?{}", parts.join("&"));

    let b = Node::start();
    assert_eq!(
        b.json(&["switchboards"])["switchboards"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "B knows no switchboard"
    );
    let followed = b.json(&["follow", &only_sb]);
    assert_eq!(followed["contact"]["following"], true, "{followed}");
    assert_eq!(
        followed["switchboards_added"].as_array().map(Vec::len),
        Some(1),
        "{followed}"
    );
    eventually_blocking("B holds A's post", SOON, POLL, || {
        head_seq(b.dir(), &a_id) >= 1
    });
    let links = b.json(&["switchboards"]);
    let list = links["switchboards"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{links}");
    assert_eq!(list[0]["link"]["state"], "joined", "{links}");
    assert_eq!(list[0]["remembered"], true, "{links}");
    // Again: nothing new to link to.
    let again = b.json(&["follow", &only_sb]);
    assert_eq!(
        again["switchboards_added"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    let status = b.json(&["status"]);
    assert_eq!(
        status["switchboards"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
}

/// `--before` pages a listing longer than one answer (issue 14, item 6): `feed` and `timeline`
/// read page by page give every entry once, newest first, and a full page names the id to go
/// on from; a `--before` that is not a held message is refused by name.
#[test]
fn feed_and_timeline_page_with_before() {
    let home = Home::init();
    support::seed_posts(&home.dir, 130);
    let _d = Daemon::start(&home.dir, LOOPBACK);
    let me = home.id();
    for listing in [vec!["feed"], vec!["timeline"]] {
        let mut seen: Vec<u64> = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..10 {
            let mut args: Vec<&str> = listing.clone();
            args.extend(["--limit", "50", "--json"]);
            if let Some(b) = &before {
                args.extend(["--before", b]);
            }
            let page = kith_json(&home.dir, &args);
            let list = entries(&page);
            assert!(list.len() <= 50, "{page}");
            seen.extend(list.iter().map(|e| e["seq"].as_u64().unwrap()));
            match page["next_before"].as_str() {
                Some(next) => {
                    assert_eq!(list.len(), 50, "only a full page goes on: {page}");
                    assert_eq!(list.last().unwrap()["id"], next);
                    before = Some(next.to_string());
                }
                None => break,
            }
        }
        let want: Vec<u64> = (1..=130).rev().collect();
        assert_eq!(seen, want, "{listing:?}: every post once, newest first");
    }
    fails_with(
        &home.dir,
        &["feed", "--before", "%nope.b3"],
        "not a message id",
    );
    let other = format!("%{}.b3", "A".repeat(43) + "=");
    fails_with(
        &home.dir,
        &["timeline", "--before", &other],
        "not held here",
    );
    let _ = me;
}
