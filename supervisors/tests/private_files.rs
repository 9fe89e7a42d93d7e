//! Files private by default, and wrong invite codes throttled, with real processes (the hardening
//! issue, item 6).
//!
//! After a switchboard and a daemon start, every data directory is 0700 and every file holding a
//! secret or a membership is 0600 (a directory another user could read is tightened). A raw client
//! guessing invite codes is refused by name past its burst, without its code being checked (a
//! real code it sends then is not spent), and the switchboard counts it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kith::identity::FeedId;
use kith::limits::JOIN_GUESSES_BURST;
use kith::net::hello::NodeRole;
use kith::wire::switchboard::{ClientMsg, JoinRefusal, ServerMsg};
use support::sb_client::Client;
use support::{free_port, kith, kith_json, Daemon, Home, Switchboard};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_mode(path: &Path, want: u32) {
    assert_eq!(
        mode(path),
        want,
        "{} is {:o}, not {want:o}",
        path.display(),
        mode(path)
    );
}

#[test]
fn data_directories_are_0700_and_secret_or_membership_files_0600() {
    // A switchboard, started on a directory that does not exist yet, with an invite written.
    let home = tempfile::tempdir().unwrap();
    let sb = home.path().join("sb");
    let _switchboard = Switchboard::start_with(&sb, free_port(), &["--invite-only"]);
    kith_json(&sb, &["switchboard", "invite", "--json"]);
    assert_mode(&sb, 0o700);
    for file in ["secret.key", "invites.json", "control.sock", "kith.lock"] {
        assert_mode(&sb.join(file), 0o600);
    }

    // A daemon whose directory was opened up to other users since `kith init`.
    let node = Home::init();
    std::fs::set_permissions(&node.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _daemon = Daemon::start(&node.dir, &["--listen", "127.0.0.1:0"]);
    let set = kith(&node.dir, &["presence", "set", "out walking"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_mode(&node.dir, 0o700);
    assert_mode(&node.dir.join("store"), 0o700);
    for file in [
        "secret.key",
        "control.sock",
        "kith.lock",
        "status.json",
        "store/data.mdb",
        "store/lock.mdb",
    ] {
        assert_mode(&node.dir.join(file), 0o600);
    }

    // A shared directory such as /tmp is refused, not taken over.
    let shared = home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = kith(&shared, &["init"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is writable by every user"), "{err}");
    assert_eq!(mode(&shared), 0o777);
}

/// Dial as key `[seed; 32]`, send `Join` with `invite`, and return the answer.
async fn guess(seed: u8, port: u16, node: &FeedId, invite: &str) -> ServerMsg {
    let mut client = Client::hello(seed, port, node, NodeRole::Daemon)
        .await
        .expect("greeted");
    client
        .write(ClientMsg::Join {
            invite: Some(invite.to_string()),
        })
        .await;
    client.read().await
}

fn counter(dir: &Path, name: &str) -> u64 {
    kith_json(dir, &["status", "--json"])["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_invite_guesses_are_throttled_per_client_without_checking_the_code() {
    let home = tempfile::tempdir().unwrap();
    let sb = home.path().join("sb");
    let port = free_port();
    let _switchboard = Switchboard::start_with(&sb, port, &["--invite-only"]);
    let node: FeedId = kith_json(&sb, &["status", "--json"])["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // The burst of wrong codes is checked, and each is refused as unknown.
    for n in 0..JOIN_GUESSES_BURST {
        match guess(1, port, &node, &format!("wrong-{n}")).await {
            ServerMsg::JoinRefused {
                why: JoinRefusal::Invite,
                reason,
            } => assert!(reason.contains("unknown"), "{reason}"),
            other => panic!("guess {n} answered {other:?}"),
        }
    }
    assert_eq!(counter(&sb, "join_guesses_throttled"), 0);

    // Past it, even a real code is refused unchecked, by name, with the wait...
    let code = kith_json(&sb, &["switchboard", "invite", "--json"])["code"]
        .as_str()
        .unwrap()
        .to_string();
    match guess(1, port, &node, &code).await {
        ServerMsg::JoinRefused {
            why: JoinRefusal::Busy,
            reason,
        } => {
            assert!(
                reason.starts_with("too many wrong invite codes; try again in ")
                    && reason.ends_with(" s"),
                "{reason}"
            );
        }
        other => panic!("the throttled guess answered {other:?}"),
    }
    assert_eq!(counter(&sb, "join_guesses_throttled"), 1, "counted");

    // ...so it was not spent: another key at the same address (under the address's burst) joins
    // with it.
    assert!(
        matches!(
            guess(2, port, &node, &code).await,
            ServerMsg::Welcome { .. }
        ),
        "the code was spent by the throttled join"
    );
}
