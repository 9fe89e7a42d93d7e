//! The store writer's API: how the node handle and the other actors hand ops to the one actor
//! that writes to LMDB ([`crate::daemon::store_writer`]), and wait for them to be durable.
//!
//! Split from the node handle so that the actors that write (rolodex, replicators, connections,
//! switchboard links) depend on this small API and the message type, not on the handle that
//! bundles them.

use ractor::rpc::CallResult;

use crate::daemon::error::NodeError;
use crate::daemon::messages::{IngestReply, StoreWriterMsg};
use crate::feed::FeedError;
use crate::ingest::{Op, OpOutcome};
use crate::limits::CONTROL_TIMEOUT;
use crate::runtime::Slot;

/// Submit ops to the store writer and wait until they are durable.
pub async fn submit(
    writer: &Slot<StoreWriterMsg>,
    ops: Vec<Op>,
) -> Result<Vec<Result<OpOutcome, FeedError>>, NodeError> {
    let actor = writer
        .get()
        .ok_or(NodeError::Unavailable("the store writer"))?;
    match actor
        .call(
            |reply| StoreWriterMsg::Submit(ops, reply),
            Some(CONTROL_TIMEOUT),
        )
        .await
    {
        Ok(CallResult::Success(result)) => Ok(result?),
        Ok(CallResult::Timeout) => Err(NodeError::Timeout("the store writer", CONTROL_TIMEOUT)),
        Ok(CallResult::SenderError) | Err(_) => Err(NodeError::Unavailable("the store writer")),
    }
}

/// Queue ops at the store writer without waiting; the receiver yields the outcome once durable.
/// The writer handles submissions in order, so several may be in flight from one caller.
pub fn submit_queued(writer: &Slot<StoreWriterMsg>, ops: Vec<Op>) -> Result<Pending, NodeError> {
    let actor = writer
        .get()
        .ok_or(NodeError::Unavailable("the store writer"))?;
    let (tx, rx) = ractor::concurrency::oneshot();
    actor
        .cast(StoreWriterMsg::Submit(ops, tx.into()))
        .map_err(|_| NodeError::Unavailable("the store writer"))?;
    Ok(Pending(rx))
}

/// An answer from the store writer still to come.
pub struct Pending(ractor::concurrency::OneshotReceiver<IngestReply>);

impl Pending {
    /// Wait (bounded) for the outcome.
    pub async fn outcome(self) -> Result<Vec<Result<OpOutcome, FeedError>>, NodeError> {
        match tokio::time::timeout(CONTROL_TIMEOUT, self.0).await {
            Ok(Ok(reply)) => Ok(reply?),
            Ok(Err(_)) => Err(NodeError::Unavailable("the store writer")),
            Err(_) => Err(NodeError::Timeout("the store writer", CONTROL_TIMEOUT)),
        }
    }
}
