//! `kith loadtest`: runs the harness (`kith::loadtest`) under its supervision tree
//! ([`crate::trees::loadtest`]) against the given switchboards or against local ones it spawns,
//! shows progress, prints the table, writes the JSON report and the plot; and
//! `kith loadtest merge` for the reports of several shards.
//!
//! Teardown on every exit path: the spawned switchboards are killed when their [`spawn::Node`]s
//! drop (normal end, error, or SIGINT/SIGTERM, which end the run's future early), and the
//! peers' connections are closed with their endpoints before the ghost check.

pub mod args;
pub mod failover;
pub mod plot;
pub mod progress;
pub mod spawn;
pub mod table;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kith::limits::{LOADTEST_MERGE_FILES_MAX, LOADTEST_PROBE_THREADS, LOADTEST_SPAWN_BROADCAST_MS};
use kith::loadtest::client::Link;
use kith::loadtest::lane::Lane;
use kith::loadtest::run::{self, Phase, RunConfig};
use kith::loadtest::{ghosts, Report, Scenario, Shard};
use kith::net::CloseCode;

use self::args::{LoadtestAction, LoadtestArgs};
use self::spawn::LocalCluster;
use crate::cli::signal::shutdown_signal;
use crate::trees;

/// Run `kith loadtest …`.
pub fn main(args: LoadtestArgs) -> Result<()> {
    if let Some(LoadtestAction::Merge {
        reports,
        json,
        plot,
    }) = args.action
    {
        return merge(&reports, json.as_deref(), plot.as_deref());
    }
    let config = RunConfig {
        peers: args.peers,
        ramp_per_s: args.ramp,
        duration: Duration::from_secs(args.duration),
        scenario: args.scenario.parse::<Scenario>()?,
        seed: args.seed,
        shard: args.shard.parse::<Shard>()?,
        churn_per_s: args.churn,
        relay_pairs: args.relay_pairs,
        replicate_peers: args.replicate_peers,
        posts_per_s: args.posts,
        in_flight: args.in_flight,
    };
    config.check()?;
    let link = match args.peer_link.as_str() {
        "lean" => Link::Outer,
        _ => Link::Daemon,
    };
    if config.scenario == Scenario::Failover && args.spawn.is_none() {
        bail!("--scenario failover kills a node: it runs only on a cluster it spawns (--spawn N, N >= 2)");
    }
    let period = args
        .presence_broadcast_ms
        .unwrap_or(LOADTEST_SPAWN_BROADCAST_MS);
    let cluster = match args.spawn {
        Some(n) => {
            let extra = vec!["--presence-broadcast-ms".to_string(), period.to_string()];
            Some(LocalCluster::start(n, &extra)?)
        }
        None => None,
    };
    let targets = match &cluster {
        Some(c) => c.targets(),
        None => args.switchboards.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The relayed pairs' own runtime (kith::loadtest::lane: their round trips do not queue
    // behind the other peers' work in this process).
    let probes = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(LOADTEST_PROBE_THREADS)
        .thread_name("kith-probes")
        .enable_all()
        .build()?;
    let lane = Lane::new(probes.handle().clone());
    let report = runtime.block_on(async {
        tokio::select! {
            report = load(&config, &targets, cluster.as_ref(), link, lane) => report,
            signal = shutdown_signal() => bail!("stopped by {}; the spawned switchboards are killed", signal?),
        }
    });
    // Peers, tasks and endpoints end with the runtime; then the switchboards are killed.
    runtime.shutdown_timeout(Duration::from_secs(2));
    probes.shutdown_timeout(Duration::from_secs(2));
    let pids = cluster.as_ref().map(LocalCluster::pids).unwrap_or_default();
    drop(cluster);
    let mut report = report?;
    report.spawned_pids = pids;
    if args.spawn.is_some() {
        let defaults = kith::presence::options::Options::default();
        report.down_period_ms = Some(
            kith::presence::options::Options::with_periods(
                period,
                defaults.max_silent_periods,
                defaults.permdown_period,
            )
            .down_period,
        );
    }
    output(&report, args.json.as_deref(), args.plot.as_deref())
}

/// One run: setup, tree, ramp and steady phase, teardown of the peers, ghost check.
async fn load(
    config: &RunConfig,
    targets: &[String],
    cluster: Option<&LocalCluster>,
    link: Link,
    lane: Lane,
) -> Result<Report> {
    let harness = run::setup_as(config, targets, link, Some(lane)).await?;
    let mut tree = trees::loadtest::start(harness.plan.peers).await?;
    let shown = progress::start(Arc::clone(&harness.metrics), harness.plan.peers);
    let mut sb_rss = [None; 2];
    let sb_cpu_before = cluster.and_then(LocalCluster::cpu);
    let mut sb_cpu_after = None;
    let mut killed = None;
    let mut clean_watch = None;
    let driven = run::drive(&harness, &tree.peers, config, |phase| match phase {
        Phase::BeforeRamp => sb_rss[0] = cluster.and_then(LocalCluster::rss),
        Phase::Joined => sb_rss[1] = cluster.and_then(LocalCluster::rss),
        Phase::Kill(node) => {
            if let Some(cluster) = cluster {
                if let Err(e) = cluster.kill(node) {
                    tracing::warn!(error = %e, "the failover scenario could not kill its node");
                }
                killed = Some(node);
                clean_watch = Some(failover::watch_presence(cluster, node, &harness));
            }
        }
        Phase::End => sb_cpu_after = cluster.and_then(LocalCluster::cpu),
    })
    .await;
    drop(shown);
    // Peers are still connected: the watch ends when the dead node's presence is gone
    // everywhere, or at its bound.
    let clean = clean_watch.and_then(|w| w.join().ok().flatten());
    if let Err(e) = tree.root.shutdown().await {
        tracing::warn!(error = %e, "the harness's tree did not stop cleanly");
    }
    // Every peer connection closes with its endpoint, whatever the tree managed.
    for endpoint in harness.all_endpoints() {
        endpoint.close(CloseCode::Normal);
    }
    let mut report = driven?;
    report.failover_presence_clean_ms = clean.map(|d| d.as_secs_f64() * 1_000.0);
    let checker = kith::net::PeerEndpoint::bind(
        ([0, 0, 0, 0], 0).into(),
        &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    )?;
    // The killed node is not asked (it is gone); every other node must have forgotten it.
    let alive: Vec<_> = (0..harness.targets.len())
        .filter(|i| Some(*i) != killed)
        .map(|i| harness.targets[i])
        .collect();
    report.ghosts = match ghosts::count(&checker, &alive, harness.ids(), config.seed).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "the ghost check could not run");
            None
        }
    };
    if let ([Some(before), Some(after)], true) = (sb_rss, report.peers_connected > 0) {
        report.switchboard_bytes_per_client =
            Some(after.saturating_sub(before) / report.peers_connected);
    }
    if let (Some(before), Some(after)) = (sb_cpu_before, sb_cpu_after) {
        report.switchboard_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    Ok(report)
}

fn output(report: &Report, json: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = plot {
        plot::draw(report, path)?;
    }
    println!("{}", table::text(report));
    Ok(())
}

fn merge(files: &[std::path::PathBuf], json: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    if files.len() > LOADTEST_MERGE_FILES_MAX {
        bail!("at most {LOADTEST_MERGE_FILES_MAX} reports can be merged at once");
    }
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let report: Report = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a kith loadtest report", file.display()))?;
        reports.push(report);
    }
    let Some(merged) = Report::merge_all(&reports)? else {
        bail!("no report to merge");
    };
    output(&merged, json, plot)
}
