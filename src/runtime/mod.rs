//! Plumbing every process role uses: [`Slot`] (the current `ActorRef` of a restartable child,
//! filled in by each start), [`OwnedTask`] (a tokio task aborted when dropped), retry delays
//! ([`backoff`]) and the control socket's server ([`control_socket`]: a daemon and a switchboard
//! each hand it their own request handler) and owner-only data directories ([`private_dir`]).

pub mod backoff;
pub mod control_socket;
pub mod private_dir;
mod slot;
mod task;

pub use slot::Slot;
pub use task::OwnedTask;
