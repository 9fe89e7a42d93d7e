//! The scenarios' driver: resolves the switchboards, binds the shared endpoints (on loopback,
//! one source address each: see [`setup`]), ramps the
//! simulated peers up under the given dynamic supervisor, runs the steady phase (churn; the
//! relayed pairs run by themselves), samples the timeline once a second, and assembles the
//! report. The tree, the switchboard processes and the display are the caller's
//! (`kith-supervisors`): this file decides only what happens when.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::limits::{
    LOADTEST_CHURN_MAX, LOADTEST_DURATION_MAX_SECS, LOADTEST_ENDPOINTS, LOADTEST_FAILOVER_AFTER,
    LOADTEST_FAILOVER_WAIT, LOADTEST_HANDSHAKES_IN_FLIGHT_MAX, LOADTEST_INTRO_ANSWER_TIMEOUT,
    LOADTEST_JOIN_GRACE, LOADTEST_PEERS_MAX, LOADTEST_POSTS_MAX, LOADTEST_PROBE_ENDPOINTS,
    LOADTEST_RAMP_MAX, LOADTEST_RELAY_PAIRS_MAX, LOADTEST_REPLICATE_PEERS_MAX,
};
use crate::loadtest::client::{shared_endpoint, Link, SbTarget};
use crate::loadtest::graph::FollowGraph;
use crate::loadtest::harness::Harness;
use crate::loadtest::lane::Lane;
use crate::loadtest::metrics::{Measure, Metrics, LAG_PROBE};
use crate::loadtest::peer::{PeerArgs, PeerMsg, SimPeer};
use crate::loadtest::plan::Plan;
use crate::loadtest::report::{Report, REPORT_VERSION};
use crate::loadtest::schedule::{Ramp, Scenario, Shard};
use crate::loadtest::{procfs, LoadtestError};
use crate::net::PeerEndpoint;
use crate::runtime::OwnedTask;
use crate::supervisor::DynamicSupervisorHandle;

/// How often the driver wakes during the ramp.
const RAMP_TICK: Duration = Duration::from_millis(5);
/// How long the run waits after the steady phase for the last posts to reach their followers.
const POST_DRAIN: Duration = Duration::from_secs(1);
/// Follows per peer on average in the follow graph.
const FOLLOWS_MEAN: usize = 5;

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Peers in the whole population (all shards).
    pub peers: u64,
    /// Peers started per second, whole population.
    pub ramp_per_s: f64,
    /// The steady phase after the ramp.
    pub duration: Duration,
    /// What to exercise.
    pub scenario: Scenario,
    /// Identities and random choices.
    pub seed: u64,
    /// This process's part.
    pub shard: Shard,
    /// Presence changes per second, whole population.
    pub churn_per_s: f64,
    /// Relayed pairs, whole population.
    pub relay_pairs: u64,
    /// Peers in the follow graph, whole population.
    pub replicate_peers: u64,
    /// Posts per second by the follow graph's peers, whole population.
    pub posts_per_s: f64,
    /// Admissions (handshake, hello, join) in flight at most, this process.
    pub in_flight: usize,
}

impl RunConfig {
    /// Check every value against its bound in `limits.rs`.
    pub fn check(&self) -> Result<(), LoadtestError> {
        if self.peers == 0 || self.peers > LOADTEST_PEERS_MAX as u64 {
            return Err(LoadtestError::Invalid(
                "--peers must be between 1 and 100,000 (LOADTEST_PEERS_MAX)",
            ));
        }
        if !(self.ramp_per_s > 0.0 && self.ramp_per_s <= f64::from(LOADTEST_RAMP_MAX)) {
            return Err(LoadtestError::Invalid(
                "--ramp must be above 0 and at most 20,000 per second (LOADTEST_RAMP_MAX)",
            ));
        }
        if self.duration.as_secs() > LOADTEST_DURATION_MAX_SECS {
            return Err(LoadtestError::Invalid(
                "--duration may be at most 3,600 s (LOADTEST_DURATION_MAX_SECS)",
            ));
        }
        if !(self.churn_per_s >= 0.0 && self.churn_per_s <= f64::from(LOADTEST_CHURN_MAX)) {
            return Err(LoadtestError::Invalid(
                "--churn must be between 0 and 10,000 per second (LOADTEST_CHURN_MAX)",
            ));
        }
        if self.relay_pairs > LOADTEST_RELAY_PAIRS_MAX as u64 {
            return Err(LoadtestError::Invalid(
                "--relay-pairs may be at most 5,000 (LOADTEST_RELAY_PAIRS_MAX)",
            ));
        }
        if !(self.posts_per_s >= 0.0 && self.posts_per_s <= f64::from(LOADTEST_POSTS_MAX)) {
            return Err(LoadtestError::Invalid(
                "--posts must be between 0 and 10,000 per second (LOADTEST_POSTS_MAX)",
            ));
        }
        if self.in_flight == 0 || self.in_flight > LOADTEST_HANDSHAKES_IN_FLIGHT_MAX {
            return Err(LoadtestError::Invalid(
                "--in-flight must be between 1 and 256 (LOADTEST_HANDSHAKES_IN_FLIGHT_MAX)",
            ));
        }
        if self.replicate_peers > LOADTEST_REPLICATE_PEERS_MAX as u64 {
            return Err(LoadtestError::Invalid(
                "--replicate-peers may be at most 2,000 (LOADTEST_REPLICATE_PEERS_MAX)",
            ));
        }
        Ok(())
    }
}

/// Moments the caller may measure its switchboards at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the first peer starts.
    BeforeRamp,
    /// Every peer joined (or the join grace ran out).
    Joined,
    /// Failover scenario: kill node `.0` (an index into the targets) now.
    Kill(usize),
    /// The steady phase ended; peers are still up.
    End,
}

/// Resolve the switchboards and bind the shared endpoints; build the shared context.
///
/// Against loopback switchboards the endpoints bind 127.0.0.1, .2, … so that the peers come
/// from as many source addresses as there are endpoints: a switchboard's handshake admission
/// (`net::admission`) holds each source address to a few pending handshakes, which a ramp of
/// a thousand a second from one address exceeds. Against a remote switchboard this machine has
/// one address: its ramp is bounded by that cap, and `--shard` over several machines is the way
/// past it.
pub async fn setup(config: &RunConfig, targets: &[String]) -> Result<Arc<Harness>, LoadtestError> {
    setup_as(config, targets, Link::Daemon, None).await
}

/// [`setup`], the peers dialling with the transport of `link` (a daemon's by default), and the
/// relayed pairs on `probes` if given (their own endpoints and runtime: see
/// [`crate::loadtest::lane`]).
pub async fn setup_as(
    config: &RunConfig,
    targets: &[String],
    link: Link,
    probes: Option<Lane>,
) -> Result<Arc<Harness>, LoadtestError> {
    config.check()?;
    if targets.is_empty() {
        return Err(LoadtestError::Invalid(
            "give --spawn N or at least one --switchboard [@ID@]HOST:PORT",
        ));
    }
    if config.scenario == Scenario::Failover && targets.len() < 2 {
        return Err(LoadtestError::Invalid(
            "--scenario failover needs a cluster the harness spawned: --spawn 2 or more",
        ));
    }
    let any: SocketAddr = ([0, 0, 0, 0], 0).into();
    // A probe endpoint learns the keys of switchboards given without one (trust on first use).
    let probe = PeerEndpoint::bind(any, &endpoint_key(u64::MAX))?;
    let mut resolved = Vec::with_capacity(targets.len());
    for text in targets {
        resolved.push(SbTarget::resolve(text, &probe).await?);
    }
    drop(probe);
    let loopback = resolved
        .iter()
        .all(|t| t.addr.is_ipv4() && t.addr.ip().is_loopback());
    // On loopback each endpoint takes its own source address (127.0.0.1, .2, …), as that many
    // hosts would: a switchboard admits at most HANDSHAKES_PER_ADDRESS_MAX pending handshakes
    // per source address (its flood defence), which one address would hit at once. Elsewhere
    // the machine's own address is the only one there is. The endpoint's own key is never used
    // for a peer's dial (each carries its own config).
    let bind = |i: usize| match loopback {
        true => SocketAddr::from(([127, 0, 0, 1 + (i % 254) as u8], 0)),
        false => any,
    };
    let mut endpoints = Vec::with_capacity(LOADTEST_ENDPOINTS);
    for i in 0..LOADTEST_ENDPOINTS {
        endpoints.push(Arc::new(shared_endpoint(
            bind(i),
            &endpoint_key(i as u64),
            None,
        )?));
    }
    let mut probe_endpoints = Vec::new();
    if let Some(lane) = &probes {
        for i in LOADTEST_ENDPOINTS..LOADTEST_ENDPOINTS + LOADTEST_PROBE_ENDPOINTS {
            let key = endpoint_key(i as u64);
            probe_endpoints.push(Arc::new(shared_endpoint(bind(i), &key, Some(lane))?));
        }
    }
    let local = config.shard.local_count(config.peers);
    let share = |n: u64| {
        n / u64::from(config.shard.count)
            + u64::from(u64::from(config.shard.index) < n % u64::from(config.shard.count))
    };
    let plan = Plan::new(
        local,
        resolved.len() as u64,
        config.scenario,
        share(config.relay_pairs),
        share(config.replicate_peers),
    );
    let graph = (plan.replicate_peers > 0).then(|| {
        FollowGraph::new(
            plan.replicate_peers as usize,
            FOLLOWS_MEAN,
            config.shard.seed(config.seed),
        )
    });
    let metrics = Arc::new(Metrics::new()?);
    let mut harness = Harness::new(
        resolved,
        endpoints,
        plan,
        config.shard,
        config.seed,
        graph,
        metrics,
    )
    .with_in_flight(config.in_flight)
    .with_link(link);
    if let Some(lane) = probes {
        harness = harness.with_probes(lane, probe_endpoints);
    }
    Ok(Arc::new(harness))
}

/// Ramp, steady phase, report (without the ghost check and the switchboards' figures, which
/// need the peers stopped and the processes: the caller adds them). `at` is called at each
/// [`Phase`].
pub async fn drive(
    harness: &Arc<Harness>,
    sup: &DynamicSupervisorHandle,
    config: &RunConfig,
    mut at: impl FnMut(Phase),
) -> Result<Report, LoadtestError> {
    let metrics = Arc::clone(&harness.metrics);
    let peers = harness.plan.peers;
    // Ends with the run (dropped at the end of this function, or when `stopping` is set).
    let _lag = OwnedTask::spawn(lag_probe(
        Arc::clone(&metrics),
        Arc::clone(&harness.stopping),
    ));
    at(Phase::BeforeRamp);
    let rss_before = procfs::rss("self").ok();
    let ramp = Ramp {
        peers,
        per_s: config.shard.share(config.ramp_per_s),
    };
    let started = Instant::now();
    let mut next_sample = started + Duration::from_secs(1);
    let mut launched = 0u64;
    // The ramp: bounded by the peer count, and in time by its length plus the grace.
    let ramp_deadline = started + ramp.length() + LOADTEST_JOIN_GRACE;
    while launched < peers && Instant::now() < ramp_deadline {
        let due = ramp.due(started.elapsed());
        while launched < due {
            let args = PeerArgs {
                local: launched,
                harness: Arc::clone(harness),
            };
            if let Err(e) = sup
                .start_worker(format!("peer-{launched}"), SimPeer, move || args.clone())
                .await
            {
                tracing::debug!(error = %e, "a simulated peer did not start");
                metrics.fail("start");
            }
            launched += 1;
        }
        sample_if_due(&metrics, &mut next_sample);
        tokio::time::sleep(RAMP_TICK).await;
    }
    let ramp_s = started.elapsed().as_secs_f64();
    // Wait for the stragglers (bounded by the grace).
    let mut all_joined = None;
    while Instant::now() < ramp_deadline {
        let joined = Metrics::get(&metrics.connected);
        if joined >= peers {
            all_joined = Some(started.elapsed().as_secs_f64());
            break;
        }
        if joined + Metrics::get(&metrics.gave_up) >= peers {
            break;
        }
        sample_if_due(&metrics, &mut next_sample);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined_s = started.elapsed().as_secs_f64();
    let connected = Metrics::get(&metrics.connected);
    let handshakes = Metrics::get(&metrics.joins);
    let rss_joined = procfs::rss("self").ok();
    at(Phase::Joined);
    // The introduced pairs and the follow graph's connections come up after their peers joined
    // (each waits to see the other online): give them a bounded moment before the steady phase.
    let links_planned = harness
        .graph
        .as_ref()
        .map_or(0, |g| (0..g.len()).map(|n| g.dials(n).len() as u64).sum());
    let settle = Instant::now() + 2 * LOADTEST_INTRO_ANSWER_TIMEOUT;
    while Instant::now() < settle
        && (Metrics::get(&metrics.relay_pairs_up) < harness.plan.relay_pairs
            || Metrics::get(&metrics.replicate_links_up) < links_planned)
    {
        sample_if_due(&metrics, &mut next_sample);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if config.scenario == Scenario::Failover {
        failover(harness, &mut at, &mut next_sample).await;
    }
    // The steady phase: churn at its rate, relayed pairs by themselves, one sample a second.
    metrics.mark_steady();
    let steady = Instant::now();
    let relay_before = (
        Metrics::get(&metrics.relay_round_trips),
        metrics.relay_bytes.load(Ordering::Relaxed),
    );
    let mut rng = StdRng::seed_from_u64(config.shard.seed(config.seed));
    let churn_rate = config.shard.share(config.churn_per_s);
    let presence = harness.plan.presence_range();
    let mut churned = 0u64;
    let posters = harness.plan.replicate_range();
    let post_rate = config.shard.share(config.posts_per_s);
    let mut posted = 0u64;
    let arrivals_before = Metrics::get(&metrics.arrivals);
    while steady.elapsed() < config.duration {
        if !posters.is_empty() && config.posts_per_s > 0.0 {
            let due = (steady.elapsed().as_secs_f64() * post_rate) as u64;
            while posted < due {
                if let Some(actor) = harness.actor(rng.gen_range(posters.clone())) {
                    let _ = actor.cast(PeerMsg::Post);
                }
                posted += 1;
            }
        }
        if !presence.is_empty() && config.churn_per_s > 0.0 {
            let due = (steady.elapsed().as_secs_f64() * churn_rate) as u64;
            while churned < due {
                let l = rng.gen_range(presence.clone());
                let msg = match rng.gen_range(0..4) {
                    0 => PeerMsg::Leave,
                    _ => PeerMsg::ChangeStatus,
                };
                if let Some(actor) = harness.actor(l) {
                    let _ = actor.cast(msg);
                }
                churned += 1;
            }
        }
        sample_if_due(&metrics, &mut next_sample);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let steady_s = steady.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let arrivals = Metrics::get(&metrics.arrivals) - arrivals_before;
    // The last posts' entries are still on their way: a bounded moment for them to arrive (their
    // times count; the rate above is the steady phase's).
    if !posters.is_empty() {
        tokio::time::sleep(POST_DRAIN).await;
    }
    harness.stopping.store(true, Ordering::Relaxed);
    metrics.sample();
    at(Phase::End);
    let relay_after = (
        Metrics::get(&metrics.relay_round_trips),
        metrics.relay_bytes.load(Ordering::Relaxed),
    );
    let plan = &harness.plan;
    let relay = plan.relay_pairs > 0;
    let presence_run = !plan.presence_range().is_empty();
    let latency = |m: Measure| metrics.whole(m).map(|h| h.latency()).transpose();
    Ok(Report {
        version: REPORT_VERSION,
        scenario: config.scenario.name().to_string(),
        seed: config.seed,
        shards: vec![format!("{}/{}", config.shard.index, config.shard.count)],
        switchboards: harness.targets.len(),
        peers_target: peers,
        peers_connected: connected.max(handshakes.min(peers)),
        connect_failures: metrics.failures(),
        peers_gave_up: Metrics::get(&metrics.gave_up),
        ramp_per_s: ramp.per_s,
        handshakes_per_s: handshakes as f64 / joined_s.max(ramp_s).max(f64::MIN_POSITIVE),
        all_joined_s: all_joined,
        connect_ms: latency(Measure::Connect)?,
        relay_rtt_ms: if relay {
            latency(Measure::RelayRtt)?
        } else {
            None
        },
        relay_rtt_steady_ms: if relay {
            latency(Measure::RelayRttSteady)?
        } else {
            None
        },
        harness_lag_ms: latency(Measure::HarnessLag)?,
        harness_lag_steady_ms: latency(Measure::HarnessLagSteady)?,
        relay_round_trips_per_s: relay.then(|| (relay_after.0 - relay_before.0) as f64 / steady_s),
        relay_bytes_per_s: relay.then(|| (relay_after.1 - relay_before.1) as f64 / steady_s),
        intro_refused: metrics.intro_refusals(),
        relay_pairs: relay.then(|| [Metrics::get(&metrics.relay_pairs_up), plan.relay_pairs]),
        relay_lost: relay.then(|| Metrics::get(&metrics.relay_lost)),
        relay_inner_lost_packets: relay.then(|| Metrics::get(&metrics.relay_inner_lost)),
        presence_visible_ms: if presence_run {
            metrics.presence()?.map(|h| h.latency()).transpose()?
        } else {
            None
        },
        presence_visible_same_node_ms: latency(Measure::PresenceSameNode)?,
        presence_visible_other_node_ms: latency(Measure::PresenceOtherNode)?,
        churn_events: presence_run.then(|| Metrics::get(&metrics.churn_events)),
        post_arrival_ms: latency(Measure::PostArrival)?,
        entries_per_s: (plan.replicate_peers > 0).then(|| arrivals as f64 / steady_s),
        posts: (plan.replicate_peers > 0).then(|| Metrics::get(&metrics.posts)),
        replicate_links: (plan.replicate_peers > 0)
            .then(|| [Metrics::get(&metrics.replicate_links_up), links_planned]),
        restarts: Metrics::get(&metrics.restarts),
        harness_bytes_per_peer: match (rss_before, rss_joined) {
            (Some(a), Some(b)) if connected > 0 => Some(b.saturating_sub(a) / connected),
            _ => None,
        },
        harness_peak_rss_bytes: procfs::peak_rss("self").ok(),
        harness_cpu_s: procfs::cpu("self").ok().map(|d| d.as_secs_f64()),
        switchboard_bytes_per_client: None,
        switchboard_cpu_s: None,
        failover_ms: latency(Measure::Failover)?,
        failover_back: harness
            .killed()
            .map(|(dead, _)| [harness.failed_over(), harness.planned_on(dead)]),
        failover_presence_clean_ms: None,
        down_period_ms: None,
        ghosts: None,
        duration_s: started.elapsed().as_secs_f64(),
        timeline: metrics.timeline(),
        spawned_pids: Vec::new(),
    })
}

/// The failover scenario's middle: a moment of steady load, then the last node is killed (by
/// the caller, at [`Phase::Kill`]) and the run waits, bounded by [`LOADTEST_FAILOVER_WAIT`],
/// until every peer of that node joined again through another node. Each peer's time from the
/// kill to its new join is recorded as it happens (`Measure::Failover`).
async fn failover(harness: &Arc<Harness>, at: &mut impl FnMut(Phase), next: &mut Instant) {
    let metrics = &harness.metrics;
    let until = Instant::now() + LOADTEST_FAILOVER_AFTER;
    while Instant::now() < until {
        sample_if_due(metrics, next);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = harness.targets.len().saturating_sub(1);
    at(Phase::Kill(dead));
    harness.killed_now(dead);
    let orphans = harness.planned_on(dead);
    let until = Instant::now() + LOADTEST_FAILOVER_WAIT;
    while Instant::now() < until && harness.failed_over() < orphans {
        sample_if_due(metrics, next);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The harness's own latency, apart from the switchboards': sleep [`LAG_PROBE`] again and
/// again on the peers' runtime and record how late each wake-up is. A relayed round trip or a
/// presence notice waits at least this long in the harness (twice per round trip: the callee's
/// echo and the caller's read) on top of the switchboards' time.
async fn lag_probe(metrics: Arc<Metrics>, stop: Arc<std::sync::atomic::AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        tokio::time::sleep(LAG_PROBE).await;
        metrics.record(
            Measure::HarnessLag,
            asked.elapsed().saturating_sub(LAG_PROBE),
        );
    }
}

/// The key of shared endpoint `i` (never proved to anyone: each dial carries its peer's own).
fn endpoint_key(i: u64) -> SigningKey {
    let secret = blake3::hash(&[b"kith-loadtest-endpoint".as_slice(), &i.to_le_bytes()].concat());
    SigningKey::from_bytes(secret.as_bytes())
}

fn sample_if_due(metrics: &Metrics, next: &mut Instant) {
    if Instant::now() >= *next {
        metrics.sample();
        *next += Duration::from_secs(1);
    }
}
