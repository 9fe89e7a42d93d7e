//! The ingest pipeline: the one path every entry takes into the store.
//!
//! Own posts and (later) replicated entries alike arrive as [`Op`]s. A batch of ops is checked
//! structurally, its signatures are verified in ed25519 batches on all cores (falling back to
//! strict per-entry verification to find a bad one), and then everything is written in **one**
//! LMDB transaction. Each op gets its own outcome: one forged entry does not sink its batch. The
//! two halves ([`prepare`] on all cores, [`commit`] in LMDB) run as a pipeline in the store
//! writer: a batch is cut into parts that the [`Verifiers`] (one thread per core) check and
//! verify while the committer applies the parts already verified, in order, in the batch's one
//! transaction ([`commit_parts`]); the next batch is verified while the previous one commits.

mod batch;
mod pool;
mod verify;

pub use batch::{
    commit, commit_parts, prepare, prepare_here, run_batch, Op, OpOutcome, PreparedBatch,
};
pub use pool::{Verifiers, Verifying};
pub use verify::{
    batch_valid, check_and_verify, check_and_verify_here, verify_signatures, Unchecked,
};

/// Why a whole batch failed (as opposed to one entry in it).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed; nothing in the batch was written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Too much is already queued; try again shortly.
    #[error("the ingest queue is full ({0} entries waiting); try again shortly")]
    Busy(usize),
    /// The own feed is being fetched back from followers (`--resync-own-feed`): appending to it
    /// now would fork it.
    #[error("resyncing your own feed from followers: have {have} of {want}; posting resumes once it is complete")]
    Resyncing {
        /// The store's own head.
        have: u64,
        /// The last own sequence recorded before the store was emptied.
        want: u64,
    },
    /// The store writer is not running.
    #[error("the store writer is not running: {0}")]
    WriterDown(String),
}
