//! Peer-to-peer plumbing shared by the listener, the connection actors and the dialers: the
//! consent policy, the table of live connections, the replicators registry, the outbox of a
//! connection and the retry delays. Nothing here imports an actor; the actors that start
//! connections (`connect`, `punch`) and the context they share live one level up.

mod outbox;
mod policy;
mod replicators;
mod table;

pub use outbox::{Job, Outbox, OutboxFull};
pub use policy::{intro_answer, wants, IntroPolicy, LocalView, ServePolicy};

pub use replicators::{FeedProgress, Replicators};
pub use table::{keep_new, Admitted, ConnInfo, ConnView, Connections, Direction, Via};
