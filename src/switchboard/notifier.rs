//! The switchboard's presence notifier: turns the tracker's diffs into notices for the sessions
//! that watch the ids a diff touches (found through [`Watchers`](crate::switchboard::watchers::Watchers)), so no session ever looks at a
//! diff about someone it does not watch.
//!
//! One permanent worker per node. If it falls behind the tracker's bounded diff broadcast, or
//! when it (re)starts and may have missed diffs, it asks every session to resynchronise: a
//! session then tells its peer the current presence of each id it watches. Notices read the
//! tracker's current view, so a repeated or late notice is harmless.

use std::collections::HashSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;

use crate::identity::FeedId;
use crate::presence::Diff;
use crate::runtime::OwnedTask;
use crate::switchboard::context::SbContext;
use crate::switchboard::messages::SbSessionMsg;
use crate::wire::switchboard::PEERS_TOPIC;

/// Messages to the notifier.
pub enum SbNotifierMsg {
    /// The tracker's diff broadcast closed; the notifier fails so that it is restarted.
    TrackerGone,
}

/// The notifier actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SbNotifier;

/// Its state: the loop reading diffs, aborted with it.
pub struct SbNotifierState {
    _diffs: OwnedTask,
}

impl Actor for SbNotifier {
    type Msg = SbNotifierMsg;
    type State = SbNotifierState;
    type Arguments = SbContext;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let diffs = ctx.tracker.subscribe();
        resync_all(&ctx);
        Ok(SbNotifierState {
            _diffs: OwnedTask::spawn(notify_loop(ctx, diffs, myself)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SbNotifierMsg::TrackerGone => Err("the presence tracker's diffs ended".into()),
        }
    }
}

async fn notify_loop(
    ctx: SbContext,
    mut diffs: broadcast::Receiver<Arc<Diff>>,
    myself: ActorRef<SbNotifierMsg>,
) {
    loop {
        match diffs.recv().await {
            Ok(diff) => notify(&ctx, &diff),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    "presence notifier lagged; resynchronising every session"
                );
                resync_all(&ctx);
            }
            Err(broadcast::error::RecvError::Closed) => {
                let _ = myself.cast(SbNotifierMsg::TrackerGone);
                return;
            }
        }
    }
}

/// Tell each watcher of each peer the diff touches.
fn notify(ctx: &SbContext, diff: &Diff) {
    let touched: HashSet<FeedId> = diff
        .leaves
        .iter()
        .chain(&diff.joins)
        .filter(|p| p.topic() == PEERS_TOPIC)
        // A key is only looked up among the watched ids, and a notice makes each watcher's
        // session re-read that id's presence through its own visibility rules: the bytes
        // suffice, with no curve check per join and leave.
        .filter_map(|p| FeedId::from_printed(p.row.key.as_str()))
        .collect();
    for id in touched {
        for watcher in ctx.watchers.of(&id) {
            if let Some(session) = ctx.sessions.get(&watcher) {
                let _ = session.cast(SbSessionMsg::Notice(id));
            }
        }
    }
}

fn resync_all(ctx: &SbContext) {
    for session in ctx.sessions.iter() {
        let _ = session.cast(SbSessionMsg::Resync);
    }
}
