//! Key layouts. Big-endian integers so that LMDB's byte order is numeric order, which makes
//! "a feed's entries in sequence" and "posts in time order" plain range scans.

use crate::feed::MsgId;
use crate::identity::FeedId;

/// Message-id index rows a write transaction has not written yet (`crate::store::Writer` writes
/// them at commit, sorted): id → [`entry_key`].
pub(crate) type PendingMsgs = std::collections::HashMap<MsgId, [u8; 40]>;

/// `author ‖ seq`: 40 bytes.
pub(super) fn entry_key(author: &FeedId, seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&author.0);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Split an `entry_key`.
pub(super) fn split_entry_key(key: &[u8]) -> Option<(FeedId, u64)> {
    let author: [u8; 32] = key.get(..32)?.try_into().ok()?;
    let seq: [u8; 8] = key.get(32..40)?.try_into().ok()?;
    Some((FeedId(author), u64::from_be_bytes(seq)))
}

/// `timestamp ‖ author ‖ seq`: 48 bytes.
pub(super) fn timeline_key(timestamp_ms: u64, author: &FeedId, seq: u64) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..8].copy_from_slice(&timestamp_ms.to_be_bytes());
    key[8..].copy_from_slice(&entry_key(author, seq));
    key
}

/// The `author ‖ seq` part of a `timeline_key`.
pub(super) fn timeline_entry(key: &[u8]) -> Option<(FeedId, u64)> {
    split_entry_key(key.get(8..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_split_back() {
        let a = FeedId([1; 32]);
        assert!(entry_key(&a, 255) < entry_key(&a, 256));
        assert_eq!(split_entry_key(&entry_key(&a, 9)), Some((a, 9)));
        assert!(timeline_key(1, &FeedId([9; 32]), 1) < timeline_key(2, &a, 1));
        assert_eq!(timeline_entry(&timeline_key(5, &a, 3)), Some((a, 3)));
    }
}
