//! `kith loadtest` end to end through the real binary: two spawned switchboard processes, a few
//! hundred simulated peers for a few seconds of the mixed scenario. Checks that the JSON report
//! has its fields and that they are sane, that the histograms decode, that every relayed pair and
//! every replication connection of the follow graph came up, and that no switchboard process the
//! harness spawned is left behind — also when the harness itself is killed with SIGKILL; and the
//! failover scenario on two nodes (every peer of the killed node back through the other, no
//! ghost). Speed is measured by the command, never asserted here.

use std::process::Command;
use std::time::Duration;

use kith::loadtest::histogram::Hist;
use kith::loadtest::procfs;
use kith::loadtest::Report;

/// Peers in the run: a few hundred.
const PEERS: u64 = 300;

#[test]
fn a_small_mixed_run_reports_every_field_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let (json, plot) = (dir.path().join("report.json"), dir.path().join("plot.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["loadtest", "--spawn", "2", "--peers", &PEERS.to_string()])
        .args([
            "--ramp",
            "300",
            "--duration",
            "3",
            "--scenario",
            "mixed",
            "--seed",
            "7",
        ])
        .args([
            "--relay-pairs",
            "10",
            "--replicate-peers",
            "40",
            "--posts",
            "20",
            "--churn",
            "40",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let (text, value) = report_text(
        &out,
        &json,
        &[
            "peers_target",
            "peers_connected",
            "connect_failures",
            "ramp_per_s",
            "relay_rtt_ms",
            "presence_visible_ms",
            "post_arrival_ms",
            "restarts",
            "harness_bytes_per_peer",
            "switchboard_bytes_per_client",
            "failover_ms",
            "ghosts",
            "relay_rtt_steady_ms",
            "harness_lag_ms",
            "harness_lag_steady_ms",
            "relay_inner_lost_packets",
        ],
    );
    let report: Report = serde_json::from_str(&text).unwrap();
    // The harness's own lag probe ran the whole run, and in the steady phase.
    let lag = report.harness_lag_ms.as_ref().expect("the lag probe ran");
    let lag_steady = report
        .harness_lag_steady_ms
        .as_ref()
        .expect("and after the ramp");
    assert!(lag.count > 0 && lag_steady.count > 0 && lag_steady.count <= lag.count);
    assert!(lag.p50 <= lag.p99 && lag.p99 <= lag.max);
    assert_eq!(report.peers_target, PEERS);
    assert!(report.peers_connected <= PEERS);
    assert!(report.peers_connected > 0, "no peer connected");
    assert_eq!(report.switchboards, 2);
    assert_eq!(report.ramp_per_s, 300.0);
    // Not measured by this scenario (no node is killed): null, never a made-up number.
    assert!(report.failover_ms.is_none() && value["failover_ms"].is_null());
    assert!(report.failover_back.is_none());
    // The steady phase's round trips are a part of the whole run's.
    let steady = report.relay_rtt_steady_ms.as_ref().map_or(0, |l| l.count);
    assert!(steady <= report.relay_rtt_ms.as_ref().map_or(0, |l| l.count));
    // Every pair was introduced (each caller watches its callee and asks once it is online; the
    // callee accepts only its planned caller), every replication connection came up, and posts
    // reached followers through the relay.
    assert!(value.get("intro_refused").is_some());
    assert_eq!(
        report.relay_pairs,
        Some([10, 10]),
        "refused: {:?}",
        report.intro_refused
    );
    let [links_up, links] = report.replicate_links.expect("the follow graph ran");
    assert!(
        links > 0 && links_up == links,
        "{links_up} of {links} links"
    );
    assert!(report.posts.is_some_and(|p| p > 0));
    let arrival = report.post_arrival_ms.expect("posts arrived");
    assert!(arrival.count > 0 && arrival.p50 <= arrival.p99);
    assert!(report.entries_per_s.is_some_and(|e| e > 0.0));
    let rtt = report
        .relay_rtt_ms
        .expect("relay round trips were measured");
    assert!(rtt.count > 0 && rtt.p50 > 0.0 && rtt.p50 <= rtt.p99 && rtt.p99 <= rtt.max);
    assert_eq!(Hist::decode(&rtt.hist_us).unwrap().len(), rtt.count);
    // Counted (0 on a quiet loopback is fine), and only where pairs ran.
    assert!(report.relay_inner_lost_packets.is_some());
    let presence = report
        .presence_visible_ms
        .expect("presence changes were timed");
    assert!(presence.count > 0 && presence.p50 <= presence.p99);
    assert!(report.ghosts.is_some(), "the ghost check ran");
    assert!(report.harness_bytes_per_peer.is_some());
    assert!(report.switchboard_bytes_per_client.is_some());
    assert!(!report.timeline.is_empty());
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    // Two shards' worth: the merge adds the histograms' counts exactly.
    let merged = dir.path().join("merged.json");
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["loadtest", "merge"])
        .args([&json, &json])
        .arg("--json")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Report = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    assert_eq!(merged.peers_target, 2 * PEERS);
    assert_eq!(merged.relay_rtt_ms.map(|l| l.count), Some(2 * rtt.count));
    // Every switchboard it spawned is gone (killed and reaped before the report was written).
    assert_spawned_gone(&report.spawned_pids, 2);
}

/// Peers of the failover run (half of them on the node it kills).
const FAILOVER_PEERS: u64 = 60;

/// The failover scenario on two spawned nodes with a short presence period (down period 5 s):
/// the second node is killed outright mid-run, every one of its peers must be back online
/// through the first (each crash restarted by the peers' supervisor and counted), the report
/// must say how long that took and when the dead node's presence was gone, no ghost may be
/// left, and no process. Bounded: the scenario waits at most `LOADTEST_FAILOVER_WAIT`; here the
/// peers notice the dead node after the daemon link's idle timeout (5 s). No time is asserted.
#[test]
fn a_killed_node_s_peers_come_back_through_the_other_and_leave_no_ghost() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("failover.json");
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["loadtest", "--spawn", "2", "--peers"])
        .arg(FAILOVER_PEERS.to_string())
        .args(["--ramp", "300", "--duration", "1", "--scenario", "failover"])
        .args(["--seed", "11", "--presence-broadcast-ms", "250"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let (text, _) = report_text(
        &out,
        &json,
        &[
            "failover_ms",
            "failover_back",
            "failover_presence_clean_ms",
            "down_period_ms",
            "ghosts",
            "restarts",
        ],
    );
    let report: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(report.scenario, "failover");
    let orphans = FAILOVER_PEERS / 2;
    // Every peer of the killed node came back through the other one, each timed once.
    assert_eq!(report.failover_back, Some([orphans, orphans]));
    let failover = report.failover_ms.expect("failovers were timed");
    assert_eq!(failover.count, orphans);
    assert!(failover.p50 > 0.0 && failover.p50 <= failover.p99 && failover.p99 <= failover.max);
    assert_eq!(Hist::decode(&failover.hist_us).unwrap().len(), orphans);
    // Each lost its connection once: a named cause and a supervised restart, not a give-up.
    assert!(
        report.connect_failures.get("lost").copied().unwrap_or(0) >= orphans,
        "{:?}",
        report.connect_failures
    );
    assert!(report.restarts >= orphans);
    assert_eq!(report.peers_gave_up, 0);
    assert_eq!(report.peers_connected, FAILOVER_PEERS);
    // The surviving node lists exactly the live peers, and none once they stopped.
    assert!(
        report.failover_presence_clean_ms.is_some(),
        "the dead node's presence was never gone"
    );
    assert_eq!(report.down_period_ms, Some(5_000));
    assert_eq!(report.ghosts, Some(0));
    assert_spawned_gone(&report.spawned_pids, 2);
}

/// Asserts that a `kith loadtest` run succeeded and that its JSON report at `json` has every key
/// in `keys`; returns the report's text and its JSON value.
fn report_text(
    out: &std::process::Output,
    json: &std::path::Path,
    keys: &[&str],
) -> (String, serde_json::Value) {
    assert!(
        out.status.success(),
        "kith loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in keys {
        assert!(value.get(key).is_some(), "the report has no `{key}`");
    }
    (text, value)
}

/// Asserts that the run spawned `n` switchboards (`pids`) and that each is gone (killed and reaped before
/// the report was written; waits at most 5 s for each).
fn assert_spawned_gone(pids: &[u32], n: usize) {
    assert_eq!(pids.len(), n);
    for pid in pids {
        let gone = (0..50).any(|_| {
            let alive = procfs::alive(*pid);
            if alive {
                std::thread::sleep(Duration::from_millis(100));
            }
            !alive
        });
        assert!(gone, "switchboard process {pid} is still running");
    }
}

#[test]
fn peers_beyond_the_bound_are_refused_before_anything_starts() {
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["loadtest", "--spawn", "1", "--peers", "1000000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--peers"));
}

/// The spawned switchboards die with a harness killed outright (no destructor runs): each is
/// started with PR_SET_PDEATHSIG.
#[test]
fn switchboards_die_with_a_killed_harness() {
    let mut harness = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args([
            "loadtest",
            "--spawn",
            "2",
            "--peers",
            "20",
            "--duration",
            "60",
        ])
        .args(["--scenario", "connect"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent = harness.id();
    // Its children: the two switchboards, once both run.
    let mut children = Vec::new();
    for _ in 0..200 {
        children = children_of(parent);
        if children.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        children.len(),
        2,
        "the harness did not spawn two switchboards"
    );
    // Their data directories: a harness killed outright cannot remove them, so the test does.
    let dirs: Vec<String> = children.iter().filter_map(|pid| data_dir(*pid)).collect();
    harness.kill().unwrap();
    harness.wait().unwrap();
    for pid in children {
        let gone = (0..50).any(|_| {
            let alive = procfs::alive(pid) && !zombie(pid);
            if alive {
                std::thread::sleep(Duration::from_millis(100));
            }
            !alive
        });
        assert!(gone, "switchboard {pid} outlived its killed harness");
    }
    assert_eq!(dirs.len(), 2);
    for dir in dirs {
        assert!(dir.contains("kith-loadtest-sb"), "{dir}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The `--data-dir` a process was started with (from /proc/PID/cmdline).
fn data_dir(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--data-dir")?;
    args.get(at + 1).cloned()
}

/// Processes whose parent is `parent` (from /proc/*/stat).
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command is in parentheses and may hold spaces: fields after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is a zombie (dead, not reaped yet: its new parent reaps it).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
