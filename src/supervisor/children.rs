//! The runtime side of a supervisor's children, shared by the static and dynamic supervisors:
//! the live cells behind the [`Core`]'s ids, starting and stopping them, and carrying out the
//! core's decisions.
//!
//! Exits the supervisor causes itself (stopping a child for a restart, terminate_child or
//! shutdown) are never mistaken for crashes: a child's `ActorId` is forgotten *before* it is
//! stopped, so its exit event matches no child and is ignored. The same rule ignores late events
//! from an earlier incarnation of a restarted child.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{ActorCell, ActorId, SupervisionEvent};

use super::decision::{ChildState, Core, Decision, ExitReason, RestartPlan};
use super::error::SupervisorError;
use super::report::{ChildReport, ReportSnapshot};
use super::spec::{ChildKind, ChildSpec};
use crate::limits;

/// The reason a supervisor gives the children it stops.
const SHUTDOWN_REASON: &str = "shutdown";

/// A child's spec and, while it runs, its cell.
struct Slot {
    spec: ChildSpec,
    cell: Option<ActorCell>,
}

/// The children of one supervisor: decision core plus live cells.
pub(crate) struct ChildTable {
    core: Core,
    slots: HashMap<String, Slot>,
    by_actor: HashMap<ActorId, String>,
}

impl ChildTable {
    pub(crate) fn new(core: Core) -> Self {
        Self {
            core,
            slots: HashMap::new(),
            by_actor: HashMap::new(),
        }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn len(&self) -> usize {
        self.core.len()
    }

    /// Adds a child (not started).
    pub(crate) fn add(&mut self, spec: ChildSpec) -> Result<(), SupervisorError> {
        self.core
            .add_child(&spec.id, spec.restart)
            .map_err(|_| SupervisorError::DuplicateId(spec.id.clone()))?;
        self.slots
            .insert(spec.id.clone(), Slot { spec, cell: None });
        Ok(())
    }

    /// Starts one child linked to `sup`.
    pub(crate) async fn start(
        &mut self,
        id: &str,
        sup: &ActorCell,
    ) -> Result<ActorCell, SupervisorError> {
        let Some(slot) = self.slots.get_mut(id) else {
            return Err(SupervisorError::UnknownChild(id.to_owned()));
        };
        let cell =
            (slot.spec.start)(sup.clone())
                .await
                .map_err(|source| SupervisorError::Start {
                    id: id.to_owned(),
                    source,
                })?;
        slot.cell = Some(cell.clone());
        self.by_actor.insert(cell.get_id(), id.to_owned());
        self.core.child_started(id);
        Ok(cell)
    }

    /// Starts every child in order; on failure stops the started ones in reverse order.
    pub(crate) async fn start_all(&mut self, sup: &ActorCell) -> Result<(), SupervisorError> {
        let ids: Vec<String> = self.core.children().map(|c| c.id.clone()).collect();
        for id in ids {
            if let Err(e) = self.start(&id, sup).await {
                self.stop_all().await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stops one child within its deadline, leaving it in the list as stopped.
    pub(crate) async fn stop(&mut self, id: &str) {
        self.core.child_stopped(id);
        self.halt(id).await;
    }

    /// Stops one child within its deadline without changing its state in the core (during a
    /// restart it stays `Restarting`). Its `ActorId` is forgotten first, so its exit is ignored.
    async fn halt(&mut self, id: &str) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let Some(cell) = slot.cell.take() else {
            return;
        };
        self.by_actor.remove(&cell.get_id());
        stop_within(&cell, slot.spec.shutdown).await;
    }

    /// Stops and removes one child.
    pub(crate) async fn terminate(&mut self, id: &str) -> Result<(), SupervisorError> {
        if !self.slots.contains_key(id) {
            return Err(SupervisorError::UnknownChild(id.to_owned()));
        }
        self.stop(id).await;
        self.slots.remove(id);
        self.core.remove_child(id);
        Ok(())
    }

    /// Stops every running child in reverse start order, each within its deadline.
    pub(crate) async fn stop_all(&mut self) {
        let ids: Vec<String> = self.core.children().map(|c| c.id.clone()).collect();
        for id in ids.iter().rev() {
            self.stop(id).await;
        }
    }

    /// Reacts to a supervision event. Returns `Err(reason)` when the supervisor must escalate;
    /// its children are already stopped then.
    pub(crate) async fn on_event(
        &mut self,
        sup: &ActorCell,
        event: SupervisionEvent,
    ) -> Result<(), String> {
        let Some((actor, reason)) = exit_of(&event) else {
            return Ok(());
        };
        let Some(id) = self.by_actor.remove(&actor) else {
            return Ok(()); // an exit we caused, or from an earlier incarnation
        };
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.cell = None;
        }
        // A crash is news (OTP's crash report); a normal exit or an orderly shutdown is not.
        match &reason {
            ExitReason::Abnormal(why) => {
                tracing::warn!(child = %id, reason = %why, "child exited abnormally")
            }
            _ => tracing::debug!(child = %id, %reason, "child exited"),
        }
        self.on_exit(sup, id, reason).await
    }

    async fn on_exit(
        &mut self,
        sup: &ActorCell,
        id: String,
        reason: ExitReason,
    ) -> Result<(), String> {
        let mut pending = Some((id, reason));
        while let Some((id, reason)) = pending.take() {
            match self.core.child_exited(&id, &reason, now()) {
                Decision::Ignore | Decision::Keep => {}
                Decision::Remove => {
                    self.slots.remove(&id);
                }
                Decision::Restart(plan) => {
                    if let Err((failed, why)) = self.apply(plan, sup).await {
                        tracing::warn!(child = %failed, %why, "restart failed");
                        pending = Some((failed, ExitReason::Abnormal(why)));
                    }
                }
                Decision::Escalate { reason } => {
                    tracing::error!(%reason, "supervisor gives up");
                    self.stop_all().await;
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    /// Carries out a restart plan: stop, drop temporaries, start in order.
    async fn apply(&mut self, plan: RestartPlan, sup: &ActorCell) -> Result<(), (String, String)> {
        for id in &plan.stop {
            self.halt(id).await;
        }
        for id in &plan.remove {
            self.slots.remove(id);
        }
        for id in &plan.start {
            if let Err(e) = self.start(id, sup).await {
                // The core still sees this child (and any not yet started) as restarting.
                return Err((id.clone(), e.to_string()));
            }
        }
        Ok(())
    }

    /// This level of the report, with the cells of running child supervisors to recurse into.
    pub(crate) fn snapshot(&self) -> Vec<(ChildReport, Option<ActorCell>)> {
        self.core
            .children()
            .filter_map(|c| {
                let slot = self.slots.get(&c.id)?;
                let report = ChildReport {
                    id: c.id.clone(),
                    kind: slot.spec.kind,
                    restart: c.restart,
                    state: c.state,
                    restart_count: c.restart_count,
                    supervisor: None,
                };
                let nested = (slot.spec.kind == ChildKind::Supervisor
                    && c.state == ChildState::Running)
                    .then(|| slot.cell.clone())
                    .flatten();
                Some((report, nested))
            })
            .collect()
    }

    /// A report snapshot of this supervisor.
    pub(crate) fn report_snapshot(
        &self,
        name: &str,
        max_children: Option<usize>,
    ) -> ReportSnapshot {
        ReportSnapshot {
            name: name.to_owned(),
            strategy: self.core.strategy(),
            intensity: self.core.intensity(),
            total_restarts: self.core.total_restarts(),
            max_children,
            children: self.snapshot(),
        }
    }
}

/// Stops `cell` gracefully; kills it if it has not stopped after `deadline`.
pub(crate) async fn stop_within(cell: &ActorCell, deadline: Duration) {
    cell.stop(Some(SHUTDOWN_REASON.to_owned()));
    if cell.wait(Some(deadline)).await.is_ok() {
        return;
    }
    tracing::warn!(actor = %cell.get_id(), ?deadline, "child ignored stop; killing it");
    cell.kill();
    if cell.wait(Some(limits::SUPERVISOR_KILL_WAIT)).await.is_err() {
        tracing::error!(actor = %cell.get_id(), "child did not die after kill; abandoning it");
    }
}

/// The child and its exit reason, for the events that mean a child exited.
///
/// Mapping from ractor: `ActorFailed` (an `Err` from a handler, or a panic) is abnormal.
/// `ActorTerminated` is a graceful stop: no reason or `"normal"` is normal, `"shutdown"` (or
/// `"shutdown: ..."`) is a shutdown, `"killed"` (ractor's Kill signal) and
/// `"actor_task_cancelled"` are abnormal, and any other reason is a normal exit that
/// describes itself.
pub(crate) fn exit_of(event: &SupervisionEvent) -> Option<(ActorId, ExitReason)> {
    match event {
        SupervisionEvent::ActorFailed(cell, err) => {
            Some((cell.get_id(), ExitReason::Abnormal(err.to_string())))
        }
        SupervisionEvent::ActorTerminated(cell, _, reason) => {
            Some((cell.get_id(), classify(reason.as_deref())))
        }
        _ => None,
    }
}

fn classify(reason: Option<&str>) -> ExitReason {
    match reason {
        None | Some("normal") => ExitReason::Normal,
        Some(r) if r == SHUTDOWN_REASON || r.starts_with("shutdown:") => ExitReason::Shutdown,
        Some(r @ ("killed" | "actor_task_cancelled")) => ExitReason::Abnormal(r.to_owned()),
        Some(_) => ExitReason::Normal,
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ractor_exit_reasons_map_to_otp_classes() {
        assert_eq!(classify(None), ExitReason::Normal);
        assert_eq!(classify(Some("normal")), ExitReason::Normal);
        assert_eq!(classify(Some("peer closed")), ExitReason::Normal);
        assert_eq!(classify(Some("shutdown")), ExitReason::Shutdown);
        assert_eq!(classify(Some("shutdown: node exit")), ExitReason::Shutdown);
        assert!(classify(Some("killed")).is_abnormal());
        assert!(classify(Some("actor_task_cancelled")).is_abnormal());
    }
}
