//! A root supervisor whose exit can be awaited with its cause, so the daemon can exit non-zero
//! when its tree gives up.
//!
//! ractor reports an actor's exit reason only to its parent, so the root supervisor is linked
//! to a tiny [`RootWatcher`] actor that records that reason and then stops. The watcher does
//! nothing else; it holds no name.

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::sync::watch;

use super::error::SupervisorError;
use super::spec::SupervisorSpec;
use super::supervisor::{Supervisor, SupervisorMsg};

/// How a root supervisor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootExit {
    /// It was stopped (e.g. by [`Supervisor::shutdown`]).
    Stopped,
    /// It failed: restart intensity exceeded somewhere it could not be absorbed, or it was
    /// killed. The daemon should exit non-zero.
    Escalated(String),
}

/// A running root supervisor and a way to learn how it ended.
#[derive(Debug, Clone)]
pub struct RootSupervisor {
    actor: ActorRef<SupervisorMsg>,
    exit: watch::Receiver<Option<RootExit>>,
}

impl RootSupervisor {
    /// Starts a root supervisor and its children.
    pub async fn start(spec: SupervisorSpec) -> Result<Self, SpawnErr> {
        let (tx, rx) = watch::channel(None);
        let (watcher, _join) = Actor::spawn(None, RootWatcher, tx).await?;
        match Supervisor::spawn_linked(None, Supervisor, spec, watcher.get_cell()).await {
            Ok((actor, _join)) => Ok(Self { actor, exit: rx }),
            Err(e) => {
                watcher.stop(None);
                Err(e)
            }
        }
    }

    /// The root supervisor actor (for [`super::report`] and [`Supervisor::shutdown`]).
    pub fn actor(&self) -> &ActorRef<SupervisorMsg> {
        &self.actor
    }

    /// How it ended, if it has.
    pub fn exit(&self) -> Option<RootExit> {
        self.exit.borrow().clone()
    }

    /// Waits until it ends and says how.
    pub async fn wait(&mut self) -> RootExit {
        match self.exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().unwrap_or(RootExit::Stopped),
            // The watcher is gone without a word: it can only have been killed.
            Err(_) => RootExit::Escalated("root watcher vanished".into()),
        }
    }

    /// Ordered shutdown of the whole tree; returns how it ended.
    pub async fn shutdown(&mut self) -> Result<RootExit, SupervisorError> {
        Supervisor::shutdown(&self.actor).await?;
        Ok(self.wait().await)
    }
}

/// Parent of a root supervisor; records its exit. `Arguments` = where to record it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RootWatcher;

impl Actor for RootWatcher {
    type Msg = ();
    type State = watch::Sender<Option<RootExit>>;
    type Arguments = watch::Sender<Option<RootExit>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let exit = match event {
            SupervisionEvent::ActorTerminated(_, _, Some(reason)) if reason == "killed" => {
                RootExit::Escalated(reason)
            }
            SupervisionEvent::ActorTerminated(..) => RootExit::Stopped,
            SupervisionEvent::ActorFailed(_, err) => RootExit::Escalated(err.to_string()),
            _ => return Ok(()),
        };
        tx.send_replace(Some(exit));
        myself.stop(None);
        Ok(())
    }
}
