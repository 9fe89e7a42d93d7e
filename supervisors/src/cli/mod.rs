//! The `kith` command line: flags ([`args`]), settings precedence ([`config`]), the control-socket
//! client ([`client`]), text/JSON printing ([`output`]) and the stop signals ([`signal`]).

#[allow(missing_docs)]
// clap turns doc comments into help text; flattened flags document themselves.
pub mod args;
#[allow(missing_docs)]
// clap turns doc comments into help text; flattened flags document themselves.
pub mod blob;
pub mod client;
pub mod config;
pub mod output;
pub mod port;
#[allow(missing_docs)]
// clap turns doc comments into help text; flattened flags document themselves.
pub mod private;
pub mod report;
pub mod signal;
#[allow(missing_docs)]
// clap turns doc comments into help text; flattened flags document themselves.
pub mod social;
