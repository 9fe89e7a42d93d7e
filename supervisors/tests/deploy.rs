//! The systemd units under `deploy/systemd/` pass `systemd-analyze verify` (issue 17, item 5):
//! the switchboard's system service and the daemon's user service, each with its `ExecStart`
//! pointed at the binary under test (verify checks that the command exists). Any line verify
//! prints is a failure, not only its exit code: it exits 0 on unknown keys and bad lines, which
//! it only warns about. A unit broken on purpose must be caught, so the check can fail.
//!
//! CI (`CI=true`) has `systemd-analyze` (`.ci/run` installs systemd when it is missing); a
//! machine without it skips with a note, CI fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join("systemd")
}

fn available() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("systemd-analyze is missing in CI: .ci/run should have installed systemd");
    }
    if !found {
        println!("skipped: systemd-analyze is not installed");
    }
    found
}

/// Copy `unit` into `dir` with the binary path replaced, and verify it; the lines it printed.
fn verify(
    dir: &Path,
    unit: &str,
    binary_in_unit: &str,
    user: bool,
    edit: impl Fn(String) -> String,
) -> (bool, String) {
    let text = std::fs::read_to_string(deploy().join(unit)).unwrap();
    assert!(
        text.contains(binary_in_unit),
        "{unit} runs {binary_in_unit}"
    );
    let text = edit(text.replace(binary_in_unit, env!("CARGO_BIN_EXE_kith")));
    let path = dir.join(unit);
    std::fs::write(&path, text).unwrap();
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
    }
    let out = cmd.arg("verify").arg(&path).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && said.trim().is_empty(), said)
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let same = |t: String| t;
    let (ok, said) = verify(
        dir.path(),
        "kith-switchboard.service",
        "/usr/local/bin/kith",
        false,
        same,
    );
    assert!(ok, "kith-switchboard.service:\n{said}");
    let (ok, said) = verify(
        dir.path(),
        "kith-daemon.service",
        "%h/.local/bin/kith",
        true,
        same,
    );
    assert!(ok, "kith-daemon.service:\n{said}");
}

#[test]
fn a_broken_unit_is_caught() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let typo = |t: String| t.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    let (ok, said) = verify(
        dir.path(),
        "kith-switchboard.service",
        "/usr/local/bin/kith",
        false,
        typo,
    );
    assert!(
        !ok && said.contains("NoNewPrivilege"),
        "a misspelt key passed: {said}"
    );
}

#[test]
fn the_switchboard_unit_is_sandboxed() {
    let text = std::fs::read_to_string(deploy().join("kith-switchboard.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "StateDirectory=kith-switchboard",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "kith-switchboard.service lacks `{line}`"
        );
    }
}
