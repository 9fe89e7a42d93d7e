//! Small runtime helpers every role uses: [`Slot`] (the current `ActorRef` of a restartable
//! child, filled in by each start) and [`OwnedTask`] (a tokio task aborted when dropped).

mod slot;
mod task;

pub use slot::Slot;
pub use task::OwnedTask;
