//! Child and supervisor specifications: what to start, how to restart it, how long it gets to
//! stop. Specs are plain data plus a start closure, cloneable so a supervisor can start a child
//! again after every restart.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, SpawnErr};
use serde::Serialize;

use super::decision::{Intensity, Restart, Strategy};
use super::dynamic::DynamicSupervisor;
use super::handle::DynamicSupervisorHandle;
use super::supervisor::Supervisor;
use crate::limits;

/// A boxed, sendable future (what `futures::BoxFuture` is, without the dependency).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts the child linked to the given supervisor cell and returns the child's cell.
///
/// The closure must link the child to the cell it is given (`Actor::spawn_linked`), otherwise
/// the supervisor never hears of its exit.
pub type StartFn =
    Arc<dyn Fn(ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> + Send + Sync>;

/// Whether a child is a worker or a supervisor (reports recurse into supervisors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// A plain actor.
    Worker,
    /// A supervisor with children of its own.
    Supervisor,
}

/// How to start, restart and stop one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique id among the supervisor's children.
    pub id: String,
    /// When the child is restarted.
    pub restart: Restart,
    /// How long the child gets to stop gracefully before it is killed.
    pub shutdown: Duration,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Starts the child, linked to the supervisor.
    pub start: StartFn,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A worker child from an actor value and a closure that builds fresh arguments for each
    /// (re)start. Its shutdown deadline is [`limits::SUPERVISOR_WORKER_SHUTDOWN`].
    pub fn worker<A>(
        id: impl Into<String>,
        restart: Restart,
        actor: A,
        args: impl Fn() -> A::Arguments + Send + Sync + 'static,
    ) -> Self
    where
        A: Actor + Clone,
    {
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let actor = actor.clone();
            let args = args();
            Box::pin(async move {
                let (child, _join) = A::spawn_linked(None, actor, args, sup).await?;
                Ok(child.get_cell())
            })
        });
        Self {
            id: id.into(),
            restart,
            shutdown: limits::SUPERVISOR_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
            start,
        }
    }

    /// A nested static supervisor, permanent, identified by its spec's name.
    pub fn supervisor(spec: SupervisorSpec) -> Self {
        let id = spec.name.clone();
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let spec = spec.clone();
            Box::pin(async move {
                let (child, _join) = Supervisor::spawn_linked(None, Supervisor, spec, sup).await?;
                Ok(child.get_cell())
            })
        });
        Self::supervisor_child(id, start)
    }

    /// A nested dynamic supervisor, permanent, identified by its spec's name. `handle` is filled
    /// in each time it (re)starts, so workers holding a clone always reach the live instance.
    pub fn dynamic(spec: DynamicSpec, handle: DynamicSupervisorHandle) -> Self {
        let id = spec.name.clone();
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let args = (spec.clone(), handle.clone());
            Box::pin(async move {
                let (child, _join) =
                    DynamicSupervisor::spawn_linked(None, DynamicSupervisor, args, sup).await?;
                Ok(child.get_cell())
            })
        });
        Self::supervisor_child(id, start)
    }

    /// Replaces the shutdown deadline.
    pub fn with_shutdown(mut self, shutdown: Duration) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Replaces the restart type.
    pub fn with_restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    fn supervisor_child(id: String, start: StartFn) -> Self {
        Self {
            id,
            restart: Restart::Permanent,
            shutdown: limits::SUPERVISOR_CHILD_SUPERVISOR_SHUTDOWN,
            kind: ChildKind::Supervisor,
            start,
        }
    }
}

/// A static supervisor: its strategy, intensity and ordered children.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Name shown in reports and logs (not a registered ractor name).
    pub name: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Restart intensity.
    pub intensity: Intensity,
    /// Children in start order.
    pub children: Vec<ChildSpec>,
}

/// A dynamic supervisor: children are added at run time, restarted one_for_one.
#[derive(Debug, Clone)]
pub struct DynamicSpec {
    /// Name shown in reports and logs (not a registered ractor name).
    pub name: String,
    /// Restart intensity.
    pub intensity: Intensity,
    /// Most children held at once.
    pub max_children: usize,
}

impl DynamicSpec {
    /// A spec with default intensity and [`limits::DYNAMIC_SUPERVISOR_MAX_CHILDREN`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            intensity: Intensity::default(),
            max_children: limits::DYNAMIC_SUPERVISOR_MAX_CHILDREN,
        }
    }
}
