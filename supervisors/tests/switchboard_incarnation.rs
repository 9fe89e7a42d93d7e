//! A switchboard's presence incarnation (vsn) survives restarts (issue 13, item 8): the real
//! `kith switchboard` keeps the last vsn used in `presence.vsn` (0600) in its data directory and
//! starts above it even when the clock is behind it (as after the clock stepped back), and it
//! refuses a damaged floor file by name instead of guessing.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kith::presence::driver::incarnation::VSN_FILE;
use support::{free_port, kith_bin, Switchboard, POLL};

fn floor(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join(VSN_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn restarts_start_above_the_recorded_incarnation_even_with_the_clock_behind() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("sb");
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let sb = Switchboard::start(&dir, free_port());
    let first = floor(&dir).expect("the first start records its vsn");
    assert!(
        first >= before,
        "{first} is drawn from the clock ({before})"
    );
    let mode = std::fs::metadata(dir.join(VSN_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the floor file is private");
    drop(sb);

    // The last life ran an hour ahead of today's clock (its clock has since stepped back).
    let ahead = first + 3_600_000_000;
    std::fs::write(dir.join(VSN_FILE), format!("{ahead}\n")).unwrap();
    let sb = Switchboard::start(&dir, free_port());
    let second = floor(&dir).unwrap();
    assert!(
        second > ahead && second < ahead + 1_000_000,
        "restarted at {second}, above the recorded {ahead} and not from the clock"
    );
    drop(sb);
}

#[test]
fn a_damaged_floor_file_is_refused_by_name() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("sb");
    // Let a first start make the directory and identity, then damage the file.
    drop(Switchboard::start(&dir, free_port()));
    std::fs::write(dir.join(VSN_FILE), b"not a number").unwrap();
    let mut child = Command::new(kith_bin())
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "switchboard",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the switchboard did not exit");
        std::thread::sleep(POLL);
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("presence.vsn") && err.contains("damaged"),
        "stderr: {err}"
    );
}
