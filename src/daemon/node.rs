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
use crate::daemon::own_seq::OwnFeed;
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
    /// The own feed's marker and resync gate (peers' clocks report how far they hold it).
    pub own: OwnFeed,
    /// The blob files, their serving slots and the refusals peers sent about them.
    pub blobs: crate::daemon::blob::Blobs,
}

impl Node {
    /// Append a post to the own feed; returns once it is durable. A reply names the thread's
    /// root (found from the message answered, which must be held here) and the message answered.
    pub async fn post(
        &self,
        text: String,
        reply_to: Option<MsgId>,
    ) -> Result<(MsgId, u64), NodeError> {
        self.post_with(text, reply_to, Vec::new()).await
    }

    /// [`Node::post`] with the ids the text mentions (see [`crate::feed::mentions`]).
    pub async fn post_with(
        &self,
        text: String,
        reply_to: Option<MsgId>,
        mentions: Vec<FeedId>,
    ) -> Result<(MsgId, u64), NodeError> {
        self.post_attached(text, reply_to, mentions, Vec::new())
            .await
    }

    /// [`Node::post_with`] and attached blobs (already in the blob store): a
    /// [`Content::Attached`] post when there are some, a [`Content::Text`] one otherwise.
    pub async fn post_attached(
        &self,
        text: String,
        reply_to: Option<MsgId>,
        mentions: Vec<FeedId>,
        blobs: Vec<crate::blob::BlobRef>,
    ) -> Result<(MsgId, u64), NodeError> {
        let root = match reply_to {
            Some(parent) => Some(self.store.read()?.thread(&parent)?.root_id),
            None => None,
        };
        if let Some(parent) = reply_to {
            if self.store.read()?.locate(&parent)?.is_none() {
                return Err(NodeError::NotFound(format!(
                    "{parent} is not held here, so its thread is unknown; reply to a message \
                     shown by `kith timeline`, `kith feed` or `kith thread`"
                )));
            }
        }
        if !blobs.is_empty() {
            return self
                .publish(Content::Attached {
                    text,
                    root,
                    branch: reply_to,
                    mentions,
                    blobs,
                })
                .await;
        }
        self.publish(Content::Text {
            text,
            root,
            branch: reply_to,
            mentions,
        })
        .await
    }

    /// Sign `content` as the next entry of the own feed; returns once it is durable.
    pub async fn publish(&self, content: Content) -> Result<(MsgId, u64), NodeError> {
        let mut outcomes = submit(&self.writer, vec![Op::Publish(content)]).await?;
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

    /// A connection with `id` opened or closed now: remember when it was last seen, for a
    /// contact already in the rolodex (a passing stranger is not added). Runs in the background
    /// (callers are connection actors and their drop guards); does nothing outside a runtime.
    pub fn note_seen(&self, id: FeedId) {
        if id == self.identity.id() || self.rolodex.get(&id).is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let node = self.clone();
        runtime.spawn(async move {
            let seen = RolodexChange::Seen(crate::feed::now_ms());
            if let Err(e) = node.change(id, seen).await {
                tracing::debug!(peer = %id.short(), error = %e, "last seen not recorded");
            }
        });
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
