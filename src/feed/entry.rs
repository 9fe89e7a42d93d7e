//! The entry: a signed header in its exact bytes, and the ids derived from those bytes.
//!
//! Layout of an encoded entry: 64 bytes of ed25519 signature, then the postcard header bytes
//! that the signature covers. The message id is the BLAKE3 hash of the whole encoded entry, so
//! the id commits to both the header and its signature.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer};
use serde::{Deserialize, Serialize};

use crate::feed::{ContentType, FeedError};
use crate::identity::{FeedId, Identity};
use crate::limits::HEADER_BYTES_MAX;

/// The header format this node writes and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;
const SIGNATURE_BYTES: usize = 64;

/// A message id: BLAKE3 of the encoded entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MsgId(pub [u8; 32]);

/// BLAKE3 of a payload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PayloadHash(pub [u8; 32]);

/// What the author signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u8,
    /// The author's key.
    pub author: FeedId,
    /// Position in the author's feed, from 1.
    pub seq: u64,
    /// Id of the entry at `seq - 1`; `None` only for seq 1.
    pub prev: Option<MsgId>,
    /// The author's clock when signing, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// What the payload holds.
    pub content_type: ContentType,
    /// BLAKE3 of the payload.
    pub payload_hash: PayloadHash,
    /// Length of the payload in bytes.
    pub payload_len: u32,
}

/// An encoded, signed entry: the exact bytes that are stored and forwarded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry(#[serde(with = "serde_bytes_vec")] pub Vec<u8>);

mod serde_bytes_vec {
    //! Encode the entry as one length-prefixed byte string.
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ptr_arg)] // serde's `with` hands the field as it is declared.
    pub(super) fn serialize<S: Serializer>(bytes: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        <Vec<u8>>::deserialize(d)
    }
}

/// Hash a payload.
pub fn hash_payload(payload: &[u8]) -> PayloadHash {
    PayloadHash(*blake3::hash(payload).as_bytes())
}

impl Entry {
    /// Sign `header` with `identity`, producing the encoded entry.
    pub fn sign(identity: &Identity, header: &Header) -> Result<Entry, FeedError> {
        let header_bytes =
            postcard::to_stdvec(header).map_err(|e| FeedError::HeaderMalformed(e.to_string()))?;
        let signature = identity.signing_key().sign(&header_bytes);
        let mut bytes = Vec::with_capacity(SIGNATURE_BYTES + header_bytes.len());
        bytes.extend_from_slice(&signature.to_bytes());
        bytes.extend_from_slice(&header_bytes);
        Ok(Entry(bytes))
    }

    /// The message id of this entry.
    pub fn id(&self) -> MsgId {
        MsgId(*blake3::hash(&self.0).as_bytes())
    }

    /// Split into signature and header bytes, checking the size bounds first.
    pub fn parts(&self) -> Result<(Signature, &[u8]), FeedError> {
        let max = SIGNATURE_BYTES + HEADER_BYTES_MAX;
        if self.0.len() > max {
            return Err(FeedError::EntryTooLarge {
                len: self.0.len(),
                max,
            });
        }
        if self.0.len() <= SIGNATURE_BYTES {
            return Err(FeedError::HeaderMalformed(format!(
                "only {} bytes",
                self.0.len()
            )));
        }
        let (sig, header) = self.0.split_at(SIGNATURE_BYTES);
        let sig: [u8; SIGNATURE_BYTES] = sig
            .try_into()
            .map_err(|_| FeedError::HeaderMalformed("signature".into()))?;
        Ok((Signature::from_bytes(&sig), header))
    }

    /// Decode the header (without verifying anything).
    pub fn header(&self) -> Result<Header, FeedError> {
        let (_, bytes) = self.parts()?;
        let (header, rest) = postcard::take_from_bytes::<Header>(bytes)
            .map_err(|e| FeedError::HeaderMalformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FeedError::HeaderMalformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        if header.version != FORMAT_VERSION {
            return Err(FeedError::UnsupportedVersion(header.version));
        }
        Ok(header)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({} bytes, {})", self.0.len(), self.id())
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}.b3", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MsgId {
    type Err = FeedError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Bounded: the text may be anything a user or a peer typed.
        let bad = || FeedError::BadMessageId(text.chars().take(80).collect());
        let body = text
            .trim()
            .strip_prefix('%')
            .and_then(|t| t.strip_suffix(".b3"))
            .ok_or_else(bad)?;
        let bytes = STANDARD.decode(body).map_err(|_| bad())?;
        Ok(MsgId(bytes.try_into().map_err(|_| bad())?))
    }
}
