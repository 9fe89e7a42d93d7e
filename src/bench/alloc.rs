//! The counting allocator the memory figures are measured with: the system allocator, plus a
//! per-thread count of the bytes this thread allocated and has not freed.
//!
//! One way of measuring, wherever a figure is printed: the `kith` binary installs it (so `kith
//! bench presence` measures), `cargo bench --bench presence` installs it, and so does the test
//! that runs the bench at tiny sizes. The count is per thread, so that threads running
//! concurrently (a test harness, a runtime's workers) do not disturb a measurement made on one
//! thread, and so that counting costs no shared atomic on the daemon's or switchboard's hot
//! paths: a thread-local add beside each allocation. Without it installed, [`thread_live_bytes`]
//! stays at zero and [`installed`] says so: a figure is then absent, never estimated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated by this thread minus bytes it freed (a block freed by another thread
    /// than its allocator counts there). No destructor and a const initialiser: reading it
    /// never allocates, so the allocator itself may use it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting per thread. Install it with
/// `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAlloc;

fn count(delta: isize) {
    // `try_with` fails only while the thread's locals are being torn down: that block is not
    // counted, and no measurement runs then.
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(delta)));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the only addition is a thread-local integer update, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller guarantees `new_size`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

/// Bytes this thread allocated and still holds since it started, when [`CountingAlloc`] is the
/// global allocator (always 0 otherwise). Differences between two readings are what a
/// measurement uses.
pub fn thread_live_bytes() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// Whether [`CountingAlloc`] is the global allocator of this program: an allocation moves the
/// count.
pub fn installed() -> bool {
    let before = thread_live_bytes();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let moved = thread_live_bytes() != before;
    drop(probe);
    moved
}

/// Bytes that `f` allocated on this thread and still held when it returned (its temporaries
/// cancel out), or `None` when [`CountingAlloc`] is not installed.
pub fn held_by<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    if !installed() {
        return (f(), None);
    }
    let before = thread_live_bytes();
    let out = f();
    let held = thread_live_bytes().saturating_sub(before).max(0) as usize;
    (out, Some(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library's unit tests run under the system allocator: nothing is counted, and the
    // helpers say so instead of reporting zero bytes.
    #[test]
    fn without_the_allocator_installed_nothing_is_reported() {
        assert!(!installed());
        let (v, held) = held_by(|| vec![0u8; 4096]);
        assert_eq!(v.len(), 4096);
        assert_eq!(held, None);
    }
}
