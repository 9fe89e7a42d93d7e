//! `kith bench replicate`: two real daemon trees in one process replicate a feed over loopback
//! QUIC, beside the ingest rate alone measured in the same run, and the memory one idle peer
//! connection costs.
//!
//! - **Replication.** Node B holds a feed of N entries, written beforehand through the ingest
//!   pipeline; node A follows B (with B's address) and the clock runs from the follow until A's
//!   store holds B's feed up to N. It covers the dial, the hello, the clock exchange, B reading
//!   ranges from LMDB and framing them, and A verifying and committing them.
//! - **Ingest alone.** [`kith::bench::ingest::run`] with the same N: the ceiling replication
//!   cannot beat, since every replicated entry goes through that pipeline.
//! - **Idle connections.** M extra identities, each with its own endpoint (bound first, so the
//!   endpoints' own cost is excluded), dial B and finish the hello; the RSS growth of the process
//!   divided by M is the cost of one idle connection *at both ends*: B's connection actor, its
//!   tasks and quinn state, plus the dialer's quinn state. B's share alone is below it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kith::daemon::peer::{IntroPolicy, ServePolicy};
use kith::feed::{now_ms, Content};
use kith::identity::{FeedId, Identity};
use kith::ingest::{run_batch, Op, OpOutcome};
use kith::limits::INGEST_BATCH_MAX;
use kith::net::hello::{dial_hello, Capabilities, Capability, Hello, NodeRole};
use kith::net::PeerEndpoint;
use kith::rolodex::RolodexChange;
use kith::store::Store;
use serde::Serialize;

use crate::trees::daemon::{self, Daemon, DaemonParts};

/// Idle connections opened to measure the memory of one.
pub const IDLE_CONNECTIONS: usize = 200;
/// How long the replication may take before the benchmark gives up.
const REPLICATION_DEADLINE: Duration = Duration::from_secs(600);
/// How often A's store is polled for progress.
const POLL: Duration = Duration::from_millis(5);
/// Bytes of one page in `/proc/self/statm`.
const PAGE_BYTES: u64 = 4096;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicateReport {
    /// Entries replicated.
    pub entries: usize,
    /// Seconds from the follow until A held them all.
    pub seconds: f64,
    /// Entries replicated per second.
    pub replicate_per_s: f64,
    /// Seconds until A held the first entry (dial, hello, clocks, first frame).
    pub first_entry_seconds: f64,
    /// Entries per second through the ingest pipeline alone, same N, same run.
    pub ingest_per_s: f64,
    /// `replicate_per_s / ingest_per_s`.
    pub replicate_vs_ingest: f64,
    /// RSS growth per idle connection, both ends counted, in bytes.
    pub bytes_per_idle_connection: u64,
    /// Idle connections measured.
    pub idle_connections: usize,
}

/// Run the benchmark with a feed of `entries` entries.
pub async fn run(entries: usize) -> Result<ReplicateReport> {
    let entries = entries.max(1);
    let scratch = |prefix| tempfile::Builder::new().prefix(prefix).tempdir();
    let dir_a = scratch("kith-bench-replicate-a")?;
    let dir_b = scratch("kith-bench-replicate-b")?;
    let b_identity = Arc::new(Identity::create(dir_b.path())?);
    let b_store = Store::open(dir_b.path())?;
    write_feed(&b_store, &b_identity, entries)?;
    let mut b = node(dir_b.path(), b_identity, b_store).await?;
    let mut a = node(
        dir_a.path(),
        Arc::new(Identity::create(dir_a.path())?),
        Store::open(dir_a.path())?,
    )
    .await?;

    let b_id = b.node.identity.id();
    let b_addr = b.peers.endpoint.local_addr()?.to_string();
    let started = Instant::now();
    a.node
        .change(b_id, RolodexChange::Follow { addr: Some(b_addr) })
        .await?;
    let mut first_entry = None;
    loop {
        let held = head(&a, &b_id)?;
        if held > 0 && first_entry.is_none() {
            first_entry = Some(started.elapsed());
        }
        if held >= entries as u64 {
            break;
        }
        if started.elapsed() > REPLICATION_DEADLINE {
            bail!(
                "replication stalled: A holds {held} of {entries} after {REPLICATION_DEADLINE:?}"
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    a.root.shutdown().await?;

    let idle = idle_connection_bytes(&b, IDLE_CONNECTIONS).await;
    b.root.shutdown().await?;
    let bytes_per_idle_connection = idle?;

    let ingest = kith::bench::ingest::run(entries).await?;
    let replicate_per_s = entries as f64 / seconds;
    Ok(ReplicateReport {
        entries,
        seconds,
        replicate_per_s,
        first_entry_seconds: first_entry.unwrap_or_default().as_secs_f64(),
        ingest_per_s: ingest.ingest_per_s,
        replicate_vs_ingest: replicate_per_s / ingest.ingest_per_s,
        bytes_per_idle_connection,
        idle_connections: IDLE_CONNECTIONS,
    })
}

/// The human-readable report: only what this run measured (SSB's figures on the same work are
/// quoted in the README with their date).
pub fn text(r: &ReplicateReport) -> String {
    format!(
        "replicate: {:.0} entries/s ({} entries in {:.2} s over loopback QUIC; first entry after {:.0} ms)\n\
         ingest alone, same run: {:.0} entries/s -> replication runs at {:.0}% of it\n\
         idle connection: {:.1} KiB, both ends ({} connections)",
        r.replicate_per_s,
        r.entries,
        r.seconds,
        r.first_entry_seconds * 1000.0,
        r.ingest_per_s,
        r.replicate_vs_ingest * 100.0,
        r.bytes_per_idle_connection as f64 / 1024.0,
        r.idle_connections,
    )
}

async fn node(dir: &std::path::Path, identity: Arc<Identity>, store: Store) -> Result<Daemon> {
    let endpoint = Arc::new(PeerEndpoint::bind(loopback(), identity.signing_key())?);
    let parts = DaemonParts {
        data_dir: dir.to_path_buf(),
        identity,
        store,
        endpoint,
        serve: ServePolicy::Everyone,
        switchboards: Vec::new(),
        introductions: IntroPolicy::Relay,
        blobs: Default::default(),
        presence_visible_to: Default::default(),
    };
    daemon::start(parts).await
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

fn head(d: &Daemon, feed: &FeedId) -> Result<u64> {
    Ok(d.node.store.read()?.head(feed)?.map_or(0, |h| h.seq))
}

/// Write `count` posts into the own feed through the ingest pipeline, one commit per batch.
fn write_feed(store: &Store, identity: &Identity, count: usize) -> Result<()> {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(INGEST_BATCH_MAX);
        let ops = (done..done + n)
            .map(|i| {
                let text = format!("bench post {i}: about 100 bytes of text to look like a short message, as people write.");
                Op::Publish(Content::Post { text, reply_to: None })
            })
            .collect();
        for outcome in run_batch(store, identity, ops, now_ms())? {
            match outcome {
                Ok(OpOutcome::Appended { .. }) => {}
                other => bail!("writing the feed failed: {other:?}"),
            }
        }
        done += n;
    }
    Ok(())
}

/// RSS growth per idle connection to `target`, both ends counted.
async fn idle_connection_bytes(target: &Daemon, count: usize) -> Result<u64> {
    let addr = target.peers.endpoint.local_addr()?;
    let key = target.node.identity.id().verifying_key()?;
    let endpoints = (0..count)
        .map(|_| PeerEndpoint::bind(loopback(), Identity::generate().signing_key()))
        .collect::<Result<Vec<_>, _>>()?;
    let before = settled_rss().await?;
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Replicate]));
    // Both halves of each connection and its hello stream stay alive until measured.
    let mut held = Vec::with_capacity(count);
    for endpoint in &endpoints {
        let (conn, _) = endpoint
            .dial(addr, key)
            .await
            .context("dialling for the idle-connection measure")?;
        let greeted = dial_hello(&conn, &ours).await?;
        held.push((conn, greeted));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.peers.connections.len() < count {
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} idle connections came up",
                target.peers.connections.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = settled_rss().await?;
    drop(held);
    Ok(after.saturating_sub(before) / count as u64)
}

/// RSS after letting the runtime finish what it was doing.
async fn settled_rss() -> Result<u64> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("/proc/self/statm has no resident field"))?;
    Ok(pages * PAGE_BYTES)
}
