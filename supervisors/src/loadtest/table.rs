//! The end-of-run table for people: the report's figures in aligned rows, a dash where the
//! scenario did not measure something.

use kith::loadtest::histogram::Latency;
use kith::loadtest::Report;

fn latency(l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!(
            "p50 {:.2} / p95 {:.2} / p99 {:.2} / max {:.2} ms  ({} samples)",
            l.p50, l.p95, l.p99, l.max, l.count
        ),
        None => "-".into(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn kib(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |b| format!("{:.1} KiB", b as f64 / 1024.0))
}

fn counts(by_cause: &std::collections::BTreeMap<String, u64>) -> String {
    match by_cause.is_empty() {
        true => "none".to_string(),
        false => by_cause
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The report as a table.
pub fn text(r: &Report) -> String {
    let failures = counts(&r.connect_failures);
    let rows: Vec<(&str, String)> = vec![
        (
            "scenario",
            format!(
                "{} (seed {}, shards {})",
                r.scenario,
                r.seed,
                r.shards.join(" ")
            ),
        ),
        ("switchboards", r.switchboards.to_string()),
        (
            "peers connected",
            format!(
                "{} of {} ({} gave up)",
                r.peers_connected, r.peers_target, r.peers_gave_up
            ),
        ),
        (
            "ramp",
            format!(
                "{:.0}/s asked, {:.0} handshakes/s measured",
                r.ramp_per_s, r.handshakes_per_s
            ),
        ),
        (
            "all joined after",
            r.all_joined_s
                .map_or_else(|| "not all joined".into(), |s| format!("{s:.2} s")),
        ),
        ("connect failures", failures),
        ("connect (dial+TLS+hello+join)", latency(&r.connect_ms)),
        ("relay round trip, whole run", latency(&r.relay_rtt_ms)),
        (
            "  steady phase (after the ramp)",
            latency(&r.relay_rtt_steady_ms),
        ),
        (
            "harness lag (10 ms timer), whole",
            latency(&r.harness_lag_ms),
        ),
        (
            "  steady phase (after the ramp)",
            latency(&r.harness_lag_steady_ms),
        ),
        (
            "relay throughput",
            match (r.relay_round_trips_per_s, r.relay_bytes_per_s) {
                (Some(t), Some(b)) => format!("{t:.0} round trips/s, {:.1} KiB/s", b / 1024.0),
                _ => "-".into(),
            },
        ),
        (
            "introductions refused",
            match r.relay_pairs {
                Some(_) => counts(&r.intro_refused),
                None => "-".into(),
            },
        ),
        (
            "relay pairs up",
            r.relay_pairs.map_or_else(
                || "-".into(),
                |[up, of]| {
                    format!(
                        "{up} of {of} ({} round trips lost, {} inner packets lost and resent)",
                        r.relay_lost.unwrap_or(0),
                        r.relay_inner_lost_packets.unwrap_or(0)
                    )
                },
            ),
        ),
        (
            "presence visible, any node",
            latency(&r.presence_visible_ms),
        ),
        (
            "  watcher on the same node",
            latency(&r.presence_visible_same_node_ms),
        ),
        (
            "  watcher on another node",
            latency(&r.presence_visible_other_node_ms),
        ),
        ("presence changes made", opt(r.churn_events)),
        ("post arrival", latency(&r.post_arrival_ms)),
        ("entries/s", opt(r.entries_per_s.map(|e| format!("{e:.0}")))),
        ("posts made", opt(r.posts)),
        (
            "replication links up",
            r.replicate_links
                .map_or_else(|| "-".into(), |[up, of]| format!("{up} of {of}")),
        ),
        ("restarts", r.restarts.to_string()),
        ("ghosts", opt(r.ghosts)),
        ("harness memory per peer", kib(r.harness_bytes_per_peer)),
        ("harness peak memory", kib(r.harness_peak_rss_bytes)),
        (
            "harness CPU",
            opt(r.harness_cpu_s.map(|s| format!("{s:.1} s"))),
        ),
        (
            "switchboard memory per client",
            kib(r.switchboard_bytes_per_client),
        ),
        (
            "switchboard CPU (all nodes)",
            opt(r.switchboard_cpu_s.map(|s| format!("{s:.1} s"))),
        ),
        ("failover: back online after", latency(&r.failover_ms)),
        (
            "failover: peers back",
            r.failover_back
                .map_or_else(|| "-".into(), |[back, of]| format!("{back} of {of}")),
        ),
        (
            "failover: dead node's presence gone",
            match (r.failover_back, r.failover_presence_clean_ms) {
                (None, _) => "-".into(),
                (Some(_), None) => "not within the wait".into(),
                (Some(_), Some(ms)) => format!("after {:.2} s", ms / 1_000.0),
            },
        ),
        (
            "down period",
            opt(r
                .down_period_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1_000.0))),
        ),
        ("run time", format!("{:.1} s", r.duration_s)),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}
