//! The node handle: what a client request can ask of a running daemon, in one place.
//!
//! It bundles the shared pieces (identity, store, rolodex table) with slots for the actors that
//! own writes. The control socket and, later, the web page call these methods; they never touch
//! LMDB for writing themselves.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;

use crate::daemon::events::{Events, NodeEvent};
use crate::daemon::rolodex::RolodexMsg;
use crate::daemon::store_writer::StoreWriterMsg;
use crate::daemon::uplink::status_file::{StatusFile, StatusFileError};
use crate::daemon::uplink::Online;
use crate::feed::{Content, FeedError, MsgId};
use crate::identity::{FeedId, Identity};
use crate::ingest::{IngestError, Op, OpOutcome};
use crate::limits::CONTROL_TIMEOUT;
use crate::rolodex::{Rolodex, RolodexChange, RolodexEntry, RolodexError};
use crate::runtime::Slot;
use crate::store::{Store, StoreError, StoredEntry};
use crate::wire::switchboard::check_status;

/// Why a request to the node failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The entry was refused.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The rolodex change was refused.
    #[error(transparent)]
    Rolodex(#[from] RolodexError),
    /// The write failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A read failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An actor this request needs is not running (it may be restarting).
    #[error("{0} is not running (it may be restarting); try again in a moment")]
    Unavailable(&'static str),
    /// An actor did not answer in time.
    #[error("{0} did not answer within {1:?}; the daemon may be overloaded")]
    Timeout(&'static str, Duration),
    /// The request names something unknown.
    #[error("{0}")]
    NotFound(String),
    /// Dialling a peer failed.
    #[error("{0}")]
    Connect(String),
    /// The status line could not be saved.
    #[error(transparent)]
    Status(#[from] StatusFileError),
}

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
pub struct Pending(ractor::concurrency::OneshotReceiver<crate::daemon::store_writer::IngestReply>);

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

/// A running node, as its clients see it.
#[derive(Clone)]
pub struct Node {
    /// This node's identity.
    pub identity: Arc<Identity>,
    /// The store (reads only; writes go through the writer).
    pub store: Store,
    /// The rolodex table.
    pub rolodex: Rolodex,
    /// The store writer.
    pub writer: Slot<StoreWriterMsg>,
    /// The rolodex actor.
    pub rolodex_actor: Slot<RolodexMsg>,
    /// The node's event broadcast.
    pub events: Events,
    /// Who the switchboards say is online, and this node's status line.
    pub online: Online,
    /// Where the status line is kept across restarts.
    pub status_file: StatusFile,
}

impl Node {
    /// Append a post to the own feed; returns once it is durable.
    pub async fn post(
        &self,
        text: String,
        reply_to: Option<MsgId>,
    ) -> Result<(MsgId, u64), NodeError> {
        let mut outcomes = submit(
            &self.writer,
            vec![Op::Publish(Content::Post { text, reply_to })],
        )
        .await?;
        match outcomes.pop() {
            Some(Ok(OpOutcome::Appended { id, seq, .. })) => Ok((id, seq)),
            Some(Err(e)) => Err(e.into()),
            _ => Err(NodeError::Unavailable("the store writer")),
        }
    }

    /// Change one rolodex entry.
    pub async fn change(
        &self,
        id: FeedId,
        change: RolodexChange,
    ) -> Result<RolodexEntry, NodeError> {
        let actor = self
            .rolodex_actor
            .get()
            .ok_or(NodeError::Unavailable("the rolodex"))?;
        match actor
            .call(
                |reply| RolodexMsg::Change(id, change, reply),
                Some(CONTROL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(result)) => result,
            Ok(CallResult::Timeout) => Err(NodeError::Timeout("the rolodex", CONTROL_TIMEOUT)),
            Ok(CallResult::SenderError) | Err(_) => Err(NodeError::Unavailable("the rolodex")),
        }
    }

    /// Set (or clear) this node's status line; switchboard links announce it.
    pub fn set_status(&self, text: Option<String>) -> Result<(), NodeError> {
        check_status(&text).map_err(NodeError::NotFound)?;
        self.status_file.save(&text)?;
        self.online.set_status(text);
        let _ = self.events.send(NodeEvent::StatusChanged);
        Ok(())
    }

    /// One feed, newest first.
    pub fn feed(&self, id: &FeedId, limit: usize) -> Result<Vec<StoredEntry>, NodeError> {
        Ok(self.store.read()?.feed(id, limit)?)
    }

    /// Posts of the own feed and the followed feeds, newest first.
    pub fn timeline(&self, limit: usize) -> Result<Vec<StoredEntry>, NodeError> {
        let me = self.identity.id();
        let rolodex = &self.rolodex;
        Ok(self.store.read()?.timeline(limit, |author| {
            *author == me || rolodex.is_following(author)
        })?)
    }
}
