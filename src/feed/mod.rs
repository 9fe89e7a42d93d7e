//! The feed format: signed, append-only logs, one per author. Sans-IO: no store, no network.
//!
//! An entry is a postcard-encoded [`Header`] signed by its author; the payload travels beside it
//! and is referenced by hash and length, so it can be deleted later without breaking the chain.
//! The exact signed bytes are what is stored and forwarded: nothing is ever re-serialized to be
//! verified (SSB's JSON signing is its worst interop bug). [`check`] holds the validation rules;
//! each failure has its own [`FeedError`] variant.

mod check;
mod content;
pub mod deletion;
mod entry;
mod error;
pub mod mentions;
pub mod names;
pub mod private;

pub use check::{
    check_entry, check_entry_with, check_sequence, next_entry, Checked, FeedHead, KeyCache,
    Placement,
};
pub use content::{check_reaction, Content, ContentType};
pub use entry::{hash_payload, Entry, Header, MsgId, PayloadHash, FORMAT_VERSION};
pub use error::FeedError;

/// `content` signed as the next entry of `author`'s feed after `head`, which moves on to it: the
/// entry, its payload and its header, as the unit tests of the modules that take entries in need
/// them.
#[cfg(test)]
pub(crate) fn signed_next(
    author: &crate::identity::Identity,
    head: &mut Option<FeedHead>,
    content: Content,
) -> (Entry, Vec<u8>, Header) {
    let (entry, payload, header) = next_entry(author, head.as_ref(), &content, now_ms()).unwrap();
    *head = Some(FeedHead {
        seq: header.seq,
        id: entry.id(),
        timestamp_ms: header.timestamp_ms,
    });
    (entry, payload, header)
}

/// `count` chained posts ("post 0", "post 1", …) by `author` after `head` ([`signed_next`]).
#[cfg(test)]
pub(crate) fn signed_posts(
    author: &crate::identity::Identity,
    mut head: Option<FeedHead>,
    count: usize,
) -> Vec<(Entry, Vec<u8>, Header)> {
    (0..count)
        .map(|i| {
            let content = Content::Post {
                text: format!("post {i}"),
                reply_to: None,
            };
            signed_next(author, &mut head, content)
        })
        .collect()
}

/// [`signed_posts`], each checked as it arrives from a peer (signature still to verify).
#[cfg(test)]
pub(crate) fn checked_posts(
    author: &crate::identity::Identity,
    head: Option<FeedHead>,
    count: usize,
) -> Vec<Checked> {
    signed_posts(author, head, count)
        .into_iter()
        .map(|(entry, payload, _)| check_entry(entry, Some(payload), None, now_ms()).unwrap())
        .collect()
}

/// Milliseconds since the Unix epoch, from the system clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
