//! The `kith` binary.
fn main() {}
