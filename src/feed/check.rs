//! Validation rules for one entry, split so that the expensive part can be batched.
//!
//! [`check_entry`] does everything that needs only the entry itself (sizes, header, author key,
//! payload hash and length, content, timestamp). [`Checked::verify_signature`] is the strict
//! per-entry signature check that the ingest pipeline runs only when a batch verification fails.
//! [`check_sequence`] places the entry against the feed's head: the next one, one already held
//! (a duplicate or a fork, which the caller tells apart by id), or a gap / broken backlink.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::feed::{hash_payload, Content, Entry, FeedError, Header, MsgId};
use crate::identity::FeedId;
use crate::limits::{PAYLOAD_BYTES_MAX, TIMESTAMP_MIN_MS, TIMESTAMP_SKEW_MAX};

/// The latest entry of a feed, as the store knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedHead {
    /// Its sequence.
    pub seq: u64,
    /// Its id.
    pub id: MsgId,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// An entry whose structure is valid and whose signature is still to be verified.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The exact entry bytes.
    pub entry: Entry,
    /// Its decoded header.
    pub header: Header,
    /// Its id.
    pub id: MsgId,
    /// The author's key.
    pub key: VerifyingKey,
    /// Its signature.
    pub signature: Signature,
    /// The payload, if it travelled with the entry.
    pub payload: Option<Vec<u8>>,
    /// The payload decoded, as checking found it valid: kept so that the store does not decode
    /// it again (`None` without a payload).
    pub decoded: Option<Content>,
}

/// Where an entry falls relative to its feed's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// It is the next entry.
    Next,
    /// The feed already holds this sequence; compare ids to tell a duplicate from a fork.
    Held,
}

/// Check everything about `entry` that needs no other entry and no signature verification.
pub fn check_entry(
    entry: Entry,
    payload: Option<Vec<u8>>,
    expected_author: Option<FeedId>,
    now_ms: u64,
) -> Result<Checked, FeedError> {
    check_entry_with(
        entry,
        payload,
        expected_author,
        now_ms,
        &mut KeyCache::default(),
    )
}

/// Decompressed author keys, so that a batch decompresses each author's point once.
#[derive(Default)]
pub struct KeyCache {
    keys: std::collections::HashMap<FeedId, Result<VerifyingKey, FeedError>>,
}

impl KeyCache {
    fn get(&mut self, author: &FeedId) -> Result<VerifyingKey, FeedError> {
        self.keys
            .entry(*author)
            .or_insert_with(|| author_key(author))
            .clone()
    }
}

/// [`check_entry`] with a cache of author keys shared across a batch.
pub fn check_entry_with(
    entry: Entry,
    payload: Option<Vec<u8>>,
    expected_author: Option<FeedId>,
    now_ms: u64,
    keys: &mut KeyCache,
) -> Result<Checked, FeedError> {
    let (signature, _) = entry.parts()?;
    let header = entry.header()?;
    if let Some(expected) = expected_author {
        if expected != header.author {
            return Err(FeedError::WrongAuthor {
                expected,
                got: header.author,
            });
        }
    }
    let key = keys.get(&header.author)?;
    let decoded = check_payload(&header, payload.as_deref())?;
    check_timestamp(header.timestamp_ms, now_ms)?;
    if header.seq == 0 || (header.seq == 1) != header.prev.is_none() {
        return Err(FeedError::WrongBacklink {
            author: header.author,
            seq: header.seq,
        });
    }
    let id = entry.id();
    Ok(Checked {
        entry,
        header,
        id,
        key,
        signature,
        payload,
        decoded,
    })
}

/// Place a checked entry against its feed's head.
pub fn check_sequence(head: Option<&FeedHead>, checked: &Checked) -> Result<Placement, FeedError> {
    let header = &checked.header;
    let expected = head.map_or(1, |h| h.seq + 1);
    if header.seq < expected {
        return Ok(Placement::Held);
    }
    if header.seq > expected {
        return Err(FeedError::WrongSequence {
            author: header.author,
            expected,
            got: header.seq,
        });
    }
    if header.prev != head.map(|h| h.id) {
        return Err(FeedError::WrongBacklink {
            author: header.author,
            seq: header.seq,
        });
    }
    Ok(Placement::Next)
}

impl Checked {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        // `check_entry` already split these bytes, so `parts` cannot fail here; fall back to the
        // empty slice (which no signature verifies) rather than panic.
        self.entry.parts().map(|(_, h)| h).unwrap_or(&[])
    }

    /// ed25519 verification of this one entry under the ZIP-215 rules (`ed25519-zebra`): the
    /// same cofactored equation as the batch check ([`crate::ingest::batch_valid`]), so an entry
    /// is accepted or refused the same way whether it is checked in a batch or alone (a batch
    /// that fails is re-checked entry by entry with this). With a strict, cofactorless check here
    /// an author could sign so that the entry passed in some batches and failed in others, and
    /// nodes would hold different prefixes of one feed. Weak (small-order) author keys are
    /// refused before this, when the key is read ([`FeedId::strong_key`]).
    pub fn verify_signature(&self) -> Result<(), FeedError> {
        let bad = || FeedError::BadSignature {
            author: self.header.author,
            seq: self.header.seq,
        };
        let key =
            ed25519_zebra::VerificationKey::try_from(self.key.to_bytes()).map_err(|_| bad())?;
        key.verify(&self.signature, self.signed_bytes())
            .map_err(|_| bad())
    }

    /// The decoded content, if the payload is present.
    pub fn content(&self) -> Option<Result<Content, FeedError>> {
        match (&self.decoded, &self.payload) {
            (Some(content), _) => Some(Ok(content.clone())),
            (None, payload) => payload.as_deref().map(Content::decode),
        }
    }
}

fn author_key(author: &FeedId) -> Result<VerifyingKey, FeedError> {
    author
        .strong_key()
        .map_err(|_| FeedError::BadAuthorKey(author.to_string()))
}

/// Check the payload against the header; the decoded content, if the payload is present.
fn check_payload(header: &Header, payload: Option<&[u8]>) -> Result<Option<Content>, FeedError> {
    let claimed = header.payload_len as usize;
    if claimed > PAYLOAD_BYTES_MAX {
        return Err(FeedError::PayloadTooLarge {
            len: claimed,
            max: PAYLOAD_BYTES_MAX,
        });
    }
    let Some(payload) = payload else {
        return Ok(None);
    };
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(FeedError::PayloadTooLarge {
            len: payload.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    if payload.len() != claimed {
        return Err(FeedError::PayloadLengthMismatch {
            expected: header.payload_len,
            got: payload.len(),
        });
    }
    if hash_payload(payload) != header.payload_hash {
        return Err(FeedError::PayloadHashMismatch);
    }
    let content = Content::decode(payload)?;
    if content.content_type() != header.content_type {
        return Err(FeedError::PayloadMalformed(format!(
            "header says {:?}, payload holds {:?}",
            header.content_type,
            content.content_type()
        )));
    }
    content.validate()?;
    Ok(Some(content))
}

fn check_timestamp(timestamp_ms: u64, now_ms: u64) -> Result<(), FeedError> {
    if timestamp_ms < TIMESTAMP_MIN_MS {
        return Err(FeedError::TimestampTooOld(timestamp_ms));
    }
    if timestamp_ms > now_ms.saturating_add(TIMESTAMP_SKEW_MAX.as_millis() as u64) {
        return Err(FeedError::TimestampInFuture {
            timestamp_ms,
            now_ms,
        });
    }
    Ok(())
}

/// Build and sign the entry that follows `head` in `identity`'s feed.
pub fn next_entry(
    identity: &crate::identity::Identity,
    head: Option<&FeedHead>,
    content: &Content,
    now_ms: u64,
) -> Result<(Entry, Vec<u8>, Header), FeedError> {
    let payload = content.encode()?;
    // Timestamps never go backwards within a feed, even if the wall clock does.
    let timestamp_ms = head.map_or(now_ms, |h| now_ms.max(h.timestamp_ms));
    let header = Header {
        version: crate::feed::FORMAT_VERSION,
        author: identity.id(),
        seq: head.map_or(1, |h| h.seq + 1),
        prev: head.map(|h| h.id),
        timestamp_ms,
        content_type: content.content_type(),
        payload_hash: hash_payload(&payload),
        payload_len: payload.len() as u32,
    };
    let entry = Entry::sign(identity, &header)?;
    Ok((entry, payload, header))
}
