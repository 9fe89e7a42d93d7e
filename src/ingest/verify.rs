//! Checking and batched ed25519 verification across cores, with per-entry fallback.
//!
//! The incoming entries are split over the machine's cores with scoped threads; each thread
//! checks its share structurally (decompressing each author's key once, [`KeyCache`]) and then
//! verifies the signatures in `verify_batch` chunks. `verify_batch` answers only "all valid" or
//! "some invalid", so a failed chunk is re-verified entry by entry with `verify_strict` to name
//! the bad one. Verification, not LMDB, bounds ingest, so it gets every core: here with scoped
//! threads for one batch ([`check_and_verify`]), or in the store writer with one verifier thread
//! per core, each running [`check_and_verify_here`] on its part ([`crate::ingest::Verifiers`]).

use crate::feed::{check_entry_with, Checked, Entry, FeedError, KeyCache};
use crate::identity::FeedId;
use crate::limits::VERIFY_CHUNK_MAX;

/// An entry to check: its bytes, its payload, and the feed it was delivered as part of.
pub type Unchecked = (Entry, Option<Vec<u8>>, Option<FeedId>);

/// Check and verify every entry; one result per entry, in order.
pub fn check_and_verify(items: Vec<Unchecked>, now_ms: u64) -> Vec<Result<Checked, FeedError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items
        .len()
        .div_ceil(threads.max(1))
        .max(VERIFY_CHUNK_MAX / 4);
    if items.len() <= per_thread {
        return check_and_verify_here(items, now_ms);
    }
    let mut parts = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        parts.push(items.by_ref().take(per_thread).collect::<Vec<_>>());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let len = part.len();
                (
                    len,
                    scope.spawn(move || check_and_verify_here(part, now_ms)),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (len, handle) in handles {
            // A checker thread that panicked counts its entries as invalid, never as valid.
            let panicked = || {
                (0..len)
                    .map(|_| Err(FeedError::HeaderMalformed("checker crashed".into())))
                    .collect()
            };
            out.extend(handle.join().unwrap_or_else(|_| panicked()));
        }
        out
    })
}

/// [`check_and_verify`] on this thread only, for a caller that already keeps every core busy.
pub fn check_and_verify_here(
    items: Vec<Unchecked>,
    now_ms: u64,
) -> Vec<Result<Checked, FeedError>> {
    let mut keys = KeyCache::default();
    let checked: Vec<Result<Checked, FeedError>> = items
        .into_iter()
        .map(|(entry, payload, feed)| check_entry_with(entry, payload, feed, now_ms, &mut keys))
        .collect();
    let valid: Vec<&Checked> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
    let mut verdicts = verify_signatures(&valid).into_iter();
    checked
        .into_iter()
        .map(|c| {
            let c = c?;
            // One verdict per valid entry, in order; a missing one is never taken as valid.
            verdicts.next().unwrap_or_else(|| c.verify_signature())?;
            Ok(c)
        })
        .collect()
}

/// Verify signatures on this thread, in `verify_batch` chunks; one result per entry.
pub fn verify_signatures(items: &[&Checked]) -> Vec<Result<(), FeedError>> {
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
