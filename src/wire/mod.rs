//! Wire types shared by more than one process: the control protocol between `kith` commands and
//! a daemon ([`control`]), and the messages between a daemon and a switchboard and between the
//! nodes of a switchboard cluster ([`switchboard`]). Plain serde types and their checks, no I/O,
//! so both sides of each protocol import them from below.

pub mod card;
pub mod control;
pub mod switchboard;
