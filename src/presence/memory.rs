//! Capacity-based memory accounting for the CRDT state.
//!
//! Rust has no portable "size of this heap graph"; this module estimates it from container
//! capacities and glibc malloc chunk sizes, so the bench can report bytes per presence without
//! a global allocator. The bench example cross-checks it with a counting allocator.

use std::mem::size_of;

use super::types::SharedRow;

/// Bytes glibc malloc uses for a request of `n` bytes (16-byte granularity, 32 minimum, 8 header).
pub fn malloc_chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// Bytes of a hashbrown table with the given usable capacity and entry size.
pub fn hash_table(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity * 8 / 7).max(4).next_power_of_two();
    malloc_chunk(buckets * entry + buckets + 16)
}

/// Bytes of a B-tree with `len` entries (nodes hold up to 11, assumed 2/3 full on average).
pub fn btree(len: usize, entry: usize) -> usize {
    let nodes = len.div_ceil(7);
    nodes * malloc_chunk(11 * entry + 16 + 8 * 12 / 2)
}

/// Heap bytes of a string.
pub fn string(s: &String) -> usize {
    malloc_chunk(s.capacity())
}

/// Heap bytes of a shared row, counted once (every other holder shares it).
pub fn row(r: &SharedRow) -> usize {
    malloc_chunk(16 + size_of::<super::types::Row>())
        + string(&r.topic)
        + string(&r.key)
        + malloc_chunk(r.meta.capacity())
}
