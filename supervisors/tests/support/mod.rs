//! Running real `kith` processes in a temporary data directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn kith_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kith")
}

/// Run `kith --data-dir DIR args…` to completion.
pub fn kith(dir: &Path, args: &[&str]) -> Output {
    Command::new(kith_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KITH_DATA_DIR")
        .output()
        .expect("run kith")
}

/// stdout of a successful command, parsed as JSON.
pub fn kith_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = kith(dir, args);
    assert!(out.status.success(), "kith {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// A node's data directory (removed on drop).
pub struct Home {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Home {
    /// A fresh, initialised data directory.
    pub fn init() -> Home {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("node");
        let out = kith(&dir, &["init"]);
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        Home { _tmp: tmp, dir }
    }

    /// This node's id.
    pub fn id(&self) -> String {
        kith_json(&self.dir, &["whoami", "--json"])["id"].as_str().unwrap().to_string()
    }
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    /// Start `kith daemon` and wait until its control socket answers.
    pub fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let child = Command::new(kith_bin())
            .arg("--data-dir")
            .arg(dir)
            .arg("daemon")
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon");
        let mut daemon = Daemon { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if kith(dir, &["status", "--json"]).status.success() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited early with {status}");
            }
            assert!(Instant::now() < deadline, "daemon did not come up within 20 s");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(mut self) -> bool {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(pid, 15) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "daemon did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
