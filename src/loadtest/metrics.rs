//! What the simulated peers record while they run, shared by all of them: counters (atomics),
//! failures by cause, and latency histograms, each kept whole for the report and per interval
//! for the timeline (the plot's one sample a second).
//!
//! Why one shared recorder: tens of thousands of peers each holding histograms would cost more
//! than the peers themselves; a record is a short lock on one histogram.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::limits::LOADTEST_TIMELINE_MAX;
use crate::loadtest::histogram::Hist;
use crate::loadtest::LoadtestError;

/// The latencies measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Dial, TLS, hello and join of one peer.
    Connect,
    /// A presence change seen by a watcher on the target's node.
    PresenceSameNode,
    /// A presence change seen by a watcher on another node.
    PresenceOtherNode,
    /// One inner QUIC round trip through the relay.
    RelayRtt,
    /// From a post to its arrival at one follower.
    PostArrival,
    /// From the kill of a node to one of its peers joined again through another node.
    Failover,
    /// One inner QUIC round trip through the relay made in the steady phase (after the ramp).
    RelayRttSteady,
    /// How late the harness's own runtime woke a timer (the lag probe, [`LAG_PROBE`]): what any
    /// of its tasks waits besides the switchboards, on top of what it measures.
    HarnessLag,
    /// The same, in the steady phase only.
    HarnessLagSteady,
}

const MEASURES: usize = 9;

/// The lag probe's period: it sleeps this long, again and again, and records how late it woke.
pub const LAG_PROBE: Duration = Duration::from_millis(10);

impl Measure {
    fn at(self) -> usize {
        self as usize
    }
}

/// One second of the run, for the plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Peers connected then.
    pub connected: u64,
    /// Relay round trips in this second: p50 and p99 (ms), when any.
    pub relay_ms: Option<[f64; 2]>,
    /// Presence changes seen in this second (both kinds of node): p50 and p99 (ms), when any.
    pub presence_ms: Option<[f64; 2]>,
    /// Posts arrived in this second: p50 and p99 (ms), when any.
    pub post_ms: Option<[f64; 2]>,
}

/// The shared recorder.
pub struct Metrics {
    started: Instant,
    /// Peers connected now.
    pub connected: AtomicU64,
    /// Admissions completed (handshake, hello, join), reconnections included.
    pub joins: AtomicU64,
    /// Peer actors started, restarts included.
    pub starts: AtomicU64,
    /// Peer actors restarted by their supervisor after a crash.
    pub restarts: AtomicU64,
    /// Peers that gave up after their last attempt.
    pub gave_up: AtomicU64,
    /// Inner round trips completed and their bytes (both ways).
    pub relay_round_trips: AtomicU64,
    /// See `relay_round_trips`.
    pub relay_bytes: AtomicU64,
    /// Inner round trips not back in time.
    pub relay_lost: AtomicU64,
    /// Inner QUIC packets the relay callers' connections declared lost (each one resent after
    /// a probe timeout, which a round trip waiting on it pays).
    pub relay_inner_lost: AtomicU64,
    /// Introduced pairs whose inner connection is up.
    pub relay_pairs_up: AtomicU64,
    /// Presence changes made (status, leave, rejoin).
    pub churn_events: AtomicU64,
    /// Replication connections (inner QUIC through the relay) made by the dialling side.
    pub replicate_links_up: AtomicU64,
    /// Entries posted and entries that reached a follower.
    pub posts: AtomicU64,
    /// See `posts`.
    pub arrivals: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    intro_refusals: Mutex<BTreeMap<String, u64>>,
    whole: [Mutex<Hist>; MEASURES],
    interval: [Mutex<Hist>; MEASURES],
    timeline: Mutex<Vec<Sample>>,
    steady: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain counts: a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// A recorder whose clock starts now.
    pub fn new() -> Result<Metrics, LoadtestError> {
        let hists = || -> Result<[Mutex<Hist>; MEASURES], LoadtestError> {
            Ok([
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
                Mutex::new(Hist::new()?),
            ])
        };
        Ok(Metrics {
            started: Instant::now(),
            connected: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            relay_round_trips: AtomicU64::new(0),
            relay_bytes: AtomicU64::new(0),
            relay_lost: AtomicU64::new(0),
            relay_inner_lost: AtomicU64::new(0),
            relay_pairs_up: AtomicU64::new(0),
            churn_events: AtomicU64::new(0),
            replicate_links_up: AtomicU64::new(0),
            posts: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            intro_refusals: Mutex::new(BTreeMap::new()),
            whole: hists()?,
            interval: hists()?,
            timeline: Mutex::new(Vec::new()),
            steady: AtomicBool::new(false),
        })
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Microseconds since the run started (what status lines and posts carry as their stamp).
    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Add one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Count a failure by its cause.
    pub fn fail(&self, cause: &str) {
        *lock(&self.failures).entry(cause.to_string()).or_default() += 1;
    }

    /// Failures by cause.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        lock(&self.failures).clone()
    }

    /// Count a refused introduction by its cause.
    pub fn refuse_intro(&self, cause: &str) {
        *lock(&self.intro_refusals)
            .entry(cause.to_string())
            .or_default() += 1;
    }

    /// Refused introductions by cause.
    pub fn intro_refusals(&self) -> BTreeMap<String, u64> {
        lock(&self.intro_refusals).clone()
    }

    /// Record one latency.
    pub fn record(&self, measure: Measure, took: Duration) {
        let us = took.as_micros() as u64;
        lock(&self.whole[measure.at()]).record(us);
        lock(&self.interval[measure.at()]).record(us);
        let twin = match measure {
            Measure::RelayRtt => Some(Measure::RelayRttSteady),
            Measure::HarnessLag => Some(Measure::HarnessLagSteady),
            _ => None,
        };
        if let Some(twin) = twin.filter(|_| self.steady.load(Ordering::Relaxed)) {
            lock(&self.whole[twin.at()]).record(us);
        }
    }

    /// The ramp is over: round trips and the lag probe's wake-ups from now on are counted in
    /// the steady phase's own histograms too ([`Measure::RelayRttSteady`],
    /// [`Measure::HarnessLagSteady`]), apart from those the ramp's handshakes slowed.
    pub fn mark_steady(&self) {
        self.steady.store(true, Ordering::Relaxed);
    }

    /// The whole run's histogram of `measure`, if anything was recorded.
    pub fn whole(&self, measure: Measure) -> Option<Hist> {
        let hist = lock(&self.whole[measure.at()]);
        (!hist.is_empty()).then(|| hist.clone())
    }

    /// The presence changes of both kinds of node together.
    pub fn presence(&self) -> Result<Option<Hist>, LoadtestError> {
        let same = self.whole(Measure::PresenceSameNode);
        let other = self.whole(Measure::PresenceOtherNode);
        Ok(match (same, other) {
            (Some(mut a), Some(b)) => {
                a.add(&b)?;
                Some(a)
            }
            (a, b) => a.or(b),
        })
    }

    /// Close the current second: a timeline sample (bounded), and fresh interval histograms.
    pub fn sample(&self) {
        let take = |m: Measure| {
            let mut h = lock(&self.interval[m.at()]);
            let out = (!h.is_empty()).then(|| [h.quantile_ms(0.5), h.quantile_ms(0.99)]);
            h.reset();
            out
        };
        let presence = {
            let mut same = lock(&self.interval[Measure::PresenceSameNode.at()]);
            let mut other = lock(&self.interval[Measure::PresenceOtherNode.at()]);
            let _ = same.add(&other);
            let out = (!same.is_empty()).then(|| [same.quantile_ms(0.5), same.quantile_ms(0.99)]);
            same.reset();
            other.reset();
            out
        };
        let sample = Sample {
            t_s: self.started.elapsed().as_secs_f64(),
            connected: Self::get(&self.connected),
            relay_ms: take(Measure::RelayRtt),
            presence_ms: presence,
            post_ms: take(Measure::PostArrival),
        };
        let _ = take(Measure::Connect);
        let _ = take(Measure::Failover);
        let _ = take(Measure::HarnessLag);
        let mut timeline = lock(&self.timeline);
        if timeline.len() < LOADTEST_TIMELINE_MAX {
            timeline.push(sample);
        }
    }

    /// The samples so far.
    pub fn timeline(&self) -> Vec<Sample> {
        lock(&self.timeline).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_twins_count_only_after_the_ramp() {
        let m = Metrics::new().unwrap();
        m.record(Measure::RelayRtt, Duration::from_millis(300));
        m.record(Measure::HarnessLag, Duration::from_millis(40));
        assert!(m.whole(Measure::RelayRttSteady).is_none());
        assert!(m.whole(Measure::HarnessLagSteady).is_none());
        m.mark_steady();
        m.record(Measure::RelayRtt, Duration::from_millis(2));
        m.record(Measure::HarnessLag, Duration::from_millis(1));
        m.record(Measure::Connect, Duration::from_millis(5));
        let count = |x: Measure| m.whole(x).map_or(0, |h| h.len());
        assert_eq!(count(Measure::RelayRtt), 2);
        assert_eq!(count(Measure::RelayRttSteady), 1);
        assert_eq!(count(Measure::HarnessLag), 2);
        assert_eq!(count(Measure::HarnessLagSteady), 1);
        assert_eq!(count(Measure::Connect), 1);
        // The ramp's slow round trip is in the whole run's, not the steady phase's.
        let steady = m.whole(Measure::RelayRttSteady).unwrap().latency().unwrap();
        assert!(steady.max < 100.0, "{steady:?}");
    }
}
