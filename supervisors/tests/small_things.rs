//! The small things a user meets (the hardening issue, item 9), each on real processes: an error
//! printed once, `--limit` out of range refused by name, an invalid log filter said on stderr,
//! `RUST_LOG` beating `log` in config.toml, the all-zero key refused, another user's permission
//! error named as such, and introduction refusals counted by reason on a switchboard.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kith::identity::FeedId;
use kith::limits::QUERY_LIMIT_MAX;
use kith::wire::switchboard::{ClientMsg, IntroAnswer, ServerMsg};
use support::sb_client::Client;
use support::{free_port, kith, kith_bin, kith_json, Daemon, Home, Switchboard};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_port_in_use_is_reported_once() {
    let home = Home::init();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = kith(&home.dir, &["daemon", "--listen", &addr]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(
        err.matches("os error 98").count(),
        1,
        "printed twice: {err}"
    );
}

#[test]
fn a_limit_out_of_range_is_refused_with_the_range() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, &["--listen", "127.0.0.1:0"]);
    for text in ["one", "two"] {
        assert!(kith(&home.dir, &["post", text]).status.success());
    }
    let max = QUERY_LIMIT_MAX.to_string();
    let over = (QUERY_LIMIT_MAX + 1).to_string();
    for command in ["timeline", "feed"] {
        for limit in ["0", over.as_str()] {
            let out = kith(&home.dir, &[command, "--limit", limit]);
            assert!(!out.status.success(), "{command} --limit {limit} succeeded");
            assert_eq!(
                stderr_of(&out).trim(),
                format!("kith: --limit {limit} is out of range: give 1 to {max}")
            );
        }
        let one = kith_json(&home.dir, &[command, "--limit", "1", "--json"]);
        assert_eq!(one["entries"].as_array().unwrap().len(), 1);
        let all = kith_json(&home.dir, &[command, "--limit", &max, "--json"]);
        assert_eq!(all["entries"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn an_invalid_log_filter_is_said_and_info_used() {
    let home = Home::init();
    for var in ["KITH_LOG", "RUST_LOG"] {
        let out = Command::new(kith_bin())
            .args(["--data-dir"])
            .arg(&home.dir)
            .arg("whoami")
            .env_remove("KITH_LOG")
            .env_remove("RUST_LOG")
            .env(var, "kith=[[")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(
            err.contains("the log filter `kith=[[` is not valid")
                && err.contains("logging at `info` instead"),
            "{var}: {err}"
        );
    }
}

/// Start `kith daemon` with `env` and wait (bounded) for a stderr line containing `want`.
fn daemon_logs(dir: &Path, env: &[(&str, &str)], want: &str) -> bool {
    let mut command = Command::new(kith_bin());
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .env_remove("KITH_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = want.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&want) {
                let _ = tx.send(());
                return;
            }
        }
    });
    // The daemon is up once its control socket answers; the line comes before that.
    kith::testing::eventually_blocking(
        "the daemon answers",
        Duration::from_secs(20),
        support::POLL,
        || kith(dir, &["status", "--json"]).status.success(),
    );
    let seen = rx.recv_timeout(Duration::from_secs(5)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn rust_log_beats_log_in_config_toml_as_the_readme_says() {
    let home = Home::init();
    std::fs::write(home.dir.join("config.toml"), "log = \"off\"\n").unwrap();
    assert!(
        !daemon_logs(&home.dir, &[], "kith daemon running"),
        "config.toml's `off` is not applied"
    );
    assert!(
        daemon_logs(&home.dir, &[("RUST_LOG", "info")], "kith daemon running"),
        "RUST_LOG did not beat config.toml"
    );
    assert!(
        !daemon_logs(
            &home.dir,
            &[("RUST_LOG", "info"), ("KITH_LOG", "off")],
            "kith daemon running"
        ),
        "KITH_LOG did not beat RUST_LOG"
    );
}

#[test]
fn following_the_all_zero_key_is_refused() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, &["--listen", "127.0.0.1:0"]);
    let zero = FeedId([0; 32]).to_string();
    for command in ["follow", "block"] {
        let out = kith(&home.dir, &[command, &zero]);
        assert!(!out.status.success(), "{command} of the zero key succeeded");
        let err = stderr_of(&out);
        assert!(err.contains("is a weak ed25519 key"), "{err}");
    }
    let contacts = kith_json(&home.dir, &["contacts", "--json"]);
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 0);
}

#[test]
fn another_users_permission_error_is_named() {
    let home = Home::init();
    let _daemon = Daemon::start(&home.dir, &["--listen", "127.0.0.1:0"]);
    // Run the client as `nobody`: the data directory is root's and owner-only.
    let out = Command::new(kith_bin())
        .arg("--data-dir")
        .arg(&home.dir)
        .arg("status")
        .env_remove("KITH_DATA_DIR")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("permission denied on"), "{err}");
    assert!(!err.contains("no kith daemon is running"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introduction_refusals_are_counted_by_reason() {
    let home = tempfile::tempdir().unwrap();
    let sb = home.path().join("sb");
    let port = free_port();
    let _switchboard = Switchboard::start(&sb, port);
    let node: FeedId = kith_json(&sb, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut alice = Client::join(1, port, &node).await;
    let mut bob = Client::join(2, port, &node).await;
    let nobody = FeedId([0x55; 32]);
    alice.write(ClientMsg::Introduce { to: nobody }).await;
    alice.write(ClientMsg::Introduce { to: alice.id }).await;
    alice.write(ClientMsg::Introduce { to: bob.id }).await;
    let from = match bob.read().await {
        ServerMsg::IntroRequest { from, .. } => from,
        other => panic!("bob was sent {other:?}"),
    };
    bob.write(ClientMsg::IntroAnswer {
        from,
        answer: IntroAnswer::Refuse,
    })
    .await;
    let refused = alice
        .drain()
        .await
        .into_iter()
        .filter(|m| matches!(m, ServerMsg::IntroRefused { .. }))
        .count();
    assert_eq!(refused, 3, "alice was told of three refusals");
    let counters = kith_json(&sb, &["status", "--json"])["counters"].clone();
    assert_eq!(counters["introductions_refused"].as_u64(), Some(3));
    let by = &counters["introductions_refused_by"];
    for (reason, n) in [
        ("not_connected", 1),
        ("self", 1),
        ("declined", 1),
        ("over_rate", 0),
    ] {
        assert_eq!(by[reason].as_u64(), Some(n), "{reason}: {by}");
    }
}
