//! The report of a run, and the exact merge of several shards' reports (sans-IO).
//!
//! A figure a scenario did not measure is `None` (JSON `null`), never a made-up number.
//! Latencies carry their HDR histograms, so a merge adds counts and recomputes percentiles
//! exactly. Counters add up; per-peer and per-client memory are averaged weighted by peers;
//! rates add up, since shards run at the same time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::loadtest::histogram::Latency;
use crate::loadtest::metrics::Sample;
use crate::loadtest::LoadtestError;

/// Version of the report's layout.
pub const REPORT_VERSION: u32 = 1;

/// What a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Layout version ([`REPORT_VERSION`]).
    pub version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// Shards merged into this report (`"I/N"` each; one for a single run).
    pub shards: Vec<String>,
    /// Switchboards the peers were spread over.
    pub switchboards: usize,
    /// Peers the run was asked for (this shard's share, or the sum after a merge).
    pub peers_target: u64,
    /// Peers that joined at least once.
    pub peers_connected: u64,
    /// Failed connection attempts by cause (`timeout`, `refused`, `tls`, `lost`, …).
    pub connect_failures: BTreeMap<String, u64>,
    /// Peers that gave up after their last attempt.
    pub peers_gave_up: u64,
    /// The ramp asked for: peers started per second.
    pub ramp_per_s: f64,
    /// Admissions (handshake, hello, join) per second over the ramp, measured.
    pub handshakes_per_s: f64,
    /// Seconds from the first start until every peer had joined; `None` if some never did.
    pub all_joined_s: Option<f64>,
    /// One admission: dial, TLS, hello, join.
    pub connect_ms: Option<Latency>,
    /// Inner QUIC round trips through the relay.
    pub relay_rtt_ms: Option<Latency>,
    /// The same, only the round trips of the steady phase (after every peer joined and the
    /// pairs came up): the relay's latency without the ramp's handshakes competing for CPU.
    #[serde(default)]
    pub relay_rtt_steady_ms: Option<Latency>,
    /// The harness's own lag: how late its runtime woke a 10 ms timer, the whole run. A
    /// relayed round trip waits in the harness at least this (at each end) besides the
    /// switchboards' time; a high tail here is the harness's, not the switchboards'.
    #[serde(default)]
    pub harness_lag_ms: Option<Latency>,
    /// The same, the steady phase only.
    #[serde(default)]
    pub harness_lag_steady_ms: Option<Latency>,
    /// Round trips per second over the steady phase, all pairs together.
    pub relay_round_trips_per_s: Option<f64>,
    /// Relayed payload bytes per second (both ways), all pairs together.
    pub relay_bytes_per_s: Option<f64>,
    /// Introductions refused by the switchboards, by cause (`not_connected`, `over_rate`,
    /// `declined`, …), retries included: a pair retries a refused introduction a bounded number
    /// of times, so a refusal here is not a lost pair (`relay_pairs` says how many came up).
    #[serde(default)]
    pub intro_refused: BTreeMap<String, u64>,
    /// Pairs whose inner connection came up, of those planned.
    pub relay_pairs: Option<[u64; 2]>,
    /// Round trips not back in time.
    pub relay_lost: Option<u64>,
    /// Inner QUIC packets the callers' connections declared lost and sent again: a round
    /// trip that lost one waits a probe timeout (tens of ms) on top of its path, so these show
    /// how much of the relay's tail is loss recovery rather than waiting for CPU.
    #[serde(default)]
    pub relay_inner_lost_packets: Option<u64>,
    /// Presence changes (status, leave) until a watcher sees them, any node.
    pub presence_visible_ms: Option<Latency>,
    /// The same, watcher on the changed peer's node.
    pub presence_visible_same_node_ms: Option<Latency>,
    /// The same, watcher on another node of the cluster.
    pub presence_visible_other_node_ms: Option<Latency>,
    /// Presence changes made.
    pub churn_events: Option<u64>,
    /// From a post to its arrival at one follower.
    pub post_arrival_ms: Option<Latency>,
    /// Entries that reached a follower, per second of the steady phase (arrivals at each
    /// follower counted apart).
    pub entries_per_s: Option<f64>,
    /// Posts made by the follow graph's peers.
    #[serde(default)]
    pub posts: Option<u64>,
    /// Replication connections (one per related pair of the follow graph) that came up, of those
    /// planned.
    #[serde(default)]
    pub replicate_links: Option<[u64; 2]>,
    /// Peer actors restarted by their supervisor after a crash.
    pub restarts: u64,
    /// Harness resident memory per connected peer (growth over the ramp / peers).
    pub harness_bytes_per_peer: Option<u64>,
    /// Harness peak resident memory.
    pub harness_peak_rss_bytes: Option<u64>,
    /// Harness CPU time (user + system), seconds.
    pub harness_cpu_s: Option<f64>,
    /// Switchboard resident memory per client (growth over the ramp / clients), when the
    /// harness spawned them and could read their /proc entries.
    pub switchboard_bytes_per_client: Option<u64>,
    /// Switchboards' CPU time, seconds, all nodes, when spawned.
    pub switchboard_cpu_s: Option<f64>,
    /// Failover scenario: from the kill of a node to each of its peers joined again through
    /// another node.
    pub failover_ms: Option<Latency>,
    /// Failover scenario: the killed node's peers back online through another node, and how
    /// many it had.
    #[serde(default)]
    pub failover_back: Option<[u64; 2]>,
    /// Failover scenario: from the kill until every surviving node listed exactly the connected
    /// peers (no presence of the dead node left), ms; `null` if that did not happen in time.
    #[serde(default)]
    pub failover_presence_clean_ms: Option<f64>,
    /// The spawned cluster's down period (a silent node's presence is hidden after it), ms.
    #[serde(default)]
    pub down_period_ms: Option<u64>,
    /// Presences the switchboards still listed for stopped peers after the settle time.
    pub ghosts: Option<u64>,
    /// Seconds from the first start to the end of the steady phase.
    pub duration_s: f64,
    /// One sample a second.
    pub timeline: Vec<Sample>,
    /// Switchboard processes the harness spawned (all killed before the report is written).
    #[serde(default)]
    pub spawned_pids: Vec<u32>,
}

fn add_opt<T: std::ops::Add<Output = T> + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

fn add_counts(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut sum = a.clone();
    for (cause, n) in b {
        *sum.entry(cause.clone()).or_default() += n;
    }
    sum
}

fn weighted(a: Option<u64>, wa: u64, b: Option<u64>, wb: u64) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) if wa + wb > 0 => Some((a * wa + b * wb) / (wa + wb)),
        (a, b) => a.or(b),
    }
}

impl Report {
    /// The exact merge of two reports of shards of one population.
    pub fn merge(&self, other: &Report) -> Result<Report, LoadtestError> {
        let failures = add_counts(&self.connect_failures, &other.connect_failures);
        let (wa, wb) = (self.peers_connected, other.peers_connected);
        let lat = |a: &Option<Latency>, b: &Option<Latency>| Latency::merge(a.as_ref(), b.as_ref());
        Ok(Report {
            version: REPORT_VERSION,
            scenario: self.scenario.clone(),
            seed: self.seed,
            shards: self.shards.iter().chain(&other.shards).cloned().collect(),
            switchboards: self.switchboards.max(other.switchboards),
            peers_target: self.peers_target + other.peers_target,
            peers_connected: wa + wb,
            connect_failures: failures,
            peers_gave_up: self.peers_gave_up + other.peers_gave_up,
            ramp_per_s: self.ramp_per_s + other.ramp_per_s,
            handshakes_per_s: self.handshakes_per_s + other.handshakes_per_s,
            all_joined_s: match (self.all_joined_s, other.all_joined_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
            connect_ms: lat(&self.connect_ms, &other.connect_ms)?,
            relay_rtt_ms: lat(&self.relay_rtt_ms, &other.relay_rtt_ms)?,
            relay_rtt_steady_ms: lat(&self.relay_rtt_steady_ms, &other.relay_rtt_steady_ms)?,
            harness_lag_ms: lat(&self.harness_lag_ms, &other.harness_lag_ms)?,
            harness_lag_steady_ms: lat(&self.harness_lag_steady_ms, &other.harness_lag_steady_ms)?,
            relay_round_trips_per_s: add_opt(
                self.relay_round_trips_per_s,
                other.relay_round_trips_per_s,
            ),
            relay_bytes_per_s: add_opt(self.relay_bytes_per_s, other.relay_bytes_per_s),
            intro_refused: add_counts(&self.intro_refused, &other.intro_refused),
            relay_pairs: match (self.relay_pairs, other.relay_pairs) {
                (Some(a), Some(b)) => Some([a[0] + b[0], a[1] + b[1]]),
                (a, b) => a.or(b),
            },
            relay_lost: add_opt(self.relay_lost, other.relay_lost),
            relay_inner_lost_packets: add_opt(
                self.relay_inner_lost_packets,
                other.relay_inner_lost_packets,
            ),
            presence_visible_ms: lat(&self.presence_visible_ms, &other.presence_visible_ms)?,
            presence_visible_same_node_ms: lat(
                &self.presence_visible_same_node_ms,
                &other.presence_visible_same_node_ms,
            )?,
            presence_visible_other_node_ms: lat(
                &self.presence_visible_other_node_ms,
                &other.presence_visible_other_node_ms,
            )?,
            churn_events: add_opt(self.churn_events, other.churn_events),
            post_arrival_ms: lat(&self.post_arrival_ms, &other.post_arrival_ms)?,
            entries_per_s: add_opt(self.entries_per_s, other.entries_per_s),
            posts: add_opt(self.posts, other.posts),
            replicate_links: match (self.replicate_links, other.replicate_links) {
                (Some(a), Some(b)) => Some([a[0] + b[0], a[1] + b[1]]),
                (a, b) => a.or(b),
            },
            restarts: self.restarts + other.restarts,
            harness_bytes_per_peer: weighted(
                self.harness_bytes_per_peer,
                wa,
                other.harness_bytes_per_peer,
                wb,
            ),
            harness_peak_rss_bytes: self
                .harness_peak_rss_bytes
                .max(other.harness_peak_rss_bytes),
            harness_cpu_s: add_opt(self.harness_cpu_s, other.harness_cpu_s),
            // Each shard that spawned its own switchboards measured them; otherwise one did.
            switchboard_bytes_per_client: weighted(
                self.switchboard_bytes_per_client,
                wa,
                other.switchboard_bytes_per_client,
                wb,
            ),
            switchboard_cpu_s: add_opt(self.switchboard_cpu_s, other.switchboard_cpu_s),
            failover_ms: lat(&self.failover_ms, &other.failover_ms)?,
            failover_back: match (self.failover_back, other.failover_back) {
                (Some(a), Some(b)) => Some([a[0] + b[0], a[1] + b[1]]),
                (a, b) => a.or(b),
            },
            failover_presence_clean_ms: match (
                self.failover_presence_clean_ms,
                other.failover_presence_clean_ms,
            ) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            down_period_ms: self.down_period_ms.max(other.down_period_ms),
            ghosts: add_opt(self.ghosts, other.ghosts),
            duration_s: self.duration_s.max(other.duration_s),
            timeline: merge_timelines(&self.timeline, &other.timeline),
            spawned_pids: self
                .spawned_pids
                .iter()
                .chain(&other.spawned_pids)
                .copied()
                .collect(),
        })
    }

    /// The merge of many reports; `None` for none.
    pub fn merge_all(reports: &[Report]) -> Result<Option<Report>, LoadtestError> {
        let Some((first, rest)) = reports.split_first() else {
            return Ok(None);
        };
        rest.iter()
            .try_fold(first.clone(), |acc, r| acc.merge(r))
            .map(Some)
    }
}

/// Samples matched by whole second: connected peers add up; a second's percentiles are the
/// higher of the two (an upper bound: per-second histograms are not kept; the summary
/// percentiles above are exact).
fn merge_timelines(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut by_second: BTreeMap<u64, Sample> = BTreeMap::new();
    for s in a.iter().chain(b) {
        let second = s.t_s.round() as u64;
        match by_second.get_mut(&second) {
            None => {
                by_second.insert(
                    second,
                    Sample {
                        t_s: second as f64,
                        ..s.clone()
                    },
                );
            }
            Some(m) => {
                m.connected += s.connected;
                m.relay_ms = upper(m.relay_ms, s.relay_ms);
                m.presence_ms = upper(m.presence_ms, s.presence_ms);
                m.post_ms = upper(m.post_ms, s.post_ms);
            }
        }
    }
    by_second.into_values().collect()
}

fn upper(a: Option<[f64; 2]>, b: Option<[f64; 2]>) -> Option<[f64; 2]> {
    match (a, b) {
        (Some(a), Some(b)) => Some([a[0].max(b[0]), a[1].max(b[1])]),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::histogram::Hist;

    fn report(peers: u64, rtts_ms: &[u64]) -> Result<Report, LoadtestError> {
        let mut h = Hist::new()?;
        for ms in rtts_ms {
            h.record(ms * 1_000);
        }
        Ok(Report {
            version: REPORT_VERSION,
            scenario: "relay".into(),
            seed: 1,
            shards: vec![format!("{peers}")],
            switchboards: 1,
            peers_target: peers,
            peers_connected: peers,
            connect_failures: BTreeMap::from([("timeout".to_string(), 1)]),
            peers_gave_up: 0,
            ramp_per_s: 100.0,
            handshakes_per_s: 90.0,
            all_joined_s: Some(2.0),
            connect_ms: None,
            relay_rtt_ms: Some(h.latency()?),
            relay_rtt_steady_ms: None,
            harness_lag_ms: None,
            harness_lag_steady_ms: None,
            relay_round_trips_per_s: Some(10.0),
            relay_bytes_per_s: None,
            intro_refused: BTreeMap::from([("over_rate".to_string(), 3)]),
            relay_pairs: Some([1, 1]),
            relay_lost: Some(0),
            relay_inner_lost_packets: Some(2),
            presence_visible_ms: None,
            presence_visible_same_node_ms: None,
            presence_visible_other_node_ms: None,
            churn_events: None,
            post_arrival_ms: None,
            entries_per_s: None,
            posts: None,
            replicate_links: None,
            restarts: 2,
            harness_bytes_per_peer: Some(1_000),
            harness_peak_rss_bytes: Some(5),
            harness_cpu_s: Some(1.0),
            switchboard_bytes_per_client: None,
            switchboard_cpu_s: None,
            failover_ms: None,
            failover_back: None,
            failover_presence_clean_ms: None,
            down_period_ms: None,
            ghosts: Some(0),
            duration_s: 3.0,
            timeline: vec![Sample {
                t_s: 1.0,
                connected: peers,
                relay_ms: Some([1.0, 2.0]),
                presence_ms: None,
                post_ms: None,
            }],
            spawned_pids: Vec::new(),
        })
    }

    #[test]
    fn merge_adds_counts_and_merges_histograms_exactly() -> Result<(), LoadtestError> {
        let (a, b) = (report(100, &[1; 99])?, report(300, &[500])?);
        let m = a.merge(&b)?;
        assert_eq!(m.peers_target, 400);
        assert_eq!(m.connect_failures["timeout"], 2);
        assert_eq!(m.restarts, 4);
        assert_eq!(m.intro_refused["over_rate"], 6);
        let rtt = m.relay_rtt_ms.ok_or(LoadtestError::Invalid("no rtt"))?;
        assert_eq!(rtt.count, 100);
        assert!(rtt.p99 >= 1.0 && rtt.max >= 499.0);
        assert_eq!(m.harness_bytes_per_peer, Some(1_000));
        assert_eq!(m.relay_round_trips_per_s, Some(20.0));
        assert_eq!(m.relay_inner_lost_packets, Some(4));
        assert_eq!(m.timeline.len(), 1);
        assert_eq!(m.timeline[0].connected, 400);
        assert_eq!(m.presence_visible_ms, None);
        Ok(())
    }

    #[test]
    fn report_round_trips_through_json() -> Result<(), LoadtestError> {
        let r = report(10, &[3, 4])?;
        let text = serde_json::to_string(&r)?;
        assert!(text.contains("\"failover_ms\":null"));
        let back: Report = serde_json::from_str(&text)?;
        assert_eq!(back, r);
        assert_eq!(Report::merge_all(&[])?, None);
        Ok(())
    }
}
