//! The rolodex actor: serialises changes to the rolodex so that each is computed from the latest
//! entry, made durable (with its public follow/unfollow entry in the same commit), then cached.
//!
//! Spawned by the daemon's root supervisor (permanent). Reads never come here: they go to the
//! [`Rolodex`] table directly. Later issues add one rolodex-entry actor per active entry, started
//! by this actor through a dynamic-supervisor handle.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::daemon::error::NodeError;
use crate::daemon::events::{Events, NodeEvent};
use crate::daemon::messages::{RolodexMsg, StoreWriterMsg};
use crate::daemon::writer::submit;
use crate::feed::Content;
use crate::identity::{FeedId, Identity};
use crate::ingest::Op;
use crate::limits::{ROLODEX_ENTRIES_MAX, ROLODEX_FOLLOWS_MAX};
use crate::rolodex::{apply, Rolodex, RolodexChange, RolodexEntry, RolodexError};
use crate::runtime::Slot;

/// The rolodex actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct RolodexActor;

/// What the rolodex actor starts with.
#[derive(Clone)]
pub struct RolodexArgs {
    /// This node's identity.
    pub identity: Arc<Identity>,
    /// The table.
    pub rolodex: Rolodex,
    /// The store writer.
    pub writer: Slot<StoreWriterMsg>,
    /// Where to publish this actor's reference.
    pub slot: Slot<RolodexMsg>,
    /// The node's event broadcast.
    pub events: Events,
    /// Starts the dialer (rolodex entry actor) for a followed id with addresses, if this node
    /// has a network. Given by the tree, so this actor does not know who supervises dialers.
    pub dial: Option<DialFn>,
    /// Starts (`true`) or stops (`false`) the feed replicator of a feed, if this node replicates.
    /// Given by the tree, like `dial`.
    pub replicate: Option<ReplicateFn>,
}

/// Starts or stops a feed's replicator.
pub type ReplicateFn = Arc<dyn Fn(FeedId, bool) + Send + Sync>;

/// Starts dialling an id.
pub type DialFn = Arc<dyn Fn(FeedId) + Send + Sync>;

impl Actor for RolodexActor {
    type Msg = RolodexMsg;
    type State = RolodexArgs;
    type Arguments = RolodexArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.slot.set(myself);
        Ok(args)
    }

    async fn post_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The own feed and every followed feed get a replicator.
        if let Some(replicate) = &state.replicate {
            replicate(state.identity.id(), true);
            for id in state.rolodex.following() {
                replicate(id, true);
            }
        }
        // Every followed entry gets a dialer (it hibernates at once if it has no path: no
        // address and no switchboard): the daemon reconnects by itself.
        if let Some(dial) = &state.dial {
            for entry in state.rolodex.list() {
                if entry.following && !entry.blocked {
                    dial(entry.id);
                }
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RolodexMsg::Change(id, change, reply) => {
                let _ = reply.send(change_entry(state, id, change).await);
            }
        }
        Ok(())
    }
}

async fn change_entry(
    state: &RolodexArgs,
    id: FeedId,
    change: RolodexChange,
) -> Result<RolodexEntry, NodeError> {
    let me = state.identity.id();
    let old = state.rolodex.get(&id);
    if old.is_none() && state.rolodex.len() >= ROLODEX_ENTRIES_MAX {
        return Err(RolodexError::Full(ROLODEX_ENTRIES_MAX).into());
    }
    let was_following = old.as_ref().is_some_and(|e| e.following);
    let follows = matches!(change, RolodexChange::Follow { .. });
    if follows && !was_following && state.rolodex.following().len() >= ROLODEX_FOLLOWS_MAX {
        return Err(RolodexError::TooManyFollows(ROLODEX_FOLLOWS_MAX).into());
    }
    let new = apply(&me, &id, old, &change)?;
    let mut ops = Vec::with_capacity(2);
    // Follows are public (they say whom this node replicates); blocks never are.
    match (was_following, new.following) {
        (false, true) => ops.push(Op::Publish(Content::Follow { id })),
        (true, false) => ops.push(Op::Publish(Content::Unfollow { id })),
        _ => {}
    }
    ops.push(Op::Rolodex(new.clone()));
    for outcome in submit(&state.writer, ops).await? {
        outcome?;
    }
    state.rolodex.cache(new.clone());
    if change == RolodexChange::Block {
        let _ = state.events.send(NodeEvent::Blocked(id));
    }
    let wanted = new.following && !new.blocked;
    if was_following != wanted {
        if let Some(replicate) = &state.replicate {
            replicate(id, wanted);
        }
    }
    if was_following != new.following || change == RolodexChange::Unblock {
        let _ = state.events.send(NodeEvent::WantsChanged);
    }
    if new.following {
        if let Some(dial) = &state.dial {
            dial(id);
        }
    }
    Ok(new)
}
