//! A switchboard's figures for `--metrics`: read from its counters, relay hub, presence tracker,
//! membership and supervision tree at each scrape (nothing is counted twice). No label names a
//! peer or a node: a switchboard keeps counts, never who talked to whom.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::metrics::{label, root_ready, Exposition, Gathered, MetricsSource, ReportFn};
use crate::presence::replica::ReplicaStatus;
use crate::relay::Refusal;
use crate::switchboard::context::SbContext;
use crate::switchboard::intro::RefusalKind;
use crate::wire::switchboard::PEERS_TOPIC;

/// The switchboard's collector; `tree` reports its live supervision tree.
pub fn source(ctx: SbContext, tree: ReportFn) -> MetricsSource {
    Arc::new(move || {
        let (ctx, tree) = (ctx.clone(), Arc::clone(&tree));
        Box::pin(async move {
            let report = tree().await;
            let replicas = cluster_states(&ctx).await;
            let mut e = Exposition::default();
            write(&mut e, &ctx, replicas);
            e.supervision(report.as_ref());
            Gathered {
                text: e.encode(),
                not_ready: root_ready(report.as_ref()),
            }
        })
    })
}

/// The other nodes' incarnations as the presence tracker sees them, counted by state (shard 0:
/// every shard hears every node's heartbeats). `None` if the shard did not answer.
async fn cluster_states(ctx: &SbContext) -> Option<[i64; 3]> {
    let replicas = ctx.tracker.replicas(0).await.ok()?;
    let mut states = [0i64; 3];
    for replica in replicas {
        if replica.r#ref.name.as_str() == ctx.node {
            continue;
        }
        let i = match replica.status {
            ReplicaStatus::Up => 0,
            ReplicaStatus::Down => 1,
            ReplicaStatus::Permdown => 2,
        };
        states[i] += 1;
    }
    Some(states)
}

fn write(e: &mut Exposition, ctx: &SbContext, replicas: Option<[i64; 3]>) {
    let c = &ctx.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let online = i64::try_from(get(&c.connected)).unwrap_or(i64::MAX);
    e.gauge(
        "switchboard_clients_online",
        "peers connected to this node now",
        online,
    );
    e.counter(
        "switchboard_joins",
        "peers admitted since start",
        get(&c.joins),
    );
    e.counters(
        "switchboard_joins_refused",
        "joins refused since start, by reason (invite, busy, other; hello: the hello failed)",
        c.joins_refused()
            .into_iter()
            .map(|(reason, n)| (label("reason", reason), n)),
    );
    e.counter(
        "switchboard_join_guesses_throttled",
        "joins refused unchecked after too many wrong invite codes (part of busy)",
        get(&c.join_guesses_throttled),
    );
    e.counter(
        "switchboard_introductions",
        "introductions made (both sides agreed)",
        get(&c.introductions),
    );
    e.counters(
        "switchboard_introductions_refused",
        "introductions refused, by reason",
        RefusalKind::ALL.iter().map(|k| {
            let n = get(&c.introductions_refused_by[*k as usize]);
            (label("reason", k.name()), n)
        }),
    );
    e.counter(
        "switchboard_presence_notices",
        "presence notices sent to watching clients",
        get(&c.notices),
    );
    let (stats, lost) = (ctx.hub.stats(), ctx.hub.lost());
    e.counter(
        "switchboard_relayed_packets",
        "relayed packets forwarded",
        stats.forwarded_packets,
    );
    e.counter(
        "switchboard_relayed_bytes",
        "relayed bytes forwarded (headers included)",
        stats.forwarded_bytes,
    );
    e.counters(
        "switchboard_relay_refused",
        "relayed packets not forwarded, by reason (lost_closed: the destination had just gone)",
        Refusal::ALL
            .iter()
            .map(|r| (label("reason", r.name()), stats.refused(*r)))
            .chain([(label("reason", "lost_closed"), lost)]),
    );
    e.counter(
        "switchboard_relay_pairs_expired",
        "idle introductions closed to make room for new ones",
        stats.expired_pairs,
    );
    let members = i64::try_from(ctx.members.list().len()).unwrap_or(i64::MAX);
    e.gauge(
        "switchboard_cluster_members",
        "node keys allowed into this cluster",
        members,
    );
    let linked = i64::try_from(ctx.cluster_nodes().len()).unwrap_or(i64::MAX);
    e.gauge(
        "switchboard_cluster_links",
        "other nodes with a presence link to this one now",
        linked,
    );
    e.gauges(
        "switchboard_cluster_nodes",
        "other nodes' incarnations as the presence tracker sees them, by state",
        replicas.into_iter().flat_map(|states| {
            ["up", "down", "permdown"]
                .into_iter()
                .zip(states)
                .map(|(state, n)| (label("state", state), n))
        }),
    );
    e.counter(
        "switchboard_nodes_refused",
        "hellos claiming the switchboard role from a key outside the cluster",
        get(&c.nodes_refused),
    );
    e.counter(
        "switchboard_node_msgs_refused",
        "cluster-node messages dropped because the node had no right to send them",
        get(&c.node_msgs_refused),
    );
    let presences = i64::try_from(ctx.tracker.list(PEERS_TOPIC).len()).unwrap_or(i64::MAX);
    e.gauge(
        "switchboard_presences",
        "peers online in the whole cluster, as this node's presence view lists them",
        presences,
    );
    let h = ctx.endpoint.handshakes();
    e.gauge(
        "handshakes_pending",
        "QUIC handshakes in progress",
        i64::try_from(h.pending).unwrap_or(i64::MAX),
    );
    e.counters(
        "handshakes",
        "QUIC handshakes by outcome",
        [
            ("completed", h.completed),
            ("retried", h.retried),
            ("refused_per_address", h.refused_per_address),
            ("refused_busy", h.refused_busy),
            ("ignored", h.ignored),
            ("timed_out", h.timed_out),
        ]
        .into_iter()
        .map(|(outcome, n)| (label("outcome", outcome), n)),
    );
}
