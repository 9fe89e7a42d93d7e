//! The store writer: the one actor that writes to LMDB, grouping everything queued into one commit.
//!
//! States: idle, or collecting (a `Flush` is queued behind the submissions). A `Submit` adds ops
//! to the pending batch and, if none is queued, queues a `Flush` to itself; because the mailbox is
//! FIFO, every submission that arrived before the flush joins its batch. The flush runs the ingest
//! pipeline on a blocking thread and replies to each submitter only after the commit is durable.
//! Spawned by the daemon's root supervisor (permanent). If a batch panics, every waiting caller
//! gets an error and the actor crashes, so that its supervisor restarts it from the store.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::actors::Slot;
use crate::events::{Events, NodeEvent};
use crate::feed::{now_ms, FeedError};
use crate::identity::{FeedId, Identity};
use crate::ingest::{run_batch, IngestError, Op, OpOutcome};
use crate::limits::{INGEST_BATCH_MAX, INGEST_QUEUE_MAX};
use crate::rolodex::Rolodex;
use crate::store::Store;

/// The answer to one submission: an outcome per op, or a failure of the whole batch.
pub type IngestReply = Result<Vec<Result<OpOutcome, FeedError>>, IngestError>;

/// Messages to the store writer.
pub enum StoreWriterMsg {
    /// Write these ops; reply once they are durable.
    Submit(Vec<Op>, RpcReplyPort<IngestReply>),
    /// Write everything pending now.
    Flush,
}

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
}

/// The writer's state: the batch being collected.
pub struct StoreWriterState {
    args: StoreWriterArgs,
    pending: Vec<(Vec<Op>, RpcReplyPort<IngestReply>)>,
    pending_ops: usize,
    flush_queued: bool,
}

impl Actor for StoreWriter {
    type Msg = StoreWriterMsg;
    type State = StoreWriterState;
    type Arguments = StoreWriterArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
        args.slot.set(myself);
        Ok(StoreWriterState { args, pending: Vec::new(), pending_ops: 0, flush_queued: false })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            StoreWriterMsg::Submit(ops, reply) => submit(&myself, state, ops, reply),
            StoreWriterMsg::Flush => flush(state).await,
        }
    }
}

fn submit(
    myself: &ActorRef<StoreWriterMsg>,
    state: &mut StoreWriterState,
    ops: Vec<Op>,
    reply: RpcReplyPort<IngestReply>,
) -> Result<(), ActorProcessingErr> {
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

async fn flush(state: &mut StoreWriterState) -> Result<(), ActorProcessingErr> {
    state.flush_queued = false;
    while !state.pending.is_empty() {
        let batch = take_batch(state);
        flush_batch(&state.args, batch).await?;
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

async fn flush_batch(args: &StoreWriterArgs, batch: Vec<(Vec<Op>, RpcReplyPort<IngestReply>)>) -> Result<(), ActorProcessingErr> {
    let mut ops = Vec::with_capacity(batch.iter().map(|(ops, _)| ops.len()).sum());
    let mut ports = Vec::with_capacity(batch.len());
    for (submission, port) in batch {
        ports.push((submission.len(), port));
        ops.extend(submission);
    }
    let (store, identity) = (args.store.clone(), Arc::clone(&args.identity));
    let joined = tokio::task::spawn_blocking(move || run_batch(&store, &identity, ops, now_ms())).await;
    match joined {
        Ok(Ok(outcomes)) => {
            note_progress(args, &outcomes);
            reply_each(ports, outcomes);
            Ok(())
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            for (_, port) in ports {
                let _ = port.send(Err(IngestError::WriterDown(text.clone())));
            }
            Err(e.into())
        }
        Err(panicked) => {
            for (_, port) in ports {
                let _ = port.send(Err(IngestError::WriterDown("the write batch crashed".into())));
            }
            Err(format!("ingest batch panicked: {panicked}").into())
        }
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

fn reply_each(ports: Vec<(usize, RpcReplyPort<IngestReply>)>, outcomes: Vec<Result<OpOutcome, FeedError>>) {
    let mut outcomes = outcomes.into_iter();
    for (len, port) in ports {
        let mine: Vec<_> = outcomes.by_ref().take(len).collect();
        let _ = port.send(Ok(mine));
    }
}
