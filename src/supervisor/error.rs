//! Errors returned by the supervision API.

use ractor::SpawnErr;

/// What went wrong when talking to, or inside, a supervisor.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor is not running (never started, stopped, or between restarts).
    #[error("supervisor is not running")]
    NotRunning,
    /// A dynamic supervisor already holds its maximum number of children.
    #[error("dynamic supervisor is full ({max} children)")]
    MaxChildren {
        /// The configured `max_children`.
        max: usize,
    },
    /// A child with this id already exists under the supervisor.
    #[error("duplicate child id '{0}'")]
    DuplicateId(String),
    /// No child with this id exists under the supervisor.
    #[error("unknown child '{0}'")]
    UnknownChild(String),
    /// A worker asked to start a child through a handle whose tree stated no restart type for
    /// its children ([`DynamicSupervisorHandle::for_children`](super::DynamicSupervisorHandle::for_children)).
    #[error("the tree gave dynamic supervisor '{0}' no restart type for its children")]
    NoChildRestart(String),
    /// A call to the supervisor failed or timed out.
    #[error("call to supervisor failed: {0}")]
    Call(String),
    /// A child failed to start.
    #[error("child '{id}' failed to start: {source}")]
    Start {
        /// The child's id.
        id: String,
        /// Why its start failed.
        #[source]
        source: SpawnErr,
    },
}
