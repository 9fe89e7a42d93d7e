//! Running real `kith` processes in a temporary data directory.
#![allow(dead_code)]

pub(crate) mod in_process;
pub(crate) mod netns;
pub(crate) mod node;
pub(crate) mod sb_client;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kith::testing::eventually_blocking;

/// The binary under test.
pub(crate) fn kith_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kith")
}

/// Run `kith --data-dir DIR args…` to completion.
pub(crate) fn kith(dir: &Path, args: &[&str]) -> Output {
    Command::new(kith_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KITH_DATA_DIR")
        .output()
        .expect("run kith")
}

/// stdout of a successful command, parsed as JSON.
pub(crate) fn kith_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = kith(dir, args);
    assert!(
        out.status.success(),
        "kith {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// A node's data directory (removed on drop).
pub(crate) struct Home {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Home {
    /// A fresh, initialised data directory.
    pub(crate) fn init() -> Home {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("node");
        let out = kith(&dir, &["init"]);
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Home { _tmp: tmp, dir }
    }

    /// This node's id.
    pub(crate) fn id(&self) -> String {
        kith_json(&self.dir, &["whoami", "--json"])["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A running daemon, killed on drop.
pub(crate) struct Daemon {
    pub child: Child,
}

impl Daemon {
    /// Start `kith daemon` and wait until its control socket answers.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let child = Command::new(kith_bin())
            .arg("--data-dir")
            .arg(dir)
            .arg("daemon")
            .args(extra)
            .env("RUST_LOG", "warn")
            // No test daemon takes the web page's fixed default port (the first to start would,
            // and which one that is would change from run to run); a test that wants the page
            // passes `--web 127.0.0.1:PORT`, which wins over this.
            .env("KITH_WEB", "off")
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
            assert!(
                Instant::now() < deadline,
                "daemon did not come up within 20 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns whether it exited 0.
    pub(crate) fn stop(mut self) -> bool {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(pid, 15) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(mut self) {
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

// --- peer-to-peer helpers -----------------------------------------------------------------

/// `kith status --json` of a running daemon.
pub(crate) fn status(dir: &Path) -> serde_json::Value {
    kith_json(dir, &["status", "--json"])
}

/// The address the daemon accepts peers on, from `status`.
pub(crate) fn listen_addr(dir: &Path) -> String {
    status(dir)["listen"]
        .as_str()
        .expect("status names the listen address")
        .to_string()
}

/// Latest sequence of `feed` the running daemon holds (0: none), from `status`.
pub(crate) fn head_seq(dir: &Path, feed: &str) -> u64 {
    status(dir)["feeds"]
        .as_array()
        .expect("status lists feeds")
        .iter()
        .find(|f| f["id"] == feed)
        .and_then(|f| f["seq"].as_u64())
        .unwrap_or(0)
}

/// The live connection with `peer` as `status` shows it, if any.
pub(crate) fn connection(dir: &Path, peer: &str) -> Option<serde_json::Value> {
    status(dir)["connections"]
        .as_array()
        .expect("status lists connections")
        .iter()
        .find(|c| c["peer"] == peer)
        .cloned()
}

/// Poll step of the process tests' waits (`kith::testing::eventually_blocking`, which returns
/// the time a wait took: for reporting, never for asserting).
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Write `count` posts into the own feed of the (stopped) node in `dir`, through the real ingest
/// pipeline, in batches. Returns the encoded bytes (entry + payload) of each entry, by seq - 1.
pub(crate) fn seed_posts(dir: &Path, count: usize) -> Vec<usize> {
    use kith::feed::Content;
    use kith::ingest::{run_batch, Op, OpOutcome};
    let identity = kith::identity::Identity::load(dir).expect("identity");
    let store = kith::store::Store::open(dir).expect("store (is a daemon running on it?)");
    let mut done = 0;
    while done < count {
        let n = (count - done).min(2_000);
        let ops = (done..done + n)
            .map(|i| {
                Op::Publish(Content::Post {
                    text: format!("backlog post {i}: some text so it looks like a short message"),
                    reply_to: None,
                })
            })
            .collect();
        let outcomes = run_batch(&store, &identity, ops, kith::feed::now_ms()).expect("batch");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(OpOutcome::Appended { .. }))),
            "seeding refused an entry"
        );
        done += n;
    }
    let reader = store.read().expect("read");
    let me = identity.id();
    (1..=count as u64)
        .map(|seq| {
            let entry = reader.entry(&me, seq).expect("read").expect("seeded entry");
            let payload = reader
                .payload(&me, seq)
                .expect("read")
                .map_or(0, |p| p.len());
            entry.0.len() + payload
        })
        .collect()
}

/// Open the (stopped) node's store and re-verify `feed`; returns its length.
pub(crate) fn verify_offline(dir: &Path, feed: &str) -> u64 {
    let store = kith::store::Store::open(dir).expect("store (is a daemon running on it?)");
    let id: kith::identity::FeedId = feed.parse().expect("feed id");
    let reader = store.read().expect("read");
    reader
        .verify_feed(&id, kith::feed::now_ms())
        .expect("the feed re-verifies")
}

/// Latest sequence of `feed` in the (stopped) node's store.
pub(crate) fn head_offline(dir: &Path, feed: &str) -> u64 {
    let store = kith::store::Store::open(dir).expect("store (is a daemon running on it?)");
    let id: kith::identity::FeedId = feed.parse().expect("feed id");
    let head = store.read().expect("read").head(&id).expect("head");
    head.map_or(0, |h| h.seq)
}

/// Texts of the posts in the running daemon's timeline.
pub(crate) fn timeline_texts(dir: &Path) -> Vec<String> {
    kith_json(dir, &["timeline", "--json", "--limit", "10000"])["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect()
}

/// A running `kith switchboard` on 127.0.0.1:`port`, killed on drop.
pub(crate) struct Switchboard(Child);

impl Switchboard {
    pub(crate) fn start(dir: &Path, port: u16) -> Switchboard {
        Self::start_with(dir, port, &[])
    }

    pub(crate) fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Switchboard {
        Self::spawn(dir, port, extra, "warn", Stdio::null())
    }

    /// A switchboard whose log, at `debug` (more than an operator runs), goes to the file `log`.
    pub(crate) fn start_logged(dir: &Path, port: u16, log: &Path) -> Switchboard {
        let log = std::fs::File::create(log).expect("switchboard log file");
        Self::spawn(dir, port, &[], "debug", Stdio::from(log))
    }

    fn spawn(dir: &Path, port: u16, extra: &[&str], level: &str, stderr: Stdio) -> Switchboard {
        let child = Command::new(kith_bin())
            .arg("--data-dir")
            .arg(dir)
            .args(["switchboard", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn switchboard");
        eventually_blocking(
            "the switchboard answers",
            Duration::from_secs(20),
            POLL,
            || kith(dir, &["status", "--json"]).status.success(),
        );
        Switchboard(child)
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Make the identity in `dir` now (as `kith init` does) and return its id, so that a
/// switchboard's key can be listed as a cluster member before it starts.
pub(crate) fn identity(dir: &Path) -> String {
    kith_json(dir, &["init", "--json"])["id"]
        .as_str()
        .expect("init prints the id")
        .to_string()
}

/// A UDP port free now on loopback.
pub(crate) fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
