//! Status reports: a serializable tree of supervisors and their children.
//!
//! A supervisor answers a report request by taking a snapshot of its own level (cheap, inside
//! its handler) and then completing it on a separate task that asks each running child
//! supervisor for its report. The supervisor never waits on its children while handling a
//! message, so a busy subtree cannot stall it; a child that does not answer within
//! [`limits::SUPERVISOR_CALL_TIMEOUT`] is reported without its subtree.

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, RpcReplyPort};
use serde::Serialize;

use super::decision::{ChildState, Intensity, Restart, Strategy};
use super::dynamic::DynamicSupervisorMsg;
use super::error::SupervisorError;
use super::spec::{BoxFuture, ChildKind};
use super::supervisor::SupervisorMsg;
use crate::limits;

/// The state of one supervisor and, recursively, its subtree.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorReport {
    /// The supervisor's name from its spec.
    pub name: String,
    /// Its strategy (always one_for_one for a dynamic supervisor).
    pub strategy: Strategy,
    /// Its restart intensity.
    pub intensity: Intensity,
    /// Restarts it has performed (each counted once).
    pub total_restarts: u64,
    /// `Some` for a dynamic supervisor: its child cap.
    pub max_children: Option<usize>,
    /// Its children in start order.
    pub children: Vec<ChildReport>,
}

/// One child in a [`SupervisorReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ChildReport {
    /// The child's id.
    pub id: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
    /// Running, restarting or stopped.
    pub state: ChildState,
    /// Times it was started again after its first start.
    pub restart_count: u32,
    /// For a running child supervisor that answered: its own report.
    pub supervisor: Option<Box<SupervisorReport>>,
}

impl SupervisorReport {
    /// Finds a child by id at this level.
    pub fn child(&self, id: &str) -> Option<&ChildReport> {
        self.children.iter().find(|c| c.id == id)
    }
}

/// One supervisor's level, with the cells of the child supervisors still to ask.
pub(crate) struct ReportSnapshot {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) total_restarts: u64,
    pub(crate) max_children: Option<usize>,
    pub(crate) children: Vec<(ChildReport, Option<ActorCell>)>,
}

impl ReportSnapshot {
    /// Completes the report off the supervisor's task and sends it.
    pub(crate) fn reply_later(self, reply: RpcReplyPort<SupervisorReport>) {
        tokio::spawn(async move {
            let report = self.complete().await;
            let _ = reply.send(report);
        });
    }

    async fn complete(self) -> SupervisorReport {
        let mut children = Vec::with_capacity(self.children.len());
        for (mut child, cell) in self.children {
            if let Some(cell) = cell {
                child.supervisor = report_cell(&cell).await.ok().map(Box::new);
            }
            children.push(child);
        }
        SupervisorReport {
            name: self.name,
            strategy: self.strategy,
            intensity: self.intensity,
            total_restarts: self.total_restarts,
            max_children: self.max_children,
            children,
        }
    }
}

/// The full report of a static supervisor.
pub async fn report(sup: &ActorRef<SupervisorMsg>) -> Result<SupervisorReport, SupervisorError> {
    report_cell(&sup.get_cell()).await
}

/// The full report of any kith supervisor (static or dynamic) given its cell.
pub fn report_cell(
    cell: &ActorCell,
) -> BoxFuture<'static, Result<SupervisorReport, SupervisorError>> {
    let cell = cell.clone();
    Box::pin(async move {
        if cell.is_message_type_of::<SupervisorMsg>() == Some(true) {
            let sup: ActorRef<SupervisorMsg> = cell.into();
            call(
                sup.call(SupervisorMsg::Report, Some(limits::SUPERVISOR_CALL_TIMEOUT))
                    .await,
            )
        } else if cell.is_message_type_of::<DynamicSupervisorMsg>() == Some(true) {
            let sup: ActorRef<DynamicSupervisorMsg> = cell.into();
            let timeout = Some(limits::SUPERVISOR_CALL_TIMEOUT);
            call(sup.call(DynamicSupervisorMsg::Report, timeout).await)
        } else {
            Err(SupervisorError::Call("not a kith supervisor".into()))
        }
    })
}

/// Flattens a ractor call result into ours.
pub(crate) fn call<T, M>(
    result: Result<CallResult<T>, ractor::MessagingErr<M>>,
) -> Result<T, SupervisorError> {
    match result {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(SupervisorError::Call("timed out".into())),
        Ok(CallResult::SenderError) | Err(_) => Err(SupervisorError::NotRunning),
    }
}
