//! Built-in benchmarks behind `kith bench`: each prints its figures beside the machine's raw
//! limits, measured in the same run, so that a figure is read as a ratio and not in isolation.

pub mod ingest;
pub mod presence;
mod tempdir;

pub use tempdir::TempDir;
