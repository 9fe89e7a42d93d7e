//! Two daemons in separate network namespaces that reach the switchboard but not each other:
//! only the relay can carry them, and they replicate each other's posts through it.
//!
//! ```text
//! ns a: eth0 10.99.1.2 ──veth── 10.99.1.1 va ┐
//!                                             ├─ ns sb (switchboard, no forwarding)
//! ns b: eth0 10.99.2.2 ──veth── 10.99.2.1 vb ┘
//! ```
//! Needs root and iproute2 (`.ci/run` installs it); without them the test says so and does
//! nothing. Traffic stays inside the namespaces this test makes, which it deletes at the end.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{kith, kith_bin, kith_json, wait_for, Home};

/// Namespaces made by this test, deleted on drop.
struct Lab {
    names: Vec<String>,
}

impl Lab {
    fn ns(&self, which: &str) -> String {
        format!("kith{}{which}", std::process::id())
    }

    fn up() -> Option<Lab> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            return None;
        }
        let mut lab = Lab { names: Vec::new() };
        let (sb, a, b) = (lab.ns("sb"), lab.ns("a"), lab.ns("b"));
        for n in [&sb, &a, &b] {
            run(&["ip", "netns", "add", n])?;
            lab.names.push(n.clone());
            run(&["ip", "-n", n, "link", "set", "lo", "up"])?;
        }
        for (side, ns, net) in [("va", &a, "1"), ("vb", &b, "2")] {
            run(&["ip", "-n", &sb, "link", "add", side, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
            run(&["ip", "-n", &sb, "addr", "add", &format!("10.99.{net}.1/24"), "dev", side])?;
            run(&["ip", "-n", &sb, "link", "set", side, "up"])?;
            run(&["ip", "-n", ns, "addr", "add", &format!("10.99.{net}.2/24"), "dev", "eth0"])?;
            run(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
        }
        // No forwarding in the switchboard's namespace: a and b cannot reach each other.
        run(&["ip", "netns", "exec", &sb, "sysctl", "-qw", "net.ipv4.ip_forward=0"])?;
        Some(lab)
    }

    fn spawn(&self, ns: &str, dir: &Path, args: &[&str]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns), kith_bin(), "--data-dir"])
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kith in a namespace");
        wait_for("the process answers on its control socket", Duration::from_secs(20), || {
            kith(dir, &["status", "--json"]).status.success()
        });
        Proc(child)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &[&str]) -> Option<()> {
    let status = Command::new(cmd[0]).args(&cmd[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?;
    status.success().then_some(())
}

#[test]
fn peers_that_cannot_reach_each_other_replicate_through_the_relay() {
    let Some(lab) = Lab::up() else {
        println!("skipped: needs root and iproute2 (ip netns)");
        return;
    };
    let sb_home = tempfile::tempdir().unwrap();
    let sb_dir = sb_home.path().join("sb");
    let _sb = lab.spawn("sb", &sb_dir, &["switchboard", "--listen", "0.0.0.0:7878"]);

    let (a, b) = (Home::init(), Home::init());
    let (a_id, b_id) = (a.id(), b.id());
    let _da = lab.spawn("a", &a.dir, &["daemon", "--listen", "0.0.0.0:8008", "--switchboard", "10.99.1.1:7878"]);
    let _db = lab.spawn("b", &b.dir, &["daemon", "--listen", "0.0.0.0:8008", "--switchboard", "10.99.2.1:7878"]);

    // Directly, a cannot reach b.
    let direct = kith(&a.dir, &["connect", &format!("{b_id}@10.99.2.2:8008")]);
    assert!(!direct.status.success(), "a reached b directly: the lab is not isolating them");

    kith_json(&a.dir, &["post", "a, from its own namespace", "--json"]);
    kith_json(&b.dir, &["post", "b, from its own namespace", "--json"]);
    kith_json(&a.dir, &["follow", &b_id, "--json"]);
    kith_json(&b.dir, &["follow", &a_id, "--json"]);
    let has = |dir: &Path, text: &str| {
        kith_json(dir, &["timeline", "--json"])["entries"].as_array().unwrap().iter().any(|e| e["text"] == text)
    };
    let took = wait_for("a and b replicate through the switchboard", Duration::from_secs(60), || {
        has(&a.dir, "b, from its own namespace") && has(&b.dir, "a, from its own namespace")
    });
    println!("replicated across namespaces through the relay in {took:?}");
    let status = kith_json(&sb_dir, &["status", "--json"]);
    assert!(status["relay"]["forwarded_packets"].as_u64().unwrap() > 0);
}
