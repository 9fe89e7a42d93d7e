//! Verified streaming: check a blob's bytes against its BLAKE3 hash while they arrive, 16 KiB
//! at a time, so that a peer serving bad bytes is caught at the first bad chunk group and
//! nothing it sent is kept.
//!
//! The stream is bao's pre-order encoding of the whole blob (parent hash pairs interleaved with
//! the data), with chunk groups of 16 KiB ([`BLOCK`]): 64 bytes of hashes per 16 KiB of data.
//! Why `bao-tree` (n0's crate, the encoding iroh-blobs uses): it gives the tree geometry (which
//! item comes next, how long it is, whether it is the root) and the serving side's encoder,
//! tested against the `bao` reference; the hashing of one item is BLAKE3's own `hazmat`
//! (subtree chaining values and merges) from the `blake3` crate. What is left here is the push
//! API: bytes in, verified data out, in any split. bao-tree's own decoders pull from a reader
//! (`std::io::Read` or an async stream), which would put the I/O inside the decision; this one
//! takes whatever bytes the connection delivered and is fuzzed and unit-tested alone.

use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::encode_ranges_validated;
use bao_tree::iter::{BaoChunk, ResponseIter};
use bao_tree::{BaoTree, BlockSize, ChunkRanges};
use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

use crate::blob::BlobId;
use crate::limits::BLOB_BYTES_CEILING;

/// Chunk groups of 16 KiB (2^4 BLAKE3 chunks of 1 KiB): one parent pair per 16 KiB.
pub const BLOCK: BlockSize = BlockSize::from_chunk_log(4);

/// Why a stream was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum VerifyError {
    /// The data of the chunk group at `offset` does not hash to what the tree says.
    #[error("the chunk at byte {offset} does not match the blob's hash")]
    ChunkMismatch {
        /// Its byte offset in the blob.
        offset: u64,
    },
    /// A pair of subtree hashes (covering bytes from `offset`) does not merge to its parent.
    #[error("the hash tree node at byte {offset} does not match the blob's hash")]
    ParentMismatch {
        /// The byte offset of the first chunk under the node.
        offset: u64,
    },
    /// Bytes after the end of the blob's encoding.
    #[error("{extra} bytes after the end of the blob")]
    TrailingBytes {
        /// How many (in the push that overflowed).
        extra: u64,
    },
    /// The stream ended before the whole blob had been received.
    #[error("the stream ended after {have} of {size} bytes")]
    Truncated {
        /// Verified bytes received.
        have: u64,
        /// The blob's size.
        size: u64,
    },
    /// The tree is deeper than any blob under the limits could make (a lied-about size).
    #[error("a blob of {size} bytes is larger than any this node accepts")]
    Oversized {
        /// The size announced.
        size: u64,
    },
}

/// Verified data: `data` is the blob's bytes from `offset` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Byte offset in the blob.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Checks one blob's bao stream as it arrives.
pub struct Verifier {
    size: u64,
    items: ResponseIter,
    next: Option<BaoChunk>,
    /// Hashes still to be matched, the next one on top (at most the tree's depth + 1).
    stack: Vec<blake3::Hash>,
    buf: Vec<u8>,
    have: u64,
    failed: Option<VerifyError>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("size", &self.size)
            .field("have", &self.have)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for blob `id`, announced as `size` bytes long.
    pub fn new(id: BlobId, size: u64) -> Verifier {
        // A size past the ceiling is refused before its tree is even laid out.
        let failed = (size > BLOB_BYTES_CEILING).then_some(VerifyError::Oversized { size });
        let tree = BaoTree::new(if failed.is_some() { 0 } else { size }, BLOCK);
        let mut items = ResponseIter::new(tree, ChunkRanges::all());
        let next = items.next();
        Verifier {
            size,
            items,
            next,
            stack: vec![blake3::Hash::from(id.0)],
            buf: Vec::new(),
            have: 0,
            failed,
        }
    }

    /// Take `input` (any split of the stream); verified data is appended to `out`. After an
    /// error every later push fails with it.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<Verified>) -> Result<(), VerifyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = loop {
            let Some(item) = self.next.as_ref() else {
                break if input.is_empty() {
                    Ok(())
                } else {
                    Err(VerifyError::TrailingBytes {
                        extra: input.len() as u64,
                    })
                };
            };
            let need = match item {
                BaoChunk::Parent { .. } => 64,
                BaoChunk::Leaf { size, .. } => *size,
            };
            let take = need.saturating_sub(self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.buf.len() < need {
                break Ok(());
            }
            if let Err(e) = self.check(out) {
                break Err(e);
            }
            self.next = self.items.next();
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Whether the whole blob has been received and verified.
    pub fn is_done(&self) -> bool {
        self.failed.is_none() && self.next.is_none()
    }

    /// The stream ended: fine if the whole blob was received. (An empty blob's one item is
    /// empty too: it is checked here if no push came.)
    pub fn finish(&mut self) -> Result<(), VerifyError> {
        let mut none = Vec::new();
        let _ = self.push(&[], &mut none);
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if self.next.is_some() => Err(VerifyError::Truncated {
                have: self.have,
                size: self.size,
            }),
            None => Ok(()),
        }
    }

    /// Verified bytes so far.
    pub fn verified_bytes(&self) -> u64 {
        self.have
    }

    /// Check the complete item in `buf` against the hash on top of the stack.
    fn check(&mut self, out: &mut Vec<Verified>) -> Result<(), VerifyError> {
        let expected = self.stack.pop();
        match self.next.as_ref() {
            Some(BaoChunk::Parent {
                is_root,
                left,
                right,
                node,
                ..
            }) => {
                let offset = node.chunk_range().start.to_bytes();
                let mut l = [0u8; 32];
                let mut r = [0u8; 32];
                l.copy_from_slice(&self.buf[..32]);
                r.copy_from_slice(&self.buf[32..64]);
                let actual = if *is_root {
                    merge_subtrees_root(&l, &r, Mode::Hash)
                } else {
                    blake3::Hash::from(merge_subtrees_non_root(&l, &r, Mode::Hash))
                };
                if expected != Some(actual) {
                    return Err(VerifyError::ParentMismatch { offset });
                }
                if *right {
                    self.stack.push(blake3::Hash::from(r));
                }
                if *left {
                    self.stack.push(blake3::Hash::from(l));
                }
                self.buf.clear();
            }
            Some(BaoChunk::Leaf {
                start_chunk,
                is_root,
                ..
            }) => {
                let offset = start_chunk.to_bytes();
                let actual = if *is_root {
                    blake3::hash(&self.buf)
                } else {
                    let mut hasher = blake3::Hasher::new();
                    hasher.set_input_offset(offset);
                    hasher.update(&self.buf);
                    blake3::Hash::from(hasher.finalize_non_root())
                };
                if expected != Some(actual) {
                    return Err(VerifyError::ChunkMismatch { offset });
                }
                let data = std::mem::take(&mut self.buf);
                self.have += data.len() as u64;
                out.push(Verified { offset, data });
            }
            None => {}
        }
        Ok(())
    }
}

/// The bao stream of `data` (what a server sends after saying how long the blob is), and its id.
pub fn encode(data: &[u8]) -> Result<(BlobId, Vec<u8>), std::io::Error> {
    let outboard = PreOrderMemOutboard::create(data, BLOCK);
    let id = BlobId(*outboard.root.as_bytes());
    let mut out = Vec::with_capacity(encoded_len(data.len() as u64) as usize);
    encode_ranges_validated(data, &outboard, &ChunkRanges::all(), &mut out)
        .map_err(std::io::Error::from)?;
    Ok((id, out))
}

/// Length of the bao stream of a blob of `size` bytes: the data and 64 bytes per parent.
pub fn encoded_len(size: u64) -> u64 {
    let blocks = size.div_ceil(BLOCK.bytes() as u64).max(1);
    size.saturating_add(64u64.saturating_mul(blocks - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn run(id: BlobId, size: u64, stream: &[u8], split: usize) -> Result<Vec<u8>, VerifyError> {
        let mut v = Verifier::new(id, size);
        let mut out = Vec::new();
        for piece in stream.chunks(split.max(1)) {
            v.push(piece, &mut out)?;
        }
        v.finish()?;
        let mut bytes = Vec::new();
        for Verified { offset, data } in out {
            assert_eq!(offset, bytes.len() as u64, "verified data arrives in order");
            bytes.extend(data);
        }
        Ok(bytes)
    }

    #[test]
    fn every_size_and_split_verifies_and_yields_the_bytes() {
        for len in [0, 1, 1023, 1024, 16 * 1024, 16 * 1024 + 1, 100_000, 300_001] {
            let bytes = data(len);
            let (id, stream) = encode(&bytes).unwrap();
            assert_eq!(id, BlobId::of(&bytes));
            assert_eq!(stream.len() as u64, encoded_len(len as u64), "len {len}");
            for split in [1, 63, 64, 65, 4096, 16 * 1024 + 64, usize::MAX] {
                if len > 20_000 && split < 64 {
                    continue;
                }
                assert_eq!(run(id, len as u64, &stream, split).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn a_flipped_data_byte_is_caught_at_its_chunk_and_nothing_after_it_is_yielded() {
        let bytes = data(100_000);
        let (id, mut stream) = encode(&bytes).unwrap();
        // The last byte of the stream is data of the last chunk group (offset 98,304).
        let last = stream.len() - 1;
        stream[last] ^= 1;
        assert_eq!(
            run(id, 100_000, &stream, 1000),
            Err(VerifyError::ChunkMismatch { offset: 98_304 })
        );
        let mut v = Verifier::new(id, 100_000);
        let mut out = Vec::new();
        assert!(v.push(&stream, &mut out).is_err());
        assert!(out.iter().all(|piece| piece.offset < 98_304));
        assert!(v.push(&[], &mut out).is_err(), "an error sticks");
        assert!(!v.is_done());
    }

    #[test]
    fn a_flipped_hash_byte_is_caught_before_any_data() {
        let bytes = data(100_000);
        let (id, mut stream) = encode(&bytes).unwrap();
        stream[3] ^= 0x80;
        let mut v = Verifier::new(id, 100_000);
        let mut out = Vec::new();
        assert_eq!(
            v.push(&stream, &mut out),
            Err(VerifyError::ParentMismatch { offset: 0 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn other_bytes_under_the_right_id_are_refused() {
        let (id, _) = encode(b"the real blob").unwrap();
        let (_, other) = encode(b"a fake blob!!").unwrap();
        assert_eq!(
            run(id, 13, &other, 5),
            Err(VerifyError::ChunkMismatch { offset: 0 })
        );
        // A lie about the size changes the tree: refused too.
        let (_, stream) = encode(b"the real blob").unwrap();
        assert!(run(id, 12, &stream, 64).is_err());
        assert!(run(id, 14, &stream, 64).is_err());
    }

    #[test]
    fn a_short_or_long_stream_is_refused_by_name() {
        let bytes = data(40_000);
        let (id, stream) = encode(&bytes).unwrap();
        assert!(matches!(
            run(id, 40_000, &stream[..stream.len() - 1], 4096),
            Err(VerifyError::Truncated { size: 40_000, .. })
        ));
        let mut long = stream.clone();
        long.extend_from_slice(b"xyz");
        assert_eq!(
            run(id, 40_000, &long, 4096),
            Err(VerifyError::TrailingBytes { extra: 3 })
        );
    }

    #[test]
    fn an_absurd_size_is_refused_up_front() {
        let mut v = Verifier::new(BlobId([0; 32]), u64::MAX);
        assert!(matches!(
            v.push(&[0; 64], &mut Vec::new()),
            Err(VerifyError::Oversized { .. })
        ));
    }
}
