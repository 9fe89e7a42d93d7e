//! Checking and batched ed25519 verification across cores, with per-entry fallback.
//!
//! The incoming entries are split over the machine's cores with scoped threads; each thread
//! checks its share structurally (decompressing each author's key once, [`KeyCache`]) and then
//! verifies the signatures in batches ([`verify_signatures`]: one term per author in each batch).
//! A batch answers only "all valid" or "some invalid", so a failed one is re-verified entry by
//! entry ([`Checked::verify_signature`], the same ZIP-215 rules as the batch) to name the bad
//! one. Verification, not LMDB, bounds ingest, so it gets every core: here with scoped
//! threads for one batch ([`check_and_verify`]), or in the store writer with one verifier thread
//! per core, each running [`check_and_verify_here`] on its part ([`crate::ingest::Verifiers`]).

use ed25519_dalek::{Signature, VerifyingKey};

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

/// Verify signatures on this thread, in batches of at most [`VERIFY_CHUNK_MAX`]; one result per
/// entry.
///
/// Each batch is one [`ed25519_zebra::batch::Verifier`], which coalesces the signatures of one
/// key into one term of the multiscalar multiplication: a batch of n signatures by m authors costs
/// a multiplication of n + m + 1 points instead of `ed25519_dalek::verify_batch`'s 2n + 1, and a
/// replicated frame is one feed (m = 1). A failed batch is re-verified entry by entry with
/// [`Checked::verify_signature`], which applies the same (ZIP-215, cofactored) rules, to name
/// the bad one: an entry's verdict does not depend on the batch it arrived in.
pub fn verify_signatures(items: &[&Checked]) -> Vec<Result<(), FeedError>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(VERIFY_CHUNK_MAX) {
        if batch_valid(
            chunk
                .iter()
                .map(|c| (&c.key, &c.signature, c.signed_bytes())),
        ) {
            out.extend(chunk.iter().map(|_| Ok(())));
        } else {
            out.extend(chunk.iter().map(|c| c.verify_signature()));
        }
    }
    out
}

/// Whether every signature of one batch is valid (one [`ed25519_zebra::batch::Verifier`], which
/// gives each distinct key one term): the batch check [`verify_signatures`] runs on each chunk.
pub fn batch_valid<'a>(
    items: impl IntoIterator<Item = (&'a VerifyingKey, &'a Signature, &'a [u8])>,
) -> bool {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (key, signature, message) in items {
        let key = ed25519_zebra::VerificationKeyBytes::from(key.to_bytes());
        batch.queue((key, *signature, message));
    }
    batch.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{check_entry, checked_posts, next_entry, now_ms, Content};
    use crate::identity::Identity;

    /// `count` chained, checked entries of the `seed`-th author.
    fn chain(seed: u8, count: usize) -> Vec<Checked> {
        checked_posts(&Identity::from_seed([seed; 32]), None, count)
    }

    /// Three authors' entries interleaved, so each batch coalesces several keys.
    fn interleaved(per_author: usize) -> Vec<Checked> {
        let feeds: Vec<Vec<Checked>> = (1..=3).map(|s| chain(s, per_author)).collect();
        (0..per_author)
            .flat_map(|i| feeds.iter().map(move |f| f[i].clone()))
            .collect()
    }

    fn verdicts(items: &[Checked]) -> Vec<bool> {
        let refs: Vec<&Checked> = items.iter().collect();
        verify_signatures(&refs).iter().map(Result::is_ok).collect()
    }

    /// The batch check over `items` (one batch, whatever its size).
    fn batch(items: &[Checked]) -> bool {
        batch_valid(
            items
                .iter()
                .map(|c| (&c.key, &c.signature, c.signed_bytes())),
        )
    }

    /// `s + ℓ` in place of `s`: the same scalar, not in its canonical form.
    fn non_canonical_s(signature: &Signature) -> Signature {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut bytes = signature.to_bytes();
        let mut carry = 0u16;
        for (b, l) in bytes[32..].iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        Signature::from_bytes(&bytes)
    }

    /// An entry by a key with a torsion part (`aB + T`, `T` of order 8), signed as `aB` would
    /// sign it: the cofactored equation holds and the cofactorless one does not. Only its author
    /// can make one; with a cofactored batch and a strict lone check, it would pass in a batch of
    /// valid entries and fail in a batch that another entry sinks.
    fn torsion_signed() -> Checked {
        use curve25519_dalek::scalar::Scalar;
        use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT as B, constants::EIGHT_TORSION};
        use sha2::{Digest, Sha512};
        let a = Scalar::from_bytes_mod_order([7; 32]);
        let key = (B * a + EIGHT_TORSION[1]).compress();
        let content = Content::Post {
            text: "signed on a key with a torsion part".into(),
            reply_to: None,
        };
        let (_, payload, mut header) =
            next_entry(&Identity::from_seed([9; 32]), None, &content, now_ms()).unwrap();
        header.author = FeedId(key.to_bytes());
        // k·T vanishes for one k in 8: try a few timestamps for one where it does not.
        (0..64u8)
            .find_map(|n| {
                header.timestamp_ms += 1;
                let bytes = postcard::to_stdvec(&header).unwrap();
                let r = Scalar::from_bytes_mod_order([n.wrapping_add(1); 32]);
                let big_r = (B * r).compress();
                let hash = Sha512::new()
                    .chain_update(big_r.as_bytes())
                    .chain_update(key.as_bytes())
                    .chain_update(&bytes)
                    .finalize();
                let k = Scalar::from_bytes_mod_order_wide(&hash.into());
                let mut entry = big_r.to_bytes().to_vec();
                entry.extend_from_slice((r + k * a).as_bytes());
                entry.extend_from_slice(&bytes);
                let checked = check_entry(
                    crate::feed::Entry(entry),
                    Some(payload.clone()),
                    None,
                    now_ms(),
                )
                .unwrap();
                let strict = checked
                    .key
                    .verify_strict(checked.signed_bytes(), &checked.signature);
                strict.is_err().then_some(checked)
            })
            .unwrap()
    }

    #[test]
    fn an_entry_gets_the_same_verdict_in_any_batch_and_alone() {
        let crafted = torsion_signed();
        let alone = crafted.verify_signature().is_ok();
        // ZIP-215 accepts it; what matters is that every path agrees.
        assert!(alone, "the lone check refused a cofactored-valid signature");
        let mut items = interleaved(4);
        items.push(crafted);
        assert!(batch(&items), "a batch of valid entries with it failed");
        assert!(verdicts(&items).iter().all(|ok| *ok));
        // A batch another entry sinks is re-checked entry by entry: the crafted one keeps its
        // verdict and only the spoiled one is named.
        let mut bytes = items[0].signature.to_bytes();
        bytes[40] ^= 1;
        items[0].signature = Signature::from_bytes(&bytes);
        let verdicts = verdicts(&items);
        assert!(!verdicts[0]);
        assert!(verdicts[1..].iter().all(|ok| *ok), "{verdicts:?}");
    }

    #[test]
    fn valid_batches_of_several_authors_pass_across_chunks() {
        let items = interleaved(VERIFY_CHUNK_MAX / 2);
        assert!(items.len() > VERIFY_CHUNK_MAX);
        assert!(batch(&items[..VERIFY_CHUNK_MAX]));
        assert!(verdicts(&items).iter().all(|ok| *ok));
    }

    #[test]
    fn each_kind_of_bad_signature_sinks_its_batch_and_is_named_alone() {
        let good = interleaved(40);
        let n = good.len();
        type Spoil = fn(&mut [Checked]);
        let spoils: [(&str, Spoil); 5] = [
            ("a flipped signature bit", |items| {
                let mut bytes = items[7].signature.to_bytes();
                bytes[40] ^= 1;
                items[7].signature = Signature::from_bytes(&bytes);
            }),
            // Two authors' signatures exchanged: each is valid, but not for the key it is
            // checked against; coalescing the keys must not hide it.
            ("signatures of two authors exchanged", |items| {
                let (a, b) = (items[7].signature, items[8].signature);
                items[7].signature = b;
                items[8].signature = a;
            }),
            // The same author's signature on another of its entries.
            ("an author's signature moved to its next entry", |items| {
                items[7].signature = items[10].signature;
            }),
            // The right author, the wrong key: another author's key in its place.
            ("another key claimed", |items| {
                items[7].key = items[8].key;
            }),
            ("s not in canonical form", |items| {
                items[7].signature = non_canonical_s(&items[7].signature);
            }),
        ];
        for (what, spoil) in spoils {
            let mut items = good.clone();
            spoil(&mut items);
            assert!(!batch(&items), "{what}: the batch passed");
            let refused: Vec<usize> = verdicts(&items)
                .iter()
                .enumerate()
                .filter(|(_, ok)| !**ok)
                .map(|(i, _)| i)
                .collect();
            let named: &[usize] = match what {
                "signatures of two authors exchanged" => &[7, 8],
                _ => &[7],
            };
            assert_eq!(refused, named, "{what}");
            // Each verdict is the lone check's, entry by entry.
            for (i, c) in items.iter().enumerate().take(n) {
                assert_eq!(
                    c.verify_signature().is_ok(),
                    !named.contains(&i),
                    "{what}: {i}"
                );
            }
        }
    }
}
