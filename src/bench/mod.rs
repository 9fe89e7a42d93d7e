//! Built-in benchmarks behind `kith bench`: each prints only figures measured in that run, beside
//! the machine's raw limits measured in the same run, so that a figure is read as a ratio and not
//! in isolation. Other systems' figures on the same work are quoted in the README with their
//! date and source, never printed as if measured here.

pub mod alloc;
pub mod handshake;
pub mod ingest;
pub mod presence;
