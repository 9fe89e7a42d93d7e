//! Every way an entry can be refused, each its own variant so that callers, logs and tests can
//! tell a forged signature from a fork from a truncated frame.

use crate::feed::MsgId;
use crate::identity::FeedId;

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The encoded entry is larger than any valid entry can be.
    #[error("entry is {len} bytes; the most a header may take is {max}")]
    EntryTooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The entry is too short to hold a signature and a header, or the header does not decode.
    #[error("entry header is malformed: {0}")]
    HeaderMalformed(String),
    /// The header's format version is not one this node understands.
    #[error("entry format version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The author's key is not a valid (or is a weak) ed25519 key.
    #[error("entry author {0} is not a valid ed25519 key")]
    BadAuthorKey(String),
    /// The signature does not verify over the header bytes with the author's key.
    #[error("signature of {author} seq {seq} does not verify")]
    BadSignature {
        /// The claimed author.
        author: FeedId,
        /// The claimed sequence.
        seq: u64,
    },
    /// The entry was delivered for one feed but claims another author.
    #[error("entry claims author {got}, but it was delivered as part of {expected}'s feed")]
    WrongAuthor {
        /// The feed being replicated.
        expected: FeedId,
        /// The header's author.
        got: FeedId,
    },
    /// The sequence number is not the next one in the feed.
    #[error("{author} expected seq {expected}, got {got}")]
    WrongSequence {
        /// The feed.
        author: FeedId,
        /// The next sequence the feed needs.
        expected: u64,
        /// The entry's sequence.
        got: u64,
    },
    /// The previous-entry hash does not name the feed's latest entry.
    #[error("{author} seq {seq} does not link to the previous entry")]
    WrongBacklink {
        /// The feed.
        author: FeedId,
        /// The entry's sequence.
        seq: u64,
    },
    /// A second, different, validly signed entry for a sequence the feed already holds.
    #[error("fork: {author} already has a different entry at seq {seq}; the first one is kept")]
    Fork {
        /// The feed.
        author: FeedId,
        /// The contested sequence.
        seq: u64,
    },
    /// The payload exceeds the size bound (in the header or in fact).
    #[error("payload is {len} bytes; the most allowed is {max}")]
    PayloadTooLarge {
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The payload's hash is not the one the header signs.
    #[error("payload does not match the hash in the signed header")]
    PayloadHashMismatch,
    /// The payload's length is not the one the header signs.
    #[error("payload is {got} bytes; the signed header says {expected}")]
    PayloadLengthMismatch {
        /// Length in the header.
        expected: u32,
        /// Length received.
        got: usize,
    },
    /// The payload does not decode as the content type the header names.
    #[error("payload is malformed: {0}")]
    PayloadMalformed(String),
    /// The timestamp is too far in the future.
    #[error("timestamp {timestamp_ms} is more than the allowed skew ahead of now ({now_ms})")]
    TimestampInFuture {
        /// The entry's timestamp.
        timestamp_ms: u64,
        /// This node's clock.
        now_ms: u64,
    },
    /// The timestamp is before kith existed: a broken clock or a forgery.
    #[error("timestamp {0} is implausibly old")]
    TimestampTooOld(u64),
    /// A content field breaks its bound (text too long, empty post, ...).
    #[error("content refused: {0}")]
    ContentInvalid(String),
    /// The entry names a message id that this check expected to be another.
    #[error("entry {0} is a duplicate of one already held")]
    Duplicate(MsgId),
    /// A reply names its root but not the message it answers, or the other way round.
    #[error("a reply needs both its thread's root and the message it answers")]
    ReplyIncomplete,
    /// A post mentions more feeds than allowed.
    #[error("a post mentions {len} feeds; the most allowed is {max}")]
    TooManyMentions {
        /// How many.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A post lists the same mention twice.
    #[error("a post mentions {0} twice")]
    MentionRepeated(FeedId),
    /// A reaction is empty, too long or holds hidden characters.
    #[error("reaction refused: {0}")]
    ReactionInvalid(String),
    /// A name is too long or holds control or direction characters.
    #[error("name refused: {0}")]
    NameInvalid(String),
    /// Text that should be a message id (`%<base64>.b3`) is not one.
    #[error("`{0}` is not a message id (%<base64>.b3)")]
    BadMessageId(String),
    /// A private message names more recipients than allowed.
    #[error(
        "a private message may have at most {max} recipients besides you; this one names {len}"
    )]
    TooManyRecipients {
        /// How many were named.
        len: usize,
        /// The bound ([`DM_RECIPIENTS_MAX`](crate::limits::DM_RECIPIENTS_MAX)).
        max: usize,
    },
    /// A private message's sealed payload does not have the shape of one, or a slot opened for
    /// this node but the body under it does not decrypt or decode.
    #[error("private message is malformed: {0}")]
    PrivateMalformed(String),
    /// A private message opened here names another author than the feed it is in: someone
    /// republished a message sealed for them.
    #[error("private message in {author}'s feed was sealed by {sealed_by}: a republished message, ignored")]
    PrivateForwarded {
        /// The feed it appeared in.
        author: FeedId,
        /// The author named inside the sealed body.
        sealed_by: FeedId,
    },
    /// A delete entry names a message of another feed.
    #[error("you can only delete your own messages: {msg} is by {author}")]
    DeleteNotOwn {
        /// The message named.
        msg: MsgId,
        /// Its author.
        author: FeedId,
    },
    /// A delete entry names a message that cannot be deleted (not held, not earlier in the same
    /// feed, already deleted, or of a kind that is not deletable).
    #[error("cannot delete {msg}: {why}")]
    DeleteRefused {
        /// The message named.
        msg: MsgId,
        /// Why.
        why: String,
    },
    /// An entry arrived without its payload and no valid delete entry of its author covers it.
    #[error(
        "{author} seq {seq} came without its payload and no delete entry of its author covers it"
    )]
    PayloadMissing {
        /// The feed.
        author: FeedId,
        /// The entry's sequence.
        seq: u64,
    },
    /// A mentioned name belongs to several feeds this node knows.
    #[error("@{name} could be any of {ids:?}; mention one by its full id (see `kith contacts`)")]
    MentionAmbiguous {
        /// The name typed.
        name: String,
        /// The short ids of the feeds that have it.
        ids: Vec<String>,
    },
}
