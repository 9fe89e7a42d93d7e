//! Runs the presence bench at full size and prints the report as JSON.
//!
//! `cargo bench --bench presence` (add `-- tiny` for a quick run). A counting
//! global allocator measures `bytes_per_presence` exactly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kith::bench::presence::{run, BenchOptions};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let tiny = std::env::args().any(|a| a == "tiny");
    let base = if tiny {
        BenchOptions::tiny()
    } else {
        BenchOptions::default()
    };
    let started = std::time::Instant::now();
    let report = run(BenchOptions {
        allocated_bytes: Some(live),
        ..base
    });
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("report not serialisable: {e}"),
    }
    eprintln!("bench took {:.1} s", started.elapsed().as_secs_f64());
}
