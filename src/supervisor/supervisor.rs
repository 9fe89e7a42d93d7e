//! The static supervisor actor: OTP `supervisor` over ractor.
//!
//! - `pre_start` starts the children in order, each linked to this actor; if one fails, the
//!   ones already started are stopped in reverse order and the spawn fails (OTP `start_link`).
//! - `handle_supervisor_evt` feeds child exits to the [`Core`] and carries out its decision
//!   (always overridden: ractor's default would stop this actor on any child exit).
//! - On escalation it stops its children in reverse order, then returns `Err`, so its parent
//!   receives `ActorFailed` and applies its own strategy.
//! - A graceful stop (e.g. [`Supervisor::shutdown`]) runs `post_stop`, which stops the children
//!   in reverse start order, each within its shutdown deadline, before the actor is gone.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};
use tokio::task::JoinHandle;

use super::children::ChildTable;
use super::decision::Core;
use super::error::SupervisorError;
use super::report::SupervisorReport;
use super::spec::SupervisorSpec;

/// Messages a static supervisor accepts.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Reply with the supervisor's report, including nested supervisors.
    Report(RpcReplyPort<SupervisorReport>),
}

/// The static supervisor actor (`Arguments` = its [`SupervisorSpec`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Supervisor;

/// A static supervisor's state.
pub struct SupervisorState {
    name: String,
    children: ChildTable,
}

impl Supervisor {
    /// Starts a root supervisor (no parent) and all its children.
    pub async fn start(
        spec: SupervisorSpec,
    ) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
        Actor::spawn(None, Supervisor, spec).await
    }

    /// Stops the supervisor in order: children in reverse start order, each within its
    /// deadline, then the supervisor. Returns once it has stopped.
    pub async fn shutdown(sup: &ActorRef<SupervisorMsg>) -> Result<(), SupervisorError> {
        sup.stop_and_wait(Some("shutdown".to_owned()), None)
            .await
            .map_err(|_| SupervisorError::NotRunning)
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        spec: SupervisorSpec,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut children = ChildTable::new(Core::new(spec.strategy, spec.intensity));
        for child in spec.children {
            children.add(child)?;
        }
        children.start_all(&myself.get_cell()).await?;
        tracing::debug!(supervisor = %spec.name, "started");
        Ok(SupervisorState {
            name: spec.name,
            children,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Report(reply) => {
                state
                    .children
                    .report_snapshot(&state.name, None)
                    .reply_later(reply);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state
            .children
            .on_event(&myself.get_cell(), event)
            .await
            .map_err(|reason| format!("supervisor '{}': {reason}", state.name).into())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.children.stop_all().await;
        tracing::debug!(supervisor = %state.name, "stopped");
        Ok(())
    }
}
