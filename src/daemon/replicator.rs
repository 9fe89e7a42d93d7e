//! A feed replicator: one per wanted feed (the own feed and each followed one).
//!
//! It is the single door through which entries of its feed enter the store from peers: it
//! queues them at the store writer in order (without waiting for one batch to commit before
//! queueing the next, so verification and commits pipeline), keeps the feed's progress (latest sequence,
//! entries received and refused, last source) in the [`Replicators`] table for `kith status`,
//! and so serialises two peers serving the same feed. Started by the rolodex actor through the
//! replicators dynamic supervisor when a feed becomes wanted, terminated when it stops being
//! wanted (unfollow, block). Permanent: a crashed replicator is restarted, with its progress
//! re-read from the store.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinSet;

use crate::daemon::error::NodeError;
use crate::daemon::messages::ReplicatorMsg;
use crate::daemon::node::Node;
use crate::daemon::peer::Replicators;
use crate::daemon::writer::submit_queued;
use crate::feed::{now_ms, FeedError};
use crate::identity::FeedId;
use crate::ingest::{Op, OpOutcome};
use crate::replicate::WireEntry;

/// The feed replicator actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedReplicator;

/// What a feed replicator starts with.
#[derive(Clone)]
pub struct ReplicatorArgs {
    /// The node.
    pub node: Node,
    /// The feed.
    pub feed: FeedId,
    /// The registry to join.
    pub registry: Replicators<ReplicatorMsg>,
}

/// A replicator's state; dropping it leaves the registry.
pub struct ReplicatorState {
    args: ReplicatorArgs,
    me: ActorRef<ReplicatorMsg>,
    /// Answers still waiting for their commit; aborted with the state.
    waiting: JoinSet<()>,
}

impl Drop for ReplicatorState {
    fn drop(&mut self) {
        self.args.registry.unregister(&self.args.feed, &self.me);
    }
}

impl Actor for FeedReplicator {
    type Msg = ReplicatorMsg;
    type State = ReplicatorState;
    type Arguments = ReplicatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let seq = args
            .node
            .store
            .read()?
            .head(&args.feed)?
            .map_or(0, |h| h.seq);
        args.registry.register(args.feed, myself.clone(), seq);
        Ok(ReplicatorState {
            args,
            me: myself,
            waiting: JoinSet::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ReplicatorMsg::Ingest {
                from,
                entries,
                reply,
            } => ingest(state, from, entries, reply),
        }
        Ok(())
    }
}

/// Queue the entries at the store writer (in order) and answer from a task once durable, so
/// that the next batch of this feed can be queued while this one is verified and committed.
fn ingest(
    state: &mut ReplicatorState,
    from: FeedId,
    entries: Vec<WireEntry>,
    reply: RpcReplyPort<Result<Option<FeedError>, NodeError>>,
) {
    while state.waiting.try_join_next().is_some() {}
    let feed = state.args.feed;
    let ops = entries
        .into_iter()
        .map(|w| Op::from_wire(w, Some(feed)))
        .collect();
    let pending = match submit_queued(&state.args.node.writer, ops) {
        Ok(pending) => pending,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let registry = state.args.registry.clone();
    state.waiting.spawn(async move {
        let verdict = pending
            .outcome()
            .await
            .map(|outcomes| record(&registry, feed, from, outcomes));
        let _ = reply.send(verdict);
    });
}

/// Note progress; the first refusal, if any.
fn record(
    registry: &Replicators<ReplicatorMsg>,
    feed: FeedId,
    from: FeedId,
    outcomes: Vec<Result<OpOutcome, FeedError>>,
) -> Option<FeedError> {
    let mut appended = 0;
    let mut latest = None;
    let mut refused = None;
    for outcome in outcomes {
        match outcome {
            Ok(OpOutcome::Appended { seq, .. }) => {
                appended += 1;
                latest = Some(seq);
            }
            Ok(_) => {}
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    registry.update(&feed, |p| {
        p.received += appended;
        p.refused += u64::from(refused.is_some());
        if let Some(seq) = latest {
            p.seq = p.seq.max(seq);
            p.last_received_ms = Some(now_ms());
            p.last_source = Some(from.to_string());
        }
    });
    refused
}
