//! `kith bench presence --cluster N`: the presence CRDT measured on real switchboard processes
//! on loopback, with real sockets, where `kith bench presence` alone simulates the cluster in one
//! process. Two figures, each with p50 and p99:
//!
//! - **a join's convergence**: a watcher joined to every node watches a set of ids; clients with
//!   those ids join random nodes at random moments (so the joins fall anywhere in the heartbeat
//!   period); a join has converged when every node's watcher was told it is online. Timed from
//!   the join's welcome (the node has tracked it) to the last node's notice.
//! - **a fresh node's catch-up**: the load test's simulated peers (`kith::loadtest`, its raw
//!   clients, its `--spawn` cluster) hold `--presences` presences on all nodes but the last;
//!   the last node is then killed and started again, empty, several times, and each time timed
//!   from its process's start until its own count lists them all (read from `kith status`, the
//!   `online` count, every few milliseconds).
//!
//! Everything printed is measured in the run; nothing is carried over from elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ed25519_dalek::SigningKey;
use kith::identity::FeedId;
use kith::limits::{LOADTEST_HANDSHAKES_IN_FLIGHT, LOADTEST_SPAWN_MAX, WATCH_IDS_MAX};
use kith::loadtest::client::{self as lt_client, SbTarget};
use kith::loadtest::histogram::{Hist, Latency};
use kith::loadtest::run::{self, RunConfig};
use kith::loadtest::schedule::peer_secret;
use kith::loadtest::{Scenario, Shard};
use kith::net::{CloseCode, PeerEndpoint};
use kith::runtime::OwnedTask;
use kith::wire::control::Request;
use kith::wire::switchboard::{ClientMsg, ServerMsg};
use serde::Serialize;

use crate::cli::client;
use crate::loadtest::spawn::LocalCluster;
use crate::trees;

/// How long a join may take to reach every node before it counts as not converged.
const CONVERGE_WAIT_PERIODS: u32 = 40;
/// How often the catch-up reads the fresh node's count.
const CATCHUP_POLL: Duration = Duration::from_millis(5);
/// How long one catch-up may take before it counts as not done.
const CATCHUP_WAIT: Duration = Duration::from_secs(120);
/// How long the presences may take to be listed by every node before the catch-ups start.
const SPREAD_WAIT: Duration = Duration::from_secs(120);
/// Joins timed for convergence at most (`--joins`).
const JOINS_MAX: usize = 2_000;
/// Fresh-node catch-ups at most (`--catchups`).
const CATCHUPS_MAX: usize = 50;
/// Presences the catch-up carries at most (`--presences`).
const PRESENCES_MAX: u64 = kith::limits::LOADTEST_PEERS_MAX as u64;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Switchboard processes (at least 2).
    pub nodes: usize,
    /// Their presence heartbeat period, ms.
    pub broadcast_ms: u64,
    /// Joins timed for convergence.
    pub joins: usize,
    /// Presences a fresh node catches up on.
    pub presences: u64,
    /// Fresh-node catch-ups timed.
    pub catchups: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// Switchboard processes.
    pub nodes: usize,
    /// Their presence heartbeat period, ms.
    pub broadcast_ms: u64,
    /// From a join's welcome until every node listed it.
    pub convergence_ms: Option<Latency>,
    /// Joins that reached every node in time, and joins made.
    pub joins_converged: [u64; 2],
    /// Joins each node's watcher was told of, node 1 first.
    pub joins_seen_by_node: Vec<u64>,
    /// Presences the fresh node caught up on.
    pub catchup_presences: u64,
    /// From the fresh node's start until it listed them all.
    pub catchup_ms: Option<Latency>,
    /// Catch-ups that finished in time, and catch-ups made.
    pub catchups_done: [u64; 2],
    /// Seconds the whole bench took.
    pub seconds: f64,
}

/// Run it.
pub async fn run(options: Options) -> Result<ClusterReport> {
    if options.nodes < 2 || options.nodes > LOADTEST_SPAWN_MAX {
        bail!("--cluster must be between 2 and {LOADTEST_SPAWN_MAX}");
    }
    if options.joins == 0 || options.joins > JOINS_MAX.min(WATCH_IDS_MAX) {
        bail!("--joins must be between 1 and {JOINS_MAX}");
    }
    if options.presences == 0 || options.presences > PRESENCES_MAX {
        bail!("--presences must be between 1 and {PRESENCES_MAX}");
    }
    if options.catchups == 0 || options.catchups > CATCHUPS_MAX {
        bail!("--catchups must be between 1 and {CATCHUPS_MAX}");
    }
    let started = Instant::now();
    let extra = vec![
        "--presence-broadcast-ms".to_string(),
        options.broadcast_ms.to_string(),
    ];
    let mut cluster = LocalCluster::start(options.nodes, &extra)?;
    let period = Duration::from_millis(options.broadcast_ms);
    let (converged, joins_converged, joins_seen_by_node) =
        convergence(&cluster, options.joins, period).await?;
    let (caught, catchups_done) = catchup(&mut cluster, &extra, options).await?;
    Ok(ClusterReport {
        nodes: options.nodes,
        broadcast_ms: options.broadcast_ms,
        convergence_ms: (!converged.is_empty())
            .then(|| converged.latency())
            .transpose()?,
        joins_converged,
        joins_seen_by_node,
        catchup_presences: options.presences,
        catchup_ms: (!caught.is_empty()).then(|| caught.latency()).transpose()?,
        catchups_done,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Seeds of the bench's own clients' keys (the load test's peers use the run's seed, 1).
const WATCHER_SEED: u64 = u64::MAX - 1;
const JOINER_SEED: u64 = u64::MAX - 2;
const ENDPOINT_SEED: u64 = u64::MAX - 3;

/// Key `i` of a kind (`seed`) of the bench's own clients, none of the load test's peers'.
fn key(seed: u64, i: usize) -> SigningKey {
    SigningKey::from_bytes(&peer_secret(seed, i as u64))
}

/// A number in [0, 1) drawn from `i` (the joins' moments and nodes; fixed from run to run).
fn draw(i: usize, salt: u64) -> f64 {
    let bytes = peer_secret(salt, i as u64);
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    (u64::from_le_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
}

/// Watchers on every node, then `joins` clients joining random nodes at random moments over
/// a few heartbeat periods; each join's time until the last node's watcher saw it.
async fn convergence(
    cluster: &LocalCluster,
    joins: usize,
    period: Duration,
) -> Result<(Hist, [u64; 2], Vec<u64>)> {
    let targets: Vec<SbTarget> = cluster.nodes.iter().map(|n| n.at).collect();
    let endpoint = Arc::new(PeerEndpoint::bind(
        ([127, 0, 0, 1], 0).into(),
        &key(ENDPOINT_SEED, 0),
    )?);
    let ids: Vec<FeedId> = (0..joins)
        .map(|i| FeedId::from(key(JOINER_SEED, i).verifying_key()))
        .collect();
    // First notice of each (node, id).
    let seen: Arc<Mutex<HashMap<(usize, FeedId), Instant>>> = Arc::default();
    let mut watchers = Vec::with_capacity(targets.len());
    for (n, target) in targets.iter().enumerate() {
        let mut watcher = lt_client::join(&endpoint, &key(WATCHER_SEED, n), *target).await?;
        lt_client::write(&mut watcher.send, &ClientMsg::Watch { ids: ids.clone() }).await?;
        let seen = Arc::clone(&seen);
        watchers.push(OwnedTask::spawn(async move {
            // The whole client moves in: its send half dropped would end its control stream.
            let mut watcher = watcher;
            while let Ok(msg) = lt_client::read(&mut watcher.recv).await {
                if let ServerMsg::Presence {
                    id,
                    online: Some(_),
                } = msg
                {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.entry((n, id)).or_insert_with(Instant::now);
                }
            }
            drop(watcher);
        }));
    }
    // The joins, spread at random over four periods (at least two seconds).
    let window = (period * 4).max(Duration::from_secs(2));
    let t0 = Instant::now();
    let mut joiners = Vec::with_capacity(joins);
    for i in 0..joins {
        let at = t0 + window.mul_f64(draw(i, 1));
        let node = ((draw(i, 2) * targets.len() as f64) as usize).min(targets.len() - 1);
        let (endpoint, target) = (Arc::clone(&endpoint), targets[node]);
        joiners.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let joined = lt_client::join(&endpoint, &key(JOINER_SEED, i), target).await;
            joined.map(|j| (i, Instant::now(), j))
        }));
    }
    let mut welcomed = Vec::with_capacity(joins);
    for joiner in joiners {
        match joiner.await? {
            Ok(joined) => welcomed.push(joined),
            Err(e) => tracing::warn!(error = %e, "a joining client was not admitted"),
        }
    }
    // Wait (bounded) until every node saw every admitted join.
    let deadline = Instant::now() + period * CONVERGE_WAIT_PERIODS;
    let expected = welcomed.len() * targets.len();
    while Instant::now() < deadline {
        if seen.lock().unwrap_or_else(|p| p.into_inner()).len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut hist = Hist::new()?;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (i, welcome, _) in &welcomed {
        let id = ids[*i];
        let last = (0..targets.len())
            .map(|n| seen.get(&(n, id)).copied())
            .collect::<Option<Vec<Instant>>>()
            .and_then(|times| times.into_iter().max());
        if let Some(last) = last {
            hist.record(last.saturating_duration_since(*welcome).as_micros() as u64);
        }
    }
    let converged = hist.len();
    let by_node = (0..targets.len())
        .map(|n| seen.keys().filter(|(m, _)| *m == n).count() as u64)
        .collect();
    drop(watchers);
    drop(welcomed);
    endpoint.close(CloseCode::Normal);
    Ok((hist, [converged, joins as u64], by_node))
}

/// The load test's peers hold `presences` presences on every node but the last; then the last
/// is started again, empty, `catchups` times, each timed until it lists them all.
async fn catchup(
    cluster: &mut LocalCluster,
    extra: &[String],
    options: Options,
) -> Result<(Hist, [u64; 2])> {
    let fresh = cluster.nodes.len() - 1;
    let holders: Vec<String> = cluster.nodes[..fresh]
        .iter()
        .map(|n| n.at.to_text())
        .collect();
    let config = RunConfig {
        peers: options.presences,
        ramp_per_s: f64::from(kith::limits::LOADTEST_RAMP_MAX),
        duration: Duration::ZERO,
        scenario: Scenario::Connect,
        seed: 1,
        shard: Shard { index: 0, count: 1 },
        churn_per_s: 0.0,
        relay_pairs: 0,
        replicate_peers: 0,
        posts_per_s: 0.0,
        in_flight: LOADTEST_HANDSHAKES_IN_FLIGHT,
    };
    let harness = run::setup(&config, &holders).await?;
    let mut tree = trees::loadtest::start(harness.plan.peers).await?;
    let report = run::drive(&harness, &tree.peers, &config, |_| {}).await?;
    let mut hist = Hist::new()?;
    let mut done = 0;
    if report.peers_connected < options.presences {
        tracing::warn!(
            connected = report.peers_connected,
            "not every presence joined; the catch-ups wait for those that did"
        );
    }
    let held = report.peers_connected;
    // Every node lists them before the first catch-up (bounded).
    let spread = Instant::now() + SPREAD_WAIT;
    while Instant::now() < spread && !cluster.nodes.iter().all(|n| online(n) >= Some(held)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..options.catchups {
        let start = Instant::now();
        cluster.restart(fresh, extra)?;
        let node = &cluster.nodes[fresh];
        let until = start + CATCHUP_WAIT;
        while Instant::now() < until {
            if online(node) >= Some(held) {
                hist.record(start.elapsed().as_micros() as u64);
                done += 1;
                break;
            }
            tokio::time::sleep(CATCHUP_POLL).await;
        }
    }
    if let Err(e) = tree.root.shutdown().await {
        tracing::warn!(error = %e, "the bench's peers did not stop cleanly");
    }
    for endpoint in &harness.endpoints {
        endpoint.close(CloseCode::Normal);
    }
    Ok((hist, [done, options.catchups as u64]))
}

/// A node's count of presences (`online` in its status).
fn online(node: &crate::loadtest::spawn::Node) -> Option<u64> {
    client::call(node.dir.path(), &Request::Status)
        .ok()
        .and_then(|s| s["online"].as_u64())
}

/// The report for people.
pub fn text(r: &ClusterReport) -> String {
    let lat = |l: &Option<Latency>| match l {
        Some(l) => format!(
            "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            l.p50, l.p99, l.max
        ),
        None => "not measured".into(),
    };
    format!(
        "presence on {} real switchboard processes (loopback, broadcast period {} ms)\n\
         join convergence (welcome → listed on every node): {} ({} of {} joins; seen by each node: {:?})\n\
         fresh node catch-up of {} presences (process start → all listed): {} ({} of {} runs)\n\
         bench time {:.1} s",
        r.nodes,
        r.broadcast_ms,
        lat(&r.convergence_ms),
        r.joins_converged[0],
        r.joins_converged[1],
        r.joins_seen_by_node,
        r.catchup_presences,
        lat(&r.catchup_ms),
        r.catchups_done[0],
        r.catchups_done[1],
        r.seconds,
    )
}
