//! The node handle: what a client request can ask of a running daemon, in one place.
//!
//! It bundles the shared pieces (identity, store, rolodex table) with slots for the actors that
//! own writes. The control socket and, later, the web page call these methods; they never touch
//! LMDB for writing themselves. Writes go through [`crate::daemon::writer`]; the error type is
//! [`crate::daemon::error::NodeError`].

use std::sync::Arc;

use ractor::rpc::CallResult;

use crate::daemon::error::NodeError;
use crate::daemon::events::{Events, NodeEvent};
use crate::daemon::messages::{RolodexMsg, StoreWriterMsg};
use crate::daemon::uplink::status_file::StatusFile;
use crate::daemon::uplink::Online;
use crate::daemon::writer::submit;
use crate::feed::{Content, MsgId};
use crate::identity::{FeedId, Identity};
use crate::ingest::{Op, OpOutcome};
use crate::limits::CONTROL_TIMEOUT;
use crate::rolodex::{Rolodex, RolodexChange, RolodexEntry};
use crate::runtime::Slot;
use crate::store::{Store, StoredEntry};
use crate::wire::switchboard::check_status;

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
