//! The supervision trees, one per use, each stating its strategy, restart intensity and each
//! child's restart type: the `application.ex` and `*_sup.ex` files of kith.

pub mod daemon;
pub mod loadtest;
pub mod presence;
pub mod switchboard;
