//! The blob exchange on a peer connection: one QUIC stream per blob, opened by the fetcher.
//!
//! ```text
//! fetcher → server   frame  BlobWant { id, max_bytes }
//! server  → fetcher  frame  BlobReply::Blob { size }      then the bao stream, raw, and FIN
//!                     or    BlobReply::Refused(reason)     and FIN
//! fetcher → server   frame  BlobVerdict::Refused(reason)  when the stream failed verification
//!                     or    BlobVerdict::Stored            when the blob was kept
//! ```
//!
//! Frames are the length-prefixed postcard frames of `net::frame`, at most
//! [`BLOB_FRAME_BYTES_MAX`](crate::limits::BLOB_FRAME_BYTES_MAX) each; the bao stream between
//! them is raw bytes of a length both sides know from `size` ([`super::verify::encoded_len`]).
//! A fetcher that refuses a stream says why by name, so the serving node's log says which of
//! its blobs is damaged or which peer thinks so.

use serde::{Deserialize, Serialize};

use crate::blob::verify::VerifyError;
use crate::blob::BlobId;

/// The fetcher's request: one blob, and the largest size it will take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobWant {
    /// Which blob.
    pub id: BlobId,
    /// The fetcher refuses anything longer (its per-blob limit).
    pub max_bytes: u64,
}

/// The server's answer to a [`BlobWant`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobReply {
    /// Here it comes: `size` bytes of blob, as a bao stream after this frame.
    Blob {
        /// The blob's size.
        size: u64,
    },
    /// Not served, and why.
    Refused(ServeRefusal),
}

/// Why a server does not serve a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServeRefusal {
    /// It does not hold it.
    #[error("the peer does not hold this blob")]
    NotHeld,
    /// It is longer than the fetcher said it takes.
    #[error("the blob is {size} bytes, over the {max} the fetcher takes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The fetcher's limit.
        max: u64,
    },
    /// Too many blobs are being served at once; try later.
    #[error("the peer is serving as many blobs as it can; try later")]
    Busy,
    /// Its copy no longer matches its hash (a damaged disk): it will not pass it on.
    #[error("the peer's copy is damaged")]
    Damaged,
}

/// The fetcher's last word on a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobVerdict {
    /// Verified and kept.
    Stored,
    /// Refused, and why.
    Refused(FetchRefusal),
}

/// Why a fetcher refused what a server sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FetchRefusal {
    /// The bytes failed verification against the blob's hash.
    #[error("{0}")]
    Corrupt(VerifyError),
    /// The announced size is over the fetcher's limit.
    #[error("the blob is {size} bytes, over the {max} this node takes")]
    TooLarge {
        /// The size announced.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The announced size is not the one the post that attaches it gave.
    #[error("the blob was announced as {announced} bytes but its post says {expected}")]
    SizeMismatch {
        /// The size announced.
        announced: u64,
        /// The size in the post.
        expected: u64,
    },
    /// Keeping it would pass the fetcher's total budget.
    #[error("the fetcher's blob budget is full")]
    OverBudget,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::BLOB_FRAME_BYTES_MAX;
    use crate::net::frame;

    #[test]
    fn every_message_fits_its_frame_and_round_trips() {
        let want = BlobWant {
            id: BlobId([7; 32]),
            max_bytes: u64::MAX,
        };
        let replies = [
            BlobReply::Blob { size: u64::MAX },
            BlobReply::Refused(ServeRefusal::TooLarge {
                size: u64::MAX,
                max: u64::MAX,
            }),
        ];
        let verdicts = [
            BlobVerdict::Stored,
            BlobVerdict::Refused(FetchRefusal::Corrupt(VerifyError::ChunkMismatch {
                offset: u64::MAX,
            })),
        ];
        let bytes = frame::encode(&want, BLOB_FRAME_BYTES_MAX).unwrap();
        assert!(bytes.len() < 128);
        for reply in replies {
            let bytes = frame::encode(&reply, BLOB_FRAME_BYTES_MAX).unwrap();
            let body = &bytes[bytes.len() - postcard::to_stdvec(&reply).unwrap().len()..];
            assert_eq!(frame::decode_body::<BlobReply>(body).unwrap(), reply);
        }
        for verdict in verdicts {
            let body = postcard::to_stdvec(&verdict).unwrap();
            assert_eq!(frame::decode_body::<BlobVerdict>(&body).unwrap(), verdict);
        }
    }
}
