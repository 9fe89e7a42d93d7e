//! Storage faults answered by name, with real `kith` processes (hardening issue, items 3, 4, 5):
//! a full disk (a small tmpfs mounted for the test) leaves the daemon answering, with writes
//! refused by name and resumed once space is freed; a truncated `data.mdb` is refused at open
//! with a message, not a SIGBUS; an emptied store refuses to start instead of forking the feed,
//! and `--resync-own-feed` gets the feed back from a follower before posting again.
//!
//! Every wait is a bounded poll; nothing about speed is asserted.

mod support;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kith::testing::eventually_blocking;
use support::{head_seq, kith, kith_bin, kith_json, listen_addr, Daemon, Home, POLL};

const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
const SOON: Duration = Duration::from_secs(30);
const DISK_FULL: &str = "disk full: free space and the store writer resumes";
const DAMAGED: &str = "store damaged; restore from a backup or re-sync (see README)";

/// A tmpfs mounted on a fresh directory for the life of the value.
struct Tmpfs {
    _parent: tempfile::TempDir,
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (mount's syntax, e.g. `24m`), or say why not and give none.
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs {
                _parent: parent,
                dir,
            }),
            Ok(out) => {
                println!(
                    "SKIPPED: mounting a tmpfs was refused ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Write zeros to `path` until the filesystem says it is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    // Bounded by the tmpfs size; the loop ends on the first refused write.
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    written
}

fn post(dir: &Path, text: &str) -> Result<u64, String> {
    let out = kith(dir, &["post", text, "--json"]);
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        Ok(v["seq"].as_u64().expect("seq"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_full_disk_leaves_the_daemon_answering_and_writes_resume_once_space_is_freed() {
    let Some(disk) = Tmpfs::mount("24m") else {
        return;
    };
    let dir = disk.dir.join("node");
    let out = kith(&dir, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut daemon = Daemon::start(&dir, LOOPBACK);
    let mut seq = post(&dir, "before the disk filled").expect("first post");
    let filler = disk.dir.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "the filler took the free space");

    // LMDB reuses its free pages first, so a few posts may still fit; the store grows soon.
    let text = "x".repeat(3000);
    let mut refused = None;
    for _ in 0..2000 {
        match post(&dir, &text) {
            Ok(next) => seq = next,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    println!("filler took {filled} bytes; own feed at seq {seq} when a post was refused");
    let refused = refused.expect("a post was refused once the disk was full");
    assert!(
        refused.contains(DISK_FULL),
        "the refusal names the fault: {refused}"
    );

    // The daemon answers: reads work, status works, and a second write gets the same answer
    // (the store writer did not crash, so no restart took the control socket away).
    for _ in 0..3 {
        let again = post(&dir, &text).expect_err("still full");
        assert!(again.contains(DISK_FULL), "{again}");
    }
    let status = kith_json(&dir, &["status", "--json"]);
    let me = kith_json(&dir, &["whoami", "--json"])["id"].clone();
    let own = status["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .find(|f| f["id"] == me)
        .expect("own feed in status");
    assert_eq!(own["seq"].as_u64(), Some(seq));
    let feed = kith_json(&dir, &["feed", "--json", "--limit", "1"]);
    assert_eq!(feed["entries"][0]["seq"].as_u64(), Some(seq), "{feed}");
    assert!(
        daemon.child.try_wait().expect("wait").is_none(),
        "the daemon is still running"
    );

    std::fs::remove_file(&filler).expect("free space");
    let after = post(&dir, "after space was freed").expect("writes resume");
    assert_eq!(after, seq + 1, "the feed continues where it stopped");
    assert!(daemon.stop(), "the daemon stopped cleanly");
}

/// Start `kith daemon` expecting it to exit by itself; its status and stderr.
fn daemon_exit(dir: &Path, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(kith_bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("daemon")
        .args(LOOPBACK)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let deadline = Instant::now() + SOON;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon kept running on a store it should have refused");
        }
        std::thread::sleep(POLL);
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (status, stderr)
}

#[test]
fn a_truncated_data_file_is_refused_by_name_at_open_not_by_sigbus() {
    let home = Home::init();
    let daemon = Daemon::start(&home.dir, LOOPBACK);
    let text = "a post long enough to spread the store over many pages ".repeat(40);
    for i in 0..150 {
        post(&home.dir, &format!("{i} {text}")).expect("post");
    }
    assert!(daemon.stop());
    let data = home.dir.join("store").join("data.mdb");
    let whole = std::fs::read(&data).expect("data.mdb");
    assert!(
        whole.len() > 64 * 4096,
        "the store spans many pages: {}",
        whole.len()
    );
    let cuts = [
        whole.len() / 2,
        whole.len() - 4096,
        whole.len() / 3 + 123,
        4096 + 100,
        10,
    ];
    for cut in cuts {
        std::fs::write(&data, &whole[..cut]).expect("truncate");
        let (status, stderr) = daemon_exit(&home.dir, &[]);
        assert_eq!(
            status.signal(),
            None,
            "cut at {cut}: killed by a signal: {stderr}"
        );
        assert!(!status.success(), "cut at {cut}: the daemon ran");
        assert!(stderr.contains(DAMAGED), "cut at {cut}: {stderr}");
    }
    // The whole file opens again.
    std::fs::write(&data, &whole).expect("restore");
    let daemon = Daemon::start(&home.dir, LOOPBACK);
    assert_eq!(post(&home.dir, "restored").expect("post"), 151);
    assert!(daemon.stop());
}

#[test]
fn an_emptied_store_refuses_to_start_and_resyncs_its_own_feed_from_a_follower() {
    let (a, b) = (Home::init(), Home::init());
    let a_id = a.id();
    let da = Daemon::start(&a.dir, LOOPBACK);
    for i in 1..=5 {
        assert_eq!(post(&a.dir, &format!("post {i}")).expect("post"), i);
    }
    let _db = Daemon::start(&b.dir, LOOPBACK);
    let out = kith_json(
        &b.dir,
        &["follow", &a_id, "--addr", &listen_addr(&a.dir), "--json"],
    );
    assert_eq!(out["contact"]["following"], true);
    eventually_blocking("B holds A's five posts", SOON, POLL, || {
        head_seq(&b.dir, &a_id) == 5
    });
    assert!(da.stop());

    // Emptied (truncated to nothing), then deleted: both refused, nothing signed.
    let data = a.dir.join("store").join("data.mdb");
    std::fs::write(&data, b"").expect("truncate to 0");
    let (status, stderr) = daemon_exit(&a.dir, &[]);
    assert!(!status.success());
    assert!(
        stderr.contains("this identity has posted up to seq 5")
            && stderr.contains("--resync-own-feed"),
        "{stderr}"
    );
    std::fs::remove_file(&data).expect("delete data.mdb");
    let (status, stderr) = daemon_exit(&a.dir, &[]);
    assert!(
        !status.success() && stderr.contains("posted up to seq 5"),
        "{stderr}"
    );

    let _da = Daemon::start(&a.dir, &["--listen", "127.0.0.1:0", "--resync-own-feed"]);
    let refused = post(&a.dir, "too early").expect_err("posting waits for the resync");
    assert!(
        refused.contains("resyncing your own feed from followers: have 0 of 5"),
        "{refused}"
    );
    let out = kith(&a.dir, &["connect", &listen_addr(&b.dir)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually_blocking("A has its own feed back from B", SOON, POLL, || {
        head_seq(&a.dir, &a_id) == 5
    });
    assert_eq!(
        post(&a.dir, "after the resync").expect("post"),
        6,
        "no fork"
    );
    eventually_blocking("B takes seq 6 as the next entry", SOON, POLL, || {
        head_seq(&b.dir, &a_id) == 6
    });
    let feed = kith_json(&b.dir, &["feed", &a_id, "--json", "--limit", "1"]);
    assert_eq!(feed["entries"][0]["text"], "after the resync", "{feed}");
}
