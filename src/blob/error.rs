//! What can go wrong with a blob, each by name, with a sentence that says what to do.

use std::path::PathBuf;

use crate::blob::verify::VerifyError;
use crate::blob::BlobId;

/// A blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Text that is not a blob id.
    #[error("{0:?} is not a blob id; ids look like &<base64>.b3 (see `kith blob ls`)")]
    BadId(String),
    /// An attachment name that is not a plain file name, or too long.
    #[error("{0}")]
    NameInvalid(String),
    /// A blob over the per-blob limit.
    #[error(
        "the blob is {size} bytes; the most allowed is {max} (blobs.max_bytes in config.toml)"
    )]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Storing the blob would pass the total budget.
    #[error(
        "the blob store holds {held} bytes and this blob is {size}; the budget is {budget} \
         (blobs.budget_bytes in config.toml): raise it or unfollow feeds whose files you do not need"
    )]
    OverBudget {
        /// Its size.
        size: u64,
        /// Bytes already held.
        held: u64,
        /// The budget.
        budget: u64,
    },
    /// Bytes whose BLAKE3 hash is not the id they were stored or served under.
    #[error("the bytes do not match blob {expected}: they hash to {actual}; nothing was stored")]
    HashMismatch {
        /// The id asked for.
        expected: BlobId,
        /// What the bytes hash to.
        actual: BlobId,
    },
    /// A stream that failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Not held here.
    #[error(
        "blob {0} is not held here; a followed feed's post that attaches it brings it (see `kith blob ls`)"
    )]
    NotHeld(BlobId),
    /// The blob folder could not be made private (0700).
    #[error(transparent)]
    Dir(#[from] crate::runtime::private_dir::PrivateDirError),
    /// The disk is full.
    #[error("disk full while writing {0}: free some space and try again")]
    DiskFull(PathBuf),
    /// Any other file system failure.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl BlobError {
    /// An I/O failure on `path`; a full disk (ENOSPC, EDQUOT) is [`BlobError::DiskFull`].
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> BlobError {
        let path = path.into();
        if matches!(source.raw_os_error(), Some(28) | Some(122)) {
            return BlobError::DiskFull(path);
        }
        BlobError::Io { what, path, source }
    }
}
