//! Batched ed25519 verification across cores, with per-entry fallback.
//!
//! `ed25519_dalek::verify_batch` answers only "all valid" or "some invalid", so a failed chunk is
//! re-verified entry by entry with `verify_strict` to name the bad one. Chunks are spread over the
//! machine's cores with scoped threads: verification, not LMDB, bounds ingest.

use crate::feed::{Checked, FeedError};
use crate::limits::VERIFY_CHUNK_MAX;

/// Verify every entry's signature; one result per entry, in order.
pub fn verify_signatures(items: &[&Checked]) -> Vec<Result<(), FeedError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads.max(1)).max(VERIFY_CHUNK_MAX / 4);
    if items.len() <= per_thread {
        return verify_serial(items);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|part| scope.spawn(move || verify_serial(part)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (handle, part) in handles.into_iter().zip(items.chunks(per_thread)) {
            // A verifier thread that panicked counts its entries as unverified, never as valid.
            out.extend(handle.join().unwrap_or_else(|_| part.iter().map(bad).collect()));
        }
        out
    })
}

fn verify_serial(items: &[&Checked]) -> Vec<Result<(), FeedError>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(VERIFY_CHUNK_MAX) {
        let messages: Vec<&[u8]> = chunk.iter().map(|c| c.signed_bytes()).collect();
        let signatures: Vec<_> = chunk.iter().map(|c| c.signature).collect();
        let keys: Vec<_> = chunk.iter().map(|c| c.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            out.extend(chunk.iter().map(|_| Ok(())));
        } else {
            out.extend(chunk.iter().map(|c| c.verify_signature()));
        }
    }
    out
}

fn bad(item: &&Checked) -> Result<(), FeedError> {
    Err(FeedError::BadSignature { author: item.header.author, seq: item.header.seq })
}
