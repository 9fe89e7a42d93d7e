//! A daemon's figures for `--metrics`: read at each scrape from its connection table, feed
//! replicators, switchboard links, store and supervision tree (nothing is counted twice).
//!
//! Replication lag per followed feed is the number of entries a peer of this session told this
//! node it holds (the clock it last sent, kept in the store's peer memory) beyond what this node
//! holds: a lower bound on what is missing, 0 once caught up. At most
//! [`METRICS_LAG_FEEDS_MAX`] feeds get a series (the most behind first); the others are
//! counted in `kith_daemon_replication_lag_feeds_omitted` and summed into the total. Feeds not
//! followed get none, so the label's values are bounded by the follows and that cap.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::daemon::context::PeerContext;
use crate::daemon::node::Node;
use crate::identity::FeedId;
use crate::limits::METRICS_LAG_FEEDS_MAX;
use crate::metrics::{label, root_ready, Exposition, Gathered, MetricsSource, ReportFn};
use crate::store::StoreError;

/// The daemon's collector; `tree` reports its live supervision tree.
pub fn source(node: Node, peers: PeerContext, tree: ReportFn) -> MetricsSource {
    Arc::new(move || {
        let (node, peers, tree) = (node.clone(), peers.clone(), Arc::clone(&tree));
        Box::pin(async move {
            let report = tree().await;
            let mut e = Exposition::default();
            let store_ok = write(&mut e, &node, &peers);
            e.gauge(
                "daemon_store_readable",
                "1 if the store could be read for this scrape, 0 if not",
                i64::from(store_ok.is_ok()),
            );
            if let Err(error) = store_ok {
                tracing::warn!(%error, "metrics: the store could not be read");
            }
            e.supervision(report.as_ref());
            Gathered {
                text: e.encode(),
                not_ready: root_ready(report.as_ref()),
            }
        })
    })
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn write(e: &mut Exposition, node: &Node, peers: &PeerContext) -> Result<(), StoreError> {
    let connections = peers.connections.views();
    let relayed = connections.iter().filter(|c| c.relayed).count();
    e.gauges(
        "daemon_connections",
        "peer connections open now, by path",
        [
            (label("path", "direct"), count(connections.len() - relayed)),
            (label("path", "relayed"), count(relayed)),
        ],
    );
    let progress = peers.replicators.progress();
    e.counter(
        "daemon_entries_ingested",
        "entries stored from peers (summed over the feed replicators since each started)",
        progress.iter().map(|(_, p)| p.received).sum(),
    );
    e.counter(
        "daemon_entries_refused",
        "entries from peers refused as invalid (since each feed replicator started)",
        progress.iter().map(|(_, p)| p.refused).sum(),
    );
    e.gauge(
        "daemon_feed_replicators",
        "feed replicators running (own feed and follows)",
        count(progress.len()),
    );
    let links = peers.relays.views();
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    for link in &links {
        let state = serde_json::to_value(link.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        *by_state.entry(state).or_default() += 1;
    }
    e.gauges(
        "daemon_switchboard_links",
        "links to switchboards, by state",
        by_state
            .into_iter()
            .map(|(state, n)| (label("state", state), n)),
    );
    let h = peers.endpoint.handshakes();
    e.gauge(
        "handshakes_pending",
        "QUIC handshakes in progress",
        count(usize::try_from(h.pending).unwrap_or(usize::MAX)),
    );
    let following = node.rolodex.following();
    e.gauge(
        "daemon_following",
        "ids this node follows",
        count(following.len()),
    );
    let lags = lags(node, &following, &connections)?;
    let behind = lags.iter().filter(|(_, lag)| *lag > 0).count();
    let total: u64 = lags.iter().map(|(_, lag)| *lag).sum();
    let omitted = lags.len().saturating_sub(METRICS_LAG_FEEDS_MAX);
    e.gauges(
        "daemon_replication_lag_entries",
        "entries of a followed feed a connected peer holds and this node does not (most behind first)",
        lags.into_iter()
            .take(METRICS_LAG_FEEDS_MAX)
            .map(|(feed, lag)| (label("feed", feed.to_string()), i64::try_from(lag).unwrap_or(i64::MAX))),
    );
    e.gauge(
        "daemon_replication_lag_entries_sum",
        "replication lag summed over every followed feed",
        i64::try_from(total).unwrap_or(i64::MAX),
    );
    e.gauge(
        "daemon_replication_feeds_behind",
        "followed feeds with a lag above 0",
        count(behind),
    );
    e.gauge(
        "daemon_replication_lag_feeds_omitted",
        "followed feeds left out of the per-feed series by its bound",
        count(omitted),
    );
    Ok(())
}

/// Each followed feed's lag, the most behind first (then by feed).
fn lags(
    node: &Node,
    following: &[FeedId],
    connections: &[crate::daemon::peer::ConnView],
) -> Result<Vec<(FeedId, u64)>, StoreError> {
    let read = node.store.read()?;
    let held: BTreeMap<FeedId, u64> = read
        .heads()?
        .into_iter()
        .map(|(feed, head)| (feed, head.seq))
        .collect();
    let mut known: BTreeMap<FeedId, u64> = BTreeMap::new();
    for conn in connections {
        let Ok(peer) = conn.peer.parse::<FeedId>() else {
            continue;
        };
        for (feed, seq) in read.peer_memory(&peer)?.received {
            let best = known.entry(feed).or_default();
            *best = (*best).max(seq);
        }
    }
    let mut out: Vec<(FeedId, u64)> = following
        .iter()
        .map(|feed| {
            let have = held.get(feed).copied().unwrap_or(0);
            let theirs = known.get(feed).copied().unwrap_or(0);
            (*feed, theirs.saturating_sub(have))
        })
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}
