//! The store writer: the one actor that writes to LMDB, grouping everything queued into one commit.
//!
//! States: idle, or collecting (a `Flush` is queued behind the submissions). A `Submit` adds ops
//! to the pending batch and, if none is queued, queues a `Flush` to itself; because the mailbox is
//! FIFO, every submission that arrived before the flush joins its batch. The flush cuts the batch
//! into parts and queues them to the **verifiers** ([`crate::ingest::Verifiers`], one thread per
//! core), then hands the batch to the **committer**, a thread this actor owns that writes batches
//! in order, one LMDB transaction each, applying each part as soon as it is verified (in batch
//! order, [`crate::ingest::commit_parts`]), and replies to each submitter only after its commit is
//! durable. So every core verifies while the committer writes, within a batch and across batches
//! (batch N+1 is verified while batch N commits); the hand-off queue holds one batch, which is
//! the backpressure. A part whose verifier crashed fails its whole batch (nothing written) and
//! the actor, as a failed commit does.
//! Spawned by the daemon's root supervisor (permanent). A batch refused because the disk (or the
//! LMDB map) is full wrote nothing and leaves the store intact: its callers get the named error
//! ("disk full: free space and the store writer resumes"), the actor stays up, and the next
//! batch simply tries again, so writes resume once space is freed. Any other failure or panic
//! fails every waiting caller and crashes the actor, so that its supervisor restarts it.
//! After a commit that appended to the own feed, the own-feed marker is updated
//! ([`crate::daemon::own_seq`]); while the own feed is being fetched back from followers
//! (`--resync-own-feed`), submissions that would append to it are refused.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;

use crate::daemon::events::{Events, NodeEvent};
use crate::daemon::messages::{IngestReply, StoreWriterMsg};
use crate::daemon::own_seq::OwnFeed;
use crate::feed::{now_ms, FeedError};
use crate::identity::{FeedId, Identity};
use crate::ingest::{commit_parts, IngestError, Op, OpOutcome, Verifiers, Verifying};
use crate::limits::{INGEST_BATCH_MAX, INGEST_QUEUE_MAX};
use crate::rolodex::Rolodex;
use crate::runtime::Slot;
use crate::store::{Store, StoreError};

/// The store writer actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreWriter;

/// What the store writer starts with.
#[derive(Clone)]
pub struct StoreWriterArgs {
    /// The store.
    pub store: Store,
    /// This node's identity, to sign its own entries.
    pub identity: Arc<Identity>,
    /// The rolodex table, to record replication progress.
    pub rolodex: Rolodex,
    /// Where to publish this actor's reference.
    pub slot: Slot<StoreWriterMsg>,
    /// Where to announce appended entries.
    pub events: Events,
    /// The own feed's marker and resync gate.
    pub own: OwnFeed,
}

/// The writer's state: the batch being collected, and the committer it hands batches to.
pub struct StoreWriterState {
    pending: Vec<(Vec<Op>, RpcReplyPort<IngestReply>)>,
    pending_ops: usize,
    flush_queued: bool,
    verifiers: Verifiers,
    committer: mpsc::Sender<Prepared>,
    store: Store,
    own: OwnFeed,
}

type Ports = Vec<(usize, RpcReplyPort<IngestReply>)>;

/// A batch being verified, on its way to the committer, with whom to answer.
struct Prepared {
    batch: Verifying,
    ports: Ports,
    /// Fails the actor if the commit fails, so that the supervisor restarts it.
    failed: ActorRef<StoreWriterMsg>,
}

impl Actor for StoreWriter {
    type Msg = StoreWriterMsg;
    type State = StoreWriterState;
    type Arguments = StoreWriterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let verifiers = Verifiers::per_core()?;
        let committer = spawn_committer(args.clone())?;
        args.slot.set(myself);
        Ok(StoreWriterState {
            pending: Vec::new(),
            pending_ops: 0,
            flush_queued: false,
            verifiers,
            committer,
            store: args.store.clone(),
            own: args.own.clone(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StoreWriterMsg::Submit(ops, reply) => submit(&myself, state, ops, reply),
            StoreWriterMsg::Flush => flush(&myself, state).await,
            StoreWriterMsg::CommitFailed(reason) => Err(reason.into()),
        }
    }
}

fn submit(
    myself: &ActorRef<StoreWriterMsg>,
    state: &mut StoreWriterState,
    ops: Vec<Op>,
    reply: RpcReplyPort<IngestReply>,
) -> Result<(), ActorProcessingErr> {
    if ops.iter().any(|op| matches!(op, Op::Publish(_))) {
        if let Err(e) = state.own.gate(&state.store) {
            let _ = reply.send(Err(e));
            return Ok(());
        }
    }
    if state.pending_ops + ops.len() > INGEST_QUEUE_MAX {
        let _ = reply.send(Err(IngestError::Busy(state.pending_ops)));
        return Ok(());
    }
    state.pending_ops += ops.len();
    state.pending.push((ops, reply));
    if !state.flush_queued {
        state.flush_queued = true;
        myself.cast(StoreWriterMsg::Flush)?;
    }
    Ok(())
}

async fn flush(
    myself: &ActorRef<StoreWriterMsg>,
    state: &mut StoreWriterState,
) -> Result<(), ActorProcessingErr> {
    state.flush_queued = false;
    while !state.pending.is_empty() {
        let batch = take_batch(state);
        let Some(prepared) = prepare_batch(&state.verifiers, batch, myself.clone())? else {
            continue;
        };
        // Waits while the committer is busy with the previous batch and one more is queued.
        if state.committer.send(prepared).await.is_err() {
            return Err("the committer thread is gone".into());
        }
    }
    Ok(())
}

/// Take submissions from the front of the queue up to [`INGEST_BATCH_MAX`] ops (at least one).
fn take_batch(state: &mut StoreWriterState) -> Vec<(Vec<Op>, RpcReplyPort<IngestReply>)> {
    let mut ops = 0;
    let mut count = 0;
    for (submission, _) in &state.pending {
        if count > 0 && ops + submission.len() > INGEST_BATCH_MAX {
            break;
        }
        ops += submission.len();
        count += 1;
    }
    state.pending_ops -= ops;
    state.pending.drain(..count).collect()
}

/// Queue the batch's parts to the verifiers. A full queue answers every submitter "busy"
/// (`None`); verifiers that are gone fail them and the actor, so that its supervisor restarts it.
fn prepare_batch(
    verifiers: &Verifiers,
    batch: Vec<(Vec<Op>, RpcReplyPort<IngestReply>)>,
    failed: ActorRef<StoreWriterMsg>,
) -> Result<Option<Prepared>, ActorProcessingErr> {
    let mut ops = Vec::with_capacity(batch.iter().map(|(ops, _)| ops.len()).sum());
    let mut ports = Vec::with_capacity(batch.len());
    for (submission, port) in batch {
        ports.push((submission.len(), port));
        ops.extend(submission);
    }
    match verifiers.verify(ops, now_ms()) {
        Ok(batch) => Ok(Some(Prepared {
            batch,
            ports,
            failed,
        })),
        Err(IngestError::Busy(waiting)) => {
            for (_, port) in ports {
                let _ = port.send(Err(IngestError::Busy(waiting)));
            }
            Ok(None)
        }
        Err(e) => {
            fail_all(ports, &e.to_string());
            Err(format!("ingest verification: {e}").into())
        }
    }
}

/// Start the committer thread: it commits batches in order until its queue closes.
fn spawn_committer(args: StoreWriterArgs) -> Result<mpsc::Sender<Prepared>, std::io::Error> {
    let (tx, mut rx) = mpsc::channel::<Prepared>(1);
    std::thread::Builder::new()
        .name("kith-committer".into())
        .spawn(move || {
            while let Some(prepared) = rx.blocking_recv() {
                commit_batch(&args, prepared);
            }
        })?;
    Ok(tx)
}

fn commit_batch(args: &StoreWriterArgs, prepared: Prepared) {
    let Prepared {
        batch,
        ports,
        failed,
    } = prepared;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commit_parts(&args.store, &args.identity, batch.into_parts(), now_ms())
    }));
    match result {
        Ok(Ok(outcomes)) => {
            let me = args.own.id();
            let own = outcomes.iter().filter_map(|outcome| match outcome {
                Ok(OpOutcome::Appended { author, seq, .. }) if *author == me => Some(*seq),
                _ => None,
            });
            if let Some(seq) = own.max() {
                args.own.appended(seq);
            }
            note_progress(args, &outcomes);
            reply_each(ports, outcomes);
        }
        Ok(Err(IngestError::Store(e))) if e.is_full() => {
            tracing::warn!(error = %e, "a write batch was refused; the store writer keeps running");
            for (_, port) in ports {
                let _ = port.send(Err(IngestError::Store(match e {
                    StoreError::MapFull(bytes) => StoreError::MapFull(bytes),
                    _ => StoreError::DiskFull,
                })));
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a write batch failed; the store writer restarts");
            fail_all(ports, &e.to_string());
            let _ = failed.cast(StoreWriterMsg::CommitFailed(e.to_string()));
        }
        Err(_) => {
            fail_all(ports, "the write batch crashed");
            let _ = failed.cast(StoreWriterMsg::CommitFailed(
                "the write batch panicked".into(),
            ));
        }
    }
}

fn fail_all(ports: Ports, reason: &str) {
    for (_, port) in ports {
        let _ = port.send(Err(IngestError::WriterDown(reason.to_string())));
    }
}

fn note_progress(args: &StoreWriterArgs, outcomes: &[Result<OpOutcome, FeedError>]) {
    // Only the last append of each feed in the batch is announced: receivers read ranges.
    let mut latest: std::collections::BTreeMap<FeedId, u64> = std::collections::BTreeMap::new();
    for outcome in outcomes {
        if let Ok(OpOutcome::Appended { author, seq, .. }) = outcome {
            args.rolodex.note_seq(author, *seq);
            let held = latest.entry(*author).or_insert(0);
            *held = (*held).max(*seq);
        }
    }
    for (feed, seq) in latest {
        // No receiver is fine: nobody is connected.
        let _ = args.events.send(NodeEvent::Appended { feed, seq });
    }
}

fn reply_each(ports: Ports, outcomes: Vec<Result<OpOutcome, FeedError>>) {
    let mut outcomes = outcomes.into_iter();
    for (len, port) in ports {
        let mine: Vec<_> = outcomes.by_ref().take(len).collect();
        let _ = port.send(Ok(mine));
    }
}
