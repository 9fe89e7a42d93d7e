//! The daemon and its client commands, as a new user runs them: real `kith` processes.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{kith, kith_json, Daemon, Home};

#[test]
fn three_posts_survive_a_restart() {
    let home = Home::init();
    let daemon = Daemon::start(&home.dir, &[]);
    for text in ["one", "two", "three"] {
        let out = kith(&home.dir, &["post", text]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with('%'));
    }
    let check = |feed: serde_json::Value| {
        let entries = feed["entries"].as_array().unwrap().clone();
        let seen: Vec<(u64, String)> = entries
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![(3, "three".into()), (2, "two".into()), (1, "one".into())]
        );
    };
    check(kith_json(&home.dir, &["feed", "--json"]));
    assert!(daemon.stop(), "daemon did not exit cleanly on SIGTERM");
    let _daemon = Daemon::start(&home.dir, &[]);
    check(kith_json(&home.dir, &["feed", "--json"]));
}

#[test]
fn a_second_daemon_on_one_directory_exits_naming_the_lock() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, &[]);
    let out = kith(&home.dir, &["daemon"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kith.lock"), "stderr: {err}");
}

#[test]
fn init_refuses_to_overwrite_and_clients_say_how_to_start_the_daemon() {
    let home = Home::init();
    let id = home.id();
    let out = kith(&home.dir, &["init"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(home.id(), id);
    let out = kith(&home.dir, &["post", "hello"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kith daemon"));
}

#[test]
fn follow_block_contacts_and_timeline() {
    let home = Home::init();
    let friend = Home::init().id();
    let _daemon = Daemon::start(&home.dir, &[]);
    kith_json(&home.dir, &["post", "mine", "--json"]);
    let followed = kith_json(
        &home.dir,
        &["follow", &friend, "--addr", "127.0.0.1:9", "--json"],
    );
    assert_eq!(followed["contact"]["following"], true);
    let contacts = kith_json(&home.dir, &["contacts", "--json"]);
    assert_eq!(contacts["contacts"][0]["id"], friend.as_str());
    assert_eq!(contacts["contacts"][0]["addrs"][0], "127.0.0.1:9");
    // Following is public: a follow entry in the own feed. Blocking is not.
    let feed = kith_json(&home.dir, &["feed", "--json"]);
    assert_eq!(feed["entries"][0]["type"], "follow");
    let blocked = kith_json(&home.dir, &["block", &friend, "--json"]);
    assert_eq!(blocked["contact"]["blocked"], true);
    assert_eq!(blocked["contact"]["following"], false);
    let kinds: Vec<String> = kith_json(&home.dir, &["feed", "--json"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        vec!["unfollow", "follow", "post"],
        "a block must not be published"
    );
    let out = kith(&home.dir, &["follow", &friend]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unblock"));
    let timeline = kith_json(&home.dir, &["timeline", "--json"]);
    assert_eq!(timeline["entries"][0]["text"], "mine");
    let out = kith(&home.dir, &["follow", "@nonsense"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a kith id")
    );
}

#[test]
fn status_shows_the_live_supervision_tree() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, &[]);
    let status = kith_json(&home.dir, &["status", "--json"]);
    let tree = &status["supervision"];
    assert_eq!(tree["name"], "daemon");
    assert_eq!(tree["strategy"], "rest_for_one");
    let ids: Vec<&str> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "store_writer",
            "replicators",
            "peers",
            "entries",
            "rolodex",
            "listener",
            "switchboards",
            "link_starter",
            "control",
            "blobs"
        ]
    );
    assert!(tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "running"));
}

/// SIGKILL during a burst of posts: the store opens, the feed verifies end to end with no gap,
/// and every post whose command returned success is there.
#[test]
fn sigkill_during_a_burst_loses_no_acknowledged_post() {
    const POSTERS: usize = 4;
    const POSTS_MAX: usize = 8_000;
    let home = Home::init();
    let daemon = Daemon::start(&home.dir, &[]);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..POSTERS)
        .map(|p| {
            let (dir, acked, stop) = (home.dir.clone(), Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                for i in 0..POSTS_MAX / POSTERS {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let out = kith(&dir, &["post", &format!("burst {p}-{i}")]);
                    if out.status.success() {
                        acked
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&out.stdout).trim().to_string());
                    }
                }
            })
        })
        .collect();
    // Kill once a good number of posts are acknowledged (bounded in time).
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 1_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon.kill();
    stop.store(true, Ordering::Relaxed);
    for p in posters {
        p.join().unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(
        acked.len() >= 1_000,
        "only {} posts were acknowledged",
        acked.len()
    );

    // The store opens and validates end to end.
    let id: kith::identity::FeedId = home.id().parse().unwrap();
    {
        let store = kith::store::Store::open(&home.dir).unwrap();
        let reader = store.read().unwrap();
        let held = reader.verify_feed(&id, kith::feed::now_ms()).unwrap();
        assert!(held as usize >= acked.len());
        let ids: HashSet<String> = reader
            .feed(&id, 100_000)
            .unwrap()
            .iter()
            .map(|e| e.id.to_string())
            .collect();
        let missing: Vec<_> = acked.difference(&ids).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged posts are missing",
            missing.len()
        );
    }
    // And the daemon comes back on it and goes on appending.
    let _daemon = Daemon::start(&home.dir, &[]);
    let posted = kith_json(&home.dir, &["post", "after the crash", "--json"]);
    assert!(posted["seq"].as_u64().unwrap() as usize > acked.len());
}
