//! An invite-only switchboard remembers its members, with real processes: a code admits a key
//! once, and that member is back online after the switchboard restarts (twice) without a new
//! code; a member the operator removes is refused; a revoked code admits no one.

mod support;

use std::path::Path;
use std::time::Duration;

use kith::testing::eventually_blocking;
use support::{free_port, kith, kith_json, Daemon, Home, Switchboard, POLL};

fn online(sb: &Path) -> u64 {
    kith_json(sb, &["status", "--json"])["online"]
        .as_u64()
        .unwrap()
}

fn refused(sb: &Path) -> u64 {
    kith_json(sb, &["status", "--json"])["counters"]["refused"]
        .as_u64()
        .unwrap()
}

fn invite(sb: &Path) -> String {
    kith_json(sb, &["switchboard", "invite", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_online(sb: &Path, n: u64, what: &str) {
    eventually_blocking(what, Duration::from_secs(40), POLL, || online(sb) == n);
}

#[test]
fn members_rejoin_without_a_code_across_restarts_until_removed() {
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let mut sb = Switchboard::start_with(&sb_dir, port, &["--invite-only"]);

    let (a, b, c) = (Home::init(), Home::init(), Home::init());
    let join = |home: &Home, code: &str| {
        let with_code = format!("{target}#{code}");
        Daemon::start(
            &home.dir,
            &["--listen", "127.0.0.1:0", "--switchboard", &with_code],
        )
    };
    let _da = join(&a, &invite(&sb_dir));
    let _db = join(&b, &invite(&sb_dir));
    wait_online(&sb_dir, 2, "a and b join with their codes");

    for restart in 1..=2 {
        drop(sb);
        sb = Switchboard::start_with(&sb_dir, port, &["--invite-only"]);
        wait_online(
            &sb_dir,
            2,
            &format!("a and b are back without a new code after restart {restart}"),
        );
    }
    let members = kith_json(&sb_dir, &["switchboard", "members", "--json"]);
    let ids: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a.id().as_str()) && ids.contains(&b.id().as_str()),
        "{members}"
    );

    // The operator removes a: its session ends and it is refused from then on.
    let before = refused(&sb_dir);
    kith_json(&sb_dir, &["switchboard", "remove", &a.id(), "--json"]);
    wait_online(&sb_dir, 1, "a is gone once removed");
    eventually_blocking(
        "a's next join is refused",
        Duration::from_secs(30),
        POLL,
        || refused(&sb_dir) > before,
    );
    assert_eq!(online(&sb_dir), 1, "a got back in after its removal");
    let again = kith(&sb_dir, &["switchboard", "remove", &a.id()]);
    assert!(!again.status.success(), "removing a non-member says so");

    // A revoked code admits no one.
    let code = invite(&sb_dir);
    let listed = kith_json(&sb_dir, &["switchboard", "invite", "--list", "--json"]);
    assert!(listed.to_string().contains(&code), "{listed}");
    kith_json(
        &sb_dir,
        &["switchboard", "invite", "--revoke", &code, "--json"],
    );
    let before = refused(&sb_dir);
    let _dc = join(&c, &code);
    eventually_blocking(
        "c is refused with a revoked code",
        Duration::from_secs(30),
        POLL,
        || refused(&sb_dir) > before,
    );
    assert_eq!(online(&sb_dir), 1);
    drop(sb);
}

/// A daemon refused for want of an invite code does not redial on its own: one attempt, one
/// log line, and `kith status` says it waits for a new code (introductions issue, item 2: it
/// used to redial four times a second, forever, logging three lines each time).
#[test]
fn a_refused_daemon_waits_for_a_code_and_says_so_once() {
    use std::io::Read;
    let home = tempfile::tempdir().unwrap();
    let sb_dir = home.path().join("sb");
    let port = free_port();
    let _sb = Switchboard::start_with(&sb_dir, port, &["--invite-only"]);
    let a = Home::init();
    let mut da = Daemon::start(
        &a.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &format!("127.0.0.1:{port}"),
        ],
    );
    eventually_blocking("a is refused", Duration::from_secs(20), POLL, || {
        refused(&sb_dir) >= 1
    });
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        refused(&sb_dir),
        1,
        "the daemon redialled after an invite refusal"
    );
    let link = kith_json(&a.dir, &["status", "--json"])["switchboards"][0].clone();
    assert_eq!(link["state"], "refused", "{link}");
    assert_eq!(link["waiting_for_invite"], true, "{link}");
    let text = kith(&a.dir, &["status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("waiting for a new invite code"),
        "status text says what it waits for"
    );

    da.child.kill().unwrap();
    let mut log = String::new();
    da.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let lines = log
        .lines()
        .filter(|l| l.contains("refused this node"))
        .count();
    assert_eq!(lines, 1, "one log line for the refusal:\n{log}");
}
