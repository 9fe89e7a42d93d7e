//! Switchboard presence with real processes: a daemon sees whom it follows come online (with
//! their status line) and go away, and reconnects by itself when the switchboard restarts; the
//! operator sets the per-client relay limits.

mod support;

use std::path::Path;
use std::time::Duration;

use kith::testing::eventually_blocking;
use support::{free_port, identity, kith, kith_bin, kith_json, Daemon, Home, Switchboard, POLL};

fn contact(dir: &Path, id: &str) -> serde_json::Value {
    let contacts = kith_json(dir, &["contacts", "--json"]);
    contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn followers_see_presence_and_links_survive_a_switchboard_restart() {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let port = free_port();
    let sb = Switchboard::start(&sb_dir, port);
    let target = format!("127.0.0.1:{port}");

    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    let _da = Daemon::start(
        &a.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &target],
    );
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    let db = Daemon::start(
        &b.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &target],
    );
    kith_json(&b.dir, &["presence", "set", "writing tests", "--json"]);

    let took = eventually_blocking(
        "a sees b online with its status",
        Duration::from_secs(20),
        POLL,
        || {
            let c = contact(&a.dir, &b_id);
            c["online"] == true && c["status"] == "writing tests"
        },
    );
    println!("b seen online with status after {took:?}");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert_eq!(status["role"], "switchboard");
    assert_eq!(status["online"], 2);
    let link = &kith_json(&a.dir, &["status", "--json"])["switchboards"][0];
    assert_eq!(
        (&link["target"], &link["state"], &link["id"]),
        (&target.as_str().into(), &"joined".into(), &status["id"]),
        "{link}"
    );
    assert!(
        link["observed"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{link}"
    );

    db.kill();
    let took = eventually_blocking(
        "a sees b offline (the switchboard notices at the idle timeout)",
        Duration::from_secs(60),
        POLL,
        || contact(&a.dir, &b_id)["online"] == false,
    );
    println!("b seen offline {took:?} after it was killed");

    // B comes back, with the status line it set before it was killed; then the switchboard
    // restarts: both daemons reconnect by themselves.
    let _db = Daemon::start(
        &b.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &target],
    );
    eventually_blocking(
        "a sees b online again, with its saved status",
        Duration::from_secs(20),
        POLL,
        || {
            let c = contact(&a.dir, &b_id);
            c["online"] == true && c["status"] == "writing tests"
        },
    );
    drop(sb);
    eventually_blocking(
        "a forgets what the dead switchboard said",
        Duration::from_secs(60),
        POLL,
        || contact(&a.dir, &b_id)["online"] == false,
    );
    let link = &kith_json(&a.dir, &["status", "--json"])["switchboards"][0];
    assert!(
        link["state"] == "connecting" && link["reason"].is_string(),
        "{link}"
    );
    let _sb = Switchboard::start(&sb_dir, port);
    let took = eventually_blocking(
        "a sees b online through the restarted switchboard",
        Duration::from_secs(60),
        POLL,
        || contact(&a.dir, &b_id)["online"] == true,
    );
    println!("reconnected and seen online {took:?} after the switchboard restarted");
    let refused = kith(&sb_dir, &["post", "hello"]);
    assert!(!refused.status.success(), "a switchboard keeps no feeds");
}

/// Two daemons that know only each other's ids and one switchboard's address are introduced
/// and replicate; on loopback the direct path works, so the traffic leaves the switchboard (its
/// forwarded bytes stop growing). A third that neither follows is refused with a clear message by
/// B, which serves only the ids it follows (`--serve follows`; serving everyone, it would let a
/// stranger in through the relay only).
/// (`switchboard_netns.rs` has the case where only the relay can carry them.)
#[test]
fn introduced_peers_replicate_through_the_switchboard_and_strangers_are_refused() {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let port = free_port();
    let _sb = Switchboard::start(&sb_dir, port);
    let target = format!("127.0.0.1:{port}");

    let (a, b, c) = (Home::init(), Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let args = ["--listen", "127.0.0.1:0", "--switchboard", target.as_str()];
    let follows_only = [&args[..], &["--serve", "follows"]].concat();
    let (_da, _db, _dc) = (
        Daemon::start(&a.dir, &args),
        Daemon::start(&b.dir, &follows_only),
        Daemon::start(&c.dir, &args),
    );
    kith_json(&a.dir, &["post", "from a", "--json"]);
    kith_json(&b.dir, &["post", "from b", "--json"]);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);

    let has = |dir: &Path, text: &str| {
        kith_json(dir, &["timeline", "--json"])["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == text)
    };
    let took = eventually_blocking(
        "a and b have each other's posts",
        Duration::from_secs(60),
        POLL,
        || has(&a.dir, "from b") && has(&b.dir, "from a"),
    );
    println!("introduced and replicated {took:?} after the follows");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert!(status["counters"]["introductions"].as_u64().unwrap() >= 1);
    // Hole punching: the connection is direct (not the virtual socket's fd00::/8 address).
    eventually_blocking(
        "a's connection to b is direct",
        Duration::from_secs(20),
        POLL,
        || {
            let conns = kith_json(&a.dir, &["status", "--json"])["connections"]
                .as_array()
                .unwrap()
                .clone();
            conns.iter().any(|c| {
                c["peer"] == b_id.as_str() && c["addr"].as_str().unwrap().starts_with("127.0.0.1")
            })
        },
    );
    let forwarded = || {
        kith_json(&sb_dir, &["status", "--json"])["relay"]["forwarded_bytes"]
            .as_u64()
            .unwrap()
    };
    let before = forwarded();
    for i in 0..50 {
        kith_json(&b.dir, &["post", &format!("live {i} from b"), "--json"]);
    }
    eventually_blocking(
        "the live posts arrive",
        Duration::from_secs(20),
        POLL,
        || has(&a.dir, "live 49 from b"),
    );
    let grown = forwarded() - before;
    assert!(
        grown < 2_000,
        "the switchboard still carries the traffic: {grown} bytes for 50 posts"
    );

    // C follows nobody who follows it back: B refuses C's introduction.
    let out = kith(&c.dir, &["connect", &b_id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("they do not follow you"), "{err}");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert!(
        status["counters"]["introductions_refused"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

/// An invite-only switchboard admits a daemon only with a fresh, unused invite code.
#[test]
fn an_invite_only_switchboard_admits_each_code_once() {
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let port = free_port();
    let _sb = Switchboard::start_with(&sb_dir, port, &["--invite-only"]);
    let target = format!("127.0.0.1:{port}");
    let online = || {
        kith_json(&sb_dir, &["status", "--json"])["online"]
            .as_u64()
            .unwrap()
    };
    let refused = || {
        kith_json(&sb_dir, &["status", "--json"])["counters"]["refused"]
            .as_u64()
            .unwrap()
    };

    let (a, b, c) = (Home::init(), Home::init(), Home::init());
    let _da = Daemon::start(
        &a.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &target],
    );
    eventually_blocking(
        "a is refused without a code",
        Duration::from_secs(20),
        POLL,
        || refused() >= 1,
    );
    assert_eq!(online(), 0);
    let link = || kith_json(&a.dir, &["status", "--json"])["switchboards"][0].clone();
    eventually_blocking("a's status says why", Duration::from_secs(20), POLL, || {
        link()["state"] == "refused"
    });
    assert!(
        link()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("invite")),
        "{}",
        link()
    );

    let code = kith_json(&sb_dir, &["switchboard", "invite", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_string();
    let with_code = format!("{target}#{code}");
    let _db = Daemon::start(
        &b.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &with_code],
    );
    eventually_blocking(
        "b joins with the code",
        Duration::from_secs(20),
        POLL,
        || online() == 1,
    );

    let before = refused();
    let _dc = Daemon::start(
        &c.dir,
        &["--listen", "127.0.0.1:0", "--switchboard", &with_code],
    );
    eventually_blocking(
        "c is refused: the code was used",
        Duration::from_secs(20),
        POLL,
        || refused() > before,
    );
    assert_eq!(online(), 1);

    let open = tempfile::tempdir().unwrap();
    let open_dir = open.path().join("open");
    let _open = Switchboard::start(&open_dir, free_port());
    let out = kith(&open_dir, &["switchboard", "invite"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--invite-only")
    );
}

/// The operator sets the per-client relay limits; the switchboard reports them, and refuses
/// limits too low to hold a frame before it starts. `--poll-idle` holds its request while the
/// switchboard runs.
#[test]
fn an_operator_sets_the_per_client_relay_limits() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("sb");
    let _sb = Switchboard::start_with(
        &dir,
        free_port(),
        &[
            "--client-packets-per-sec",
            "5000",
            "--client-bytes-per-sec",
            "4194304",
        ],
    );
    let relay = &kith_json(&dir, &["status", "--json"])["relay"];
    assert_eq!(relay["client_packets_per_sec"].as_u64(), Some(5_000));
    assert_eq!(relay["client_bytes_per_sec"].as_u64(), Some(4_194_304));
    let text = String::from_utf8_lossy(&kith(&dir, &["status"]).stdout).to_string();
    assert!(
        text.contains("per-client limits: 5000 packets/s, 4194304 bytes/s")
            && text.contains("online: 0 (open;"),
        "{text}"
    );

    poll_idle_is_held_while_the_switchboard_runs(home.path());

    let mut low = std::process::Command::new(kith_bin())
        .arg("--data-dir")
        .arg(home.path().join("low"))
        .args([
            "switchboard",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--client-bytes-per-sec",
            "1000",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually_blocking(
        "the switchboard refuses to start",
        Duration::from_secs(20),
        POLL,
        || low.try_wait().unwrap().is_some(),
    );
    let out = low.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("1000 bytes/s is below the minimum"),
        "{stderr}"
    );
}

/// `--poll-idle` holds a PM QoS request (idle CPUs poll) for the life of the process; it needs
/// root, and without it the check says so and passes.
fn poll_idle_is_held_while_the_switchboard_runs(home: &Path) {
    const DEVICE: &str = "/dev/cpu_dma_latency";
    let target = || {
        let mut value = [0u8; 4];
        std::fs::File::open(DEVICE)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut value))
            .map(|()| i32::from_ne_bytes(value))
    };
    let writable = std::fs::OpenOptions::new().write(true).open(DEVICE).is_ok();
    let Ok(before) = target().map_err(|e| println!("skipped --poll-idle: {e}")) else {
        return;
    };
    if !writable || before == 0 {
        return println!(
            "skipped --poll-idle: {DEVICE} not writable here, or already held at 0 ({before})"
        );
    }
    let dir = home.join("polled");
    let sb = Switchboard::start_with(&dir, free_port(), &["--poll-idle"]);
    assert_eq!(
        kith_json(&dir, &["status", "--json"])["cpus_polled_when_idle"],
        true
    );
    assert_eq!(
        target().unwrap(),
        0,
        "the kernel holds the request while the switchboard runs"
    );
    drop(sb);
    eventually_blocking(
        "the request is withdrawn with the process",
        Duration::from_secs(10),
        POLL,
        || target().unwrap() == before,
    );
}

/// A switchboard given once is remembered with the key learned on first use: the daemon goes
/// back to it after a restart without being told, and refuses an impostor on the same address.
#[test]
fn switchboards_are_remembered_and_their_keys_stay_pinned() {
    let sb_home = tempfile::tempdir().unwrap();
    let (sb_dir, impostor_dir) = (sb_home.path().join("sb"), sb_home.path().join("impostor"));
    let port = free_port();
    let sb = Switchboard::start(&sb_dir, port);
    let online = |dir: &Path| {
        kith_json(dir, &["status", "--json"])["online"]
            .as_u64()
            .unwrap()
    };

    let a = Home::init();
    let da = Daemon::start(
        &a.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &format!("127.0.0.1:{port}"),
        ],
    );
    eventually_blocking("a joins", Duration::from_secs(20), POLL, || {
        online(&sb_dir) == 1
    });
    assert!(da.stop());
    eventually_blocking("a has left", Duration::from_secs(20), POLL, || {
        online(&sb_dir) == 0
    });

    // No --switchboard this time: the remembered one is used.
    let da = Daemon::start(&a.dir, &["--listen", "127.0.0.1:0"]);
    eventually_blocking("a rejoins by itself", Duration::from_secs(30), POLL, || {
        online(&sb_dir) == 1
    });
    assert!(da.stop());

    // Another key on the same address is not the switchboard a pinned.
    drop(sb);
    let impostor = Switchboard::start(&impostor_dir, port);
    let _da = Daemon::start(&a.dir, &["--listen", "127.0.0.1:0"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        online(&impostor_dir),
        0,
        "a joined a switchboard with another key"
    );
    drop(impostor);
}

/// Two switchboards joined into a cluster share presence: a daemon on one sees a follow that is
/// connected to the other.
#[test]
fn a_cluster_shares_who_is_online() {
    let homes = tempfile::tempdir().unwrap();
    let (s1_dir, s2_dir) = (homes.path().join("s1"), homes.path().join("s2"));
    let (p1, p2) = (free_port(), free_port());
    let s2_key = identity(&s2_dir);
    let _s1 = Switchboard::start_with(&s1_dir, p1, &["--cluster-key", &s2_key]);
    let _s2 = Switchboard::start_with(&s2_dir, p2, &["--join", &format!("127.0.0.1:{p1}")]);
    let s1_id = kith_json(&s1_dir, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually_blocking("s2 links to s1", Duration::from_secs(20), POLL, || {
        kith_json(&s2_dir, &["status", "--json"])["cluster"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == s1_id.as_str())
    });
    eventually_blocking(
        "s1 sees the link too",
        Duration::from_secs(20),
        POLL,
        || {
            !kith_json(&s1_dir, &["status", "--json"])["cluster"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    );

    let (a, b) = (Home::init(), Home::init());
    let b_id = b.id();
    let _da = Daemon::start(
        &a.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &format!("127.0.0.1:{p1}"),
        ],
    );
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    let _db = Daemon::start(
        &b.dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--switchboard",
            &format!("127.0.0.1:{p2}"),
        ],
    );
    kith_json(&b.dir, &["presence", "set", "on the other node", "--json"]);
    let took = eventually_blocking(
        "a, on s1, sees b, on s2, online",
        Duration::from_secs(30),
        POLL,
        || {
            let c = contact(&a.dir, &b_id);
            c["online"] == true && c["status"] == "on the other node"
        },
    );
    println!("seen across the cluster after {took:?}");
    assert_eq!(kith_json(&s1_dir, &["status", "--json"])["online"], 2);
}
