//! Switchboard presence with real processes: a daemon sees whom it follows come online (with
//! their status line) and go away, and reconnects by itself when the switchboard restarts.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{kith, kith_bin, kith_json, wait_for, Daemon, Home};

/// A running `kith switchboard`, killed on drop.
struct Switchboard(Child);

impl Switchboard {
    fn start(dir: &Path, port: u16) -> Switchboard {
        let child = Command::new(kith_bin())
            .arg("--data-dir")
            .arg(dir)
            .args(["switchboard", "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn switchboard");
        wait_for("the switchboard answers", Duration::from_secs(20), || kith(dir, &["status", "--json"]).status.success());
        Switchboard(child)
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn contact(dir: &Path, id: &str) -> serde_json::Value {
    let contacts = kith_json(dir, &["contacts", "--json"]);
    contacts["contacts"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap_or_default()
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
    let _da = Daemon::start(&a.dir, &["--listen", "127.0.0.1:0", "--switchboard", &target]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    let db = Daemon::start(&b.dir, &["--listen", "127.0.0.1:0", "--switchboard", &target]);
    kith_json(&b.dir, &["presence", "set", "writing tests", "--json"]);

    let took = wait_for("a sees b online with its status", Duration::from_secs(20), || {
        let c = contact(&a.dir, &b_id);
        c["online"] == true && c["status"] == "writing tests"
    });
    println!("b seen online with status after {took:?}");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert_eq!(status["role"], "switchboard");
    assert_eq!(status["online"], 2);

    db.kill();
    let took = wait_for("a sees b offline (the switchboard notices at the idle timeout)", Duration::from_secs(60), || contact(&a.dir, &b_id)["online"] == false);
    println!("b seen offline {took:?} after it was killed");

    // B comes back, then the switchboard restarts: both daemons reconnect by themselves.
    let _db = Daemon::start(&b.dir, &["--listen", "127.0.0.1:0", "--switchboard", &target]);
    wait_for("a sees b online again", Duration::from_secs(20), || contact(&a.dir, &b_id)["online"] == true);
    drop(sb);
    wait_for("a forgets what the dead switchboard said", Duration::from_secs(60), || contact(&a.dir, &b_id)["online"] == false);
    let _sb = Switchboard::start(&sb_dir, port);
    let took = wait_for("a sees b online through the restarted switchboard", Duration::from_secs(60), || {
        contact(&a.dir, &b_id)["online"] == true
    });
    println!("reconnected and seen online {took:?} after the switchboard restarted");
    let refused = kith(&sb_dir, &["post", "hello"]);
    assert!(!refused.status.success(), "a switchboard keeps no feeds");
}
