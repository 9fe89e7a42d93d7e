//! The dynamic supervisor actor: OTP `DynamicSupervisor` (simple_one_for_one) over ractor.
//!
//! It starts with no children; workers add them at run time through a
//! [`DynamicSupervisorHandle`]. Children are restarted one_for_one under the supervisor's own
//! intensity; a child that is not restarted (temporary, or transient after a normal exit) is
//! removed. At most `max_children` are held. A child that fails to start is reported to the
//! caller and never added (unlike ractor-supervisor, a bad spec cannot melt the supervisor down).

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::children::ChildTable;
use super::decision::Core;
use super::error::SupervisorError;
use super::handle::DynamicSupervisorHandle;
use super::report::SupervisorReport;
use super::spec::{ChildSpec, DynamicSpec};

/// Messages a dynamic supervisor accepts (normally sent through a [`DynamicSupervisorHandle`]).
pub enum DynamicSupervisorMsg {
    /// Start a child; reply with its cell.
    StartChild(ChildSpec, RpcReplyPort<Result<ActorCell, SupervisorError>>),
    /// Stop a child within its deadline and remove it.
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// Reply with the number of children.
    Count(RpcReplyPort<usize>),
    /// Reply with the ids of the children, in start order.
    WhichChildren(RpcReplyPort<Vec<String>>),
    /// Reply with the supervisor's report, including nested supervisors.
    Report(RpcReplyPort<SupervisorReport>),
}

/// The dynamic supervisor actor (`Arguments` = its spec and the handle to fill in).
#[derive(Debug, Clone, Copy, Default)]
pub struct DynamicSupervisor;

/// A dynamic supervisor's state.
pub struct DynamicSupervisorState {
    spec: DynamicSpec,
    handle: DynamicSupervisorHandle,
    children: ChildTable,
}

impl DynamicSupervisorState {
    async fn start_child(
        &mut self,
        sup: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, SupervisorError> {
        if self.children.len() >= self.spec.max_children {
            return Err(SupervisorError::MaxChildren {
                max: self.spec.max_children,
            });
        }
        let id = spec.id.clone();
        self.children.add(spec)?;
        let started = self.children.start(&id, sup).await;
        if started.is_err() {
            let _ = self.children.terminate(&id).await;
        }
        started
    }
}

impl Actor for DynamicSupervisor {
    type Msg = DynamicSupervisorMsg;
    type State = DynamicSupervisorState;
    type Arguments = (DynamicSpec, DynamicSupervisorHandle);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (spec, handle): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        handle.set(myself);
        tracing::debug!(supervisor = %spec.name, "started");
        Ok(DynamicSupervisorState {
            children: ChildTable::new(Core::dynamic(spec.intensity)),
            spec,
            handle,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DynamicSupervisorMsg::StartChild(spec, reply) => {
                let _ = reply.send(state.start_child(&myself.get_cell(), spec).await);
            }
            DynamicSupervisorMsg::TerminateChild(id, reply) => {
                let _ = reply.send(state.children.terminate(&id).await);
            }
            DynamicSupervisorMsg::Count(reply) => {
                let _ = reply.send(state.children.len());
            }
            DynamicSupervisorMsg::WhichChildren(reply) => {
                let ids = state.children.core().children();
                let _ = reply.send(ids.map(|c| c.id.clone()).collect());
            }
            DynamicSupervisorMsg::Report(reply) => {
                let max = Some(state.spec.max_children);
                state
                    .children
                    .report_snapshot(&state.spec.name, max)
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
        let result = state.children.on_event(&myself.get_cell(), event).await;
        result.map_err(|reason| {
            state.handle.clear(&myself);
            format!("dynamic supervisor '{}': {reason}", state.spec.name).into()
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.handle.clear(&myself);
        state.children.stop_all().await;
        tracing::debug!(supervisor = %state.spec.name, "stopped");
        Ok(())
    }
}
