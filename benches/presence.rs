//! Runs the presence bench at full size and prints the report as JSON.
//!
//! `cargo bench --bench presence` (add `-- tiny` for a quick run). Memory is counted by the same
//! counting allocator the `kith` binary installs ([`kith::bench::alloc::CountingAlloc`]), so
//! `bytes_per_presence` here and in `kith bench presence` are one measurement.

use kith::bench::alloc::CountingAlloc;
use kith::bench::presence::{run, BenchOptions};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let tiny = std::env::args().any(|a| a == "tiny");
    let options = if tiny {
        BenchOptions::tiny()
    } else {
        BenchOptions::default()
    };
    let started = std::time::Instant::now();
    let report = run(options);
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("report not serialisable: {e}"),
    }
    eprintln!("bench took {:.1} s", started.elapsed().as_secs_f64());
}
