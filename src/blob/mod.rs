//! Blobs: files (an image, a document) named by the BLAKE3 hash of their bytes, kept beside the
//! LMDB store as plain files and fetched from peers by verified streaming (issue 15, item 2).
//!
//! Shared by whoever stores, serves or fetches blobs; the daemon's actors that do so live in
//! `daemon/blob/`. The decisions are sans-IO and tested alone:
//!
//! - [`id`]: a blob's name ([`BlobId`], shown `&<base64>.b3`) and how a post refers to one
//!   ([`BlobRef`]);
//! - [`verify`]: checks a bao-encoded stream chunk group by chunk group as bytes arrive, so a
//!   peer that lies is caught at the first bad 16 KiB, not after the whole blob;
//! - [`wire`]: the `BlobWant` / `Blob` exchange on its own QUIC stream;
//! - [`plan`]: which referenced blobs to fetch, from whom, when to retry, which held blobs to
//!   drop (their feeds were unfollowed or blocked), and whether to serve a request;
//! - [`store`]: the files, written atomically (temp file, fsync, rename, fsync of the folder).

pub mod error;
pub mod id;
pub mod plan;
pub mod store;
pub mod verify;
pub mod wire;

pub use error::BlobError;
pub use id::{BlobId, BlobRef};
pub use store::{BlobLimits, BlobStore, HeldBlob};
