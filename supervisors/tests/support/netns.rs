//! Network-namespace labs for tests that need real routing: namespaces, veth pairs, addresses,
//! nft rules, and `kith` processes running inside them.
//!
//! Shared by the namespace tests so each one only describes its topology. Namespaces are named
//! `kith<pid>-<n>-<name>` (host-global names: the pid keeps test processes apart, `n` the labs
//! of parallel tests in one process), and every interface lives inside them: the root
//! namespace gets nothing. Dropping the [`Lab`] kills what still runs in its namespaces and
//! deletes them (which also deletes their veths and bridges).
//!
//! [`Lab::open`] fails (with the reason, for the test to print and skip) when this host cannot
//! make a lab: not root, a tool missing, or namespaces refused (a container without
//! CAP_SYS_ADMIN). Once the namespaces exist, a failing setup command is a bug in the test and
//! panics with the command and its stderr. Set `KITH_LAB_LOGS=DIR` to keep each process's
//! debug log in `DIR/<namespace>.log`.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{kith, kith_bin, POLL};
use kith::testing::eventually_blocking;

/// Namespaces made by a test, deleted on drop.
pub(crate) struct Lab {
    /// `kith<pid>-<n>-`: the prefix of this lab's namespace names.
    prefix: String,
    names: Vec<String>,
}

/// Labs made by this process so far (tests in one binary run in parallel, with one pid).
static LABS: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    /// Make the namespaces `which` (each with `lo` up), or say why this host cannot.
    pub(crate) fn open(tools: &[&str], which: &[&str]) -> Result<Lab, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id`: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("needs root (network namespaces)".into());
        }
        for tool in tools {
            if run(&["sh", "-c", &format!("command -v {tool}")]).is_err() {
                return Err(format!("needs `{tool}` (.ci/run installs it)"));
            }
        }
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            prefix: format!("kith{}-{n}-", std::process::id()),
            names: Vec::new(),
        };
        for w in which {
            let ns = lab.ns(w);
            run(&["ip", "netns", "add", &ns])
                .map_err(|e| format!("cannot make network namespaces: {e}"))?;
            lab.names.push(ns);
            lab.ip(w, &["link", "set", "lo", "up"]);
        }
        Ok(lab)
    }

    /// The host-global name of this lab's namespace `which`.
    pub(crate) fn ns(&self, which: &str) -> String {
        format!("{}{which}", self.prefix)
    }

    /// `ip -n NS args…`.
    pub(crate) fn ip(&self, which: &str, args: &[&str]) {
        let ns = self.ns(which);
        must(&[&["ip", "-n", ns.as_str()], args].concat());
    }

    /// `ip netns exec NS cmd…`.
    pub(crate) fn exec(&self, which: &str, cmd: &[&str]) {
        let ns = self.ns(which);
        must(&[&["ip", "netns", "exec", ns.as_str()], cmd].concat());
    }

    /// stdout of `ip netns exec NS cmd…`, which must work.
    pub(crate) fn read(&self, which: &str, cmd: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(which)])
            .args(cmd)
            .output()
            .expect("ip netns exec");
        assert!(
            out.status.success(),
            "{cmd:?} in {which}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A veth pair: `a.1` in namespace `a.0`, `b.1` in namespace `b.0`, both down.
    pub(crate) fn veth(&self, a: (&str, &str), b: (&str, &str)) {
        let peer_ns = self.ns(b.0);
        self.ip(
            a.0,
            &[
                "link", "add", a.1, "type", "veth", "peer", "name", b.1, "netns", &peer_ns,
            ],
        );
    }

    /// Give `dev` in `which` the address `cidr` and bring it up.
    pub(crate) fn addr(&self, which: &str, dev: &str, cidr: &str) {
        self.ip(which, &["addr", "add", cidr, "dev", dev]);
        self.ip(which, &["link", "set", dev, "up"]);
    }

    /// Load an nft ruleset into namespace `which`.
    pub(crate) fn nft(&self, which: &str, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(which), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("write the ruleset");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft in {which}: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run `kith --data-dir DIR args…` in namespace `which`; wait until it answers on its control
    /// socket (a Unix socket, so the test talks to it from the root namespace).
    pub(crate) fn spawn(&self, which: &str, dir: &Path, args: &[&str]) -> Proc {
        let (filter, stderr) = log_to(&self.ns(which));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(which), kith_bin(), "--data-dir"])
            .arg(dir)
            .args(args)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kith in a namespace");
        let proc = Proc(child);
        eventually_blocking(
            "the process answers on its control socket",
            Duration::from_secs(20),
            POLL,
            || kith(dir, &["status", "--json"]).status.success(),
        );
        proc
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.names {
            // Anything still running in it would live on in an unnamed namespace.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A process in a lab namespace, killed on drop.
pub(crate) struct Proc(Child);

impl Proc {
    /// SIGTERM (a graceful stop: a daemon leaves its switchboards), then reap, bounded.
    pub(crate) fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a process in namespace `ns` logs, and at what level: nowhere, unless
/// `KITH_LAB_LOGS=DIR` is set, then debug logs in `DIR/<ns>.log` (for diagnosing a failure).
fn log_to(ns: &str) -> (&'static str, Stdio) {
    let Some(dir) = std::env::var_os("KITH_LAB_LOGS") else {
        return ("warn", Stdio::null());
    };
    let path = Path::new(&dir).join(format!("{ns}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open the log file");
    ("info,kith=debug", Stdio::from(file))
}

/// Run a command; its stderr on failure.
fn run(cmd: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", cmd[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Run a setup command that must work.
fn must(cmd: &[&str]) {
    if let Err(e) = run(cmd) {
        panic!("lab setup failed: {}: {e}", cmd.join(" "));
    }
}
