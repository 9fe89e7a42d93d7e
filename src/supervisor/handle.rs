//! [`DynamicSupervisorHandle`]: how workers reach a dynamic supervisor without knowing who
//! supervises it, and without a global ractor name.
//!
//! The tree author creates the handle up front and gives clones to the dynamic supervisor's
//! spec and to the workers that start children (e.g. a listener starting one connection actor
//! per peer). Each time the dynamic supervisor (re)starts it stores its `ActorRef` in the handle;
//! when it stops it clears it. Calls made while no instance is live fail with
//! [`SupervisorError::NotRunning`].
//!
//! As in OTP's `simple_one_for_one`, the restart type of the children is part of the
//! supervisor's template, stated by the tree ([`DynamicSupervisorHandle::for_children`]); a
//! worker starts a child with [`DynamicSupervisorHandle::start_worker`] and never chooses it.

use std::sync::{Arc, Mutex, MutexGuard};

use ractor::{ActorCell, ActorRef};

use super::dynamic::DynamicSupervisorMsg;
use super::error::SupervisorError;
use super::report::{call, SupervisorReport};
use super::spec::ChildSpec;
use super::Restart;
use crate::limits;

/// A cloneable, late-bound reference to a dynamic supervisor.
#[derive(Clone)]
pub struct DynamicSupervisorHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// The restart type of every child a worker starts (`start_worker`), stated by the tree.
    child_restart: Option<Restart>,
    current: Mutex<Option<ActorRef<DynamicSupervisorMsg>>>,
}

impl std::fmt::Debug for DynamicSupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSupervisorHandle")
            .field("name", &self.inner.name)
            .field("running", &self.actor().is_some())
            .finish()
    }
}

impl DynamicSupervisorHandle {
    /// An empty handle; `name` is for logs only.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with(name, None)
    }

    /// An empty handle whose children, started by workers through
    /// [`start_worker`](Self::start_worker), all get the restart type `restart`.
    pub fn for_children(name: impl Into<String>, restart: Restart) -> Self {
        Self::with(name, Some(restart))
    }

    fn with(name: impl Into<String>, child_restart: Option<Restart>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                child_restart,
                current: Mutex::new(None),
            }),
        }
    }

    /// The handle's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The live dynamic supervisor, if any.
    pub fn actor(&self) -> Option<ActorRef<DynamicSupervisorMsg>> {
        self.lock().clone()
    }

    /// Starts a worker child under the dynamic supervisor with the restart type the tree stated
    /// for this supervisor's children.
    pub async fn start_worker<A>(
        &self,
        id: impl Into<String>,
        actor: A,
        args: impl Fn() -> A::Arguments + Send + Sync + 'static,
    ) -> Result<ActorCell, SupervisorError>
    where
        A: ractor::Actor + Clone,
    {
        let restart = self
            .inner
            .child_restart
            .ok_or_else(|| SupervisorError::NoChildRestart(self.inner.name.clone()))?;
        self.start_child(ChildSpec::worker(id, restart, actor, args))
            .await
    }

    /// Starts a child under the dynamic supervisor and returns its cell.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        let sup = self.actor().ok_or(SupervisorError::NotRunning)?;
        let timeout = Some(limits::SUPERVISOR_CALL_TIMEOUT);
        call(
            sup.call(|r| DynamicSupervisorMsg::StartChild(spec, r), timeout)
                .await,
        )?
    }

    /// Stops the child `id` within its deadline and removes it.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let sup = self.actor().ok_or(SupervisorError::NotRunning)?;
        let id = id.to_owned();
        let timeout = Some(limits::SUPERVISOR_CALL_TIMEOUT);
        call(
            sup.call(|r| DynamicSupervisorMsg::TerminateChild(id, r), timeout)
                .await,
        )?
    }

    /// How many children the dynamic supervisor holds.
    pub async fn count(&self) -> Result<usize, SupervisorError> {
        let sup = self.actor().ok_or(SupervisorError::NotRunning)?;
        call(
            sup.call(
                DynamicSupervisorMsg::Count,
                Some(limits::SUPERVISOR_CALL_TIMEOUT),
            )
            .await,
        )
    }

    /// The ids of its children, in start order.
    pub async fn which_children(&self) -> Result<Vec<String>, SupervisorError> {
        let sup = self.actor().ok_or(SupervisorError::NotRunning)?;
        let timeout = Some(limits::SUPERVISOR_CALL_TIMEOUT);
        call(sup.call(DynamicSupervisorMsg::WhichChildren, timeout).await)
    }

    /// Its report, including nested supervisors.
    pub async fn report(&self) -> Result<SupervisorReport, SupervisorError> {
        let sup = self.actor().ok_or(SupervisorError::NotRunning)?;
        super::report::report_cell(&sup.get_cell()).await
    }

    pub(crate) fn set(&self, sup: ActorRef<DynamicSupervisorMsg>) {
        *self.lock() = Some(sup);
    }

    /// Clears the handle if it still points at `sup` (a newer instance may have replaced it).
    pub(crate) fn clear(&self, sup: &ActorRef<DynamicSupervisorMsg>) {
        let mut current = self.lock();
        if current.as_ref().map(|c| c.get_id()) == Some(sup.get_id()) {
            *current = None;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<ActorRef<DynamicSupervisorMsg>>> {
        // The guarded value is a plain Option; a panic elsewhere cannot leave it inconsistent.
        self.inner
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
