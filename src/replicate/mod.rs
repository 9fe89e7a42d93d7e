//! Replication: EBT-style exchange of exactly the feeds each side chose. Sans-IO.
//!
//! On connect each side sends its **clock**: for every feed it wants (its own and those it
//! follows, never a blocked one), the latest sequence it holds. A side serves a feed to its peer
//! when the peer wants it, the local consent policy allows it, and it holds more than the peer;
//! it streams the missing entries in order, then pushes new ones live. Nobody is ever sent a feed
//! it did not ask for, and a side that receives one closes the connection: that is how
//! friends-of-friends stay out.
//!
//! **Request skipping.** Each side remembers, per peer, the clock it last sent and the clock the
//! peer last sent ([`PeerMemory`], persisted in the store). On reconnect it sends only the notes
//! that changed since, with a digest of its whole clock; if the receiver's remembered view does
//! not hash to that digest (a side lost its memory, or crashed before saving it), it asks for the
//! full clock. So unchanged feeds cost nothing on reconnect and a stale memory cannot lose data.

mod clock;
mod session;
mod wire;

pub use clock::{digest, Clock, PeerMemory};
pub use session::{Action, Local, Session, SessionError};
pub use wire::{Msg, Note, WireEntry};

#[cfg(test)]
mod tests;
