//! A task owned by an actor's state: aborted when the state is dropped.
//!
//! ractor skips `post_stop` when an actor panics or is killed, but it always drops the state, so
//! tying a helper task (an accept loop, an event watcher) to a field of the state is the one way
//! to be sure the task never outlives its actor.

use tokio::task::JoinHandle;

/// A spawned task that is aborted when this value is dropped.
#[derive(Debug)]
pub struct OwnedTask(JoinHandle<()>);

impl OwnedTask {
    /// Spawn `future` on the runtime, owned by the returned value.
    pub fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        OwnedTask(tokio::spawn(future))
    }

    /// Spawn `future` on the runtime `handle` belongs to, owned by the returned value.
    pub fn spawn_on(
        handle: &tokio::runtime::Handle,
        future: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        OwnedTask(handle.spawn(future))
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
