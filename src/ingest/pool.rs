//! The ingest pipeline's verifiers: one thread per core, each checking and verifying whole parts
//! of a batch ([`prepare_here`]), so that verification runs on every core while the committer
//! writes the parts already verified.
//!
//! A batch is cut into parts of at most [`VERIFY_CHUNK_MAX`] ops (one batch verification each)
//! and the parts are queued at once; an idle verifier takes the next part, so no core waits on
//! another (a part is the unit of work, not a fixed share of the batch per core). The
//! [`Verifying`] handle gives the parts back **in batch order**, each waited for, which is what
//! [`crate::ingest::commit_parts`] applies in one transaction: while it writes part k, the
//! verifiers work on the parts after it, and on the next batch's while it commits.
//!
//! Bounds: at most [`VERIFY_PARTS_QUEUED_MAX`] parts wait (three batches: one committing, one
//! queued for the committer, one being handed over); a full queue refuses the batch with
//! [`IngestError::Busy`]. A verifier that panics on a part is caught: that part's result never
//! comes, so the batch waiting on it fails as a whole ([`IngestError::WriterDown`]) and writes
//! nothing; the thread goes on with the next part. The threads end when the [`Verifiers`] is
//! dropped and the parts already queued are done.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use crate::ingest::{prepare_here, IngestError, Op, PreparedBatch};
use crate::limits::{VERIFY_CHUNK_MAX, VERIFY_PARTS_QUEUED_MAX};

/// One part of a batch to check and verify, and where its result goes.
struct Part {
    ops: Vec<Op>,
    now_ms: u64,
    done: SyncSender<PreparedBatch>,
}

/// The verifier threads.
pub struct Verifiers {
    queue: SyncSender<Part>,
    threads: usize,
}

/// One batch being verified: its parts' results, in order.
pub struct Verifying {
    parts: Vec<Receiver<PreparedBatch>>,
}

impl Verifiers {
    /// Start `threads` verifier threads (at least one).
    pub fn start(threads: usize) -> Result<Verifiers, std::io::Error> {
        let threads = threads.max(1);
        let (queue, parts) = sync_channel::<Part>(VERIFY_PARTS_QUEUED_MAX);
        let parts = Arc::new(Mutex::new(parts));
        for i in 0..threads {
            let parts = Arc::clone(&parts);
            std::thread::Builder::new()
                .name(format!("kith-verify-{i}"))
                .spawn(move || verifier(&parts))?;
        }
        Ok(Verifiers { queue, threads })
    }

    /// Start one verifier per core.
    pub fn per_core() -> Result<Verifiers, std::io::Error> {
        Verifiers::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// How many verifier threads run.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Cut `ops` into parts and queue them all; returns at once.
    pub fn verify(&self, ops: Vec<Op>, now_ms: u64) -> Result<Verifying, IngestError> {
        let total = ops.len();
        let mut parts = Vec::with_capacity(total.div_ceil(VERIFY_CHUNK_MAX));
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let part: Vec<Op> = ops.by_ref().take(VERIFY_CHUNK_MAX).collect();
            let (done, result) = sync_channel(1);
            match self.queue.try_send(Part {
                ops: part,
                now_ms,
                done,
            }) {
                Ok(()) => parts.push(result),
                // Parts already queued still run; their results are dropped with `parts`.
                Err(TrySendError::Full(_)) => return Err(IngestError::Busy(total)),
                Err(TrySendError::Disconnected(_)) => {
                    return Err(IngestError::WriterDown(
                        "the verifier threads are gone".into(),
                    ))
                }
            }
        }
        Ok(Verifying { parts })
    }
}

impl Verifying {
    /// The parts in batch order, each waited for; a part whose verifier crashed is an error.
    pub fn into_parts(self) -> impl Iterator<Item = Result<PreparedBatch, IngestError>> {
        self.parts.into_iter().map(|part| {
            part.recv()
                .map_err(|_| IngestError::WriterDown("a verifier thread crashed".into()))
        })
    }
}

/// One verifier: takes the next part, prepares it, sends the result back; ends when the queue
/// closes.
fn verifier(parts: &Mutex<Receiver<Part>>) {
    loop {
        let next = {
            // The lock guards only the receiver; a poisoned one is still a working receiver.
            let queue = parts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.recv()
        };
        let Ok(Part { ops, now_ms, done }) = next else {
            return;
        };
        // A panic drops `done` unsent: the batch waiting on it fails, never counts as valid.
        if let Ok(prepared) = catch_unwind(AssertUnwindSafe(|| prepare_here(ops, now_ms))) {
            // The batch may have been abandoned meanwhile; then nobody wants the part.
            let _ = done.send(prepared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{now_ms, signed_posts, FeedError};
    use crate::identity::Identity;
    use crate::ingest::{commit_parts, OpOutcome};
    use crate::store::Store;

    /// `count` chained entries of one author, as replication would deliver them.
    fn feed(seed: u8, count: usize) -> Vec<Op> {
        signed_posts(&Identity::from_seed([seed; 32]), None, count)
            .into_iter()
            .map(|(entry, payload, _)| Op::Remote {
                entry,
                payload: Some(payload),
                feed: None,
            })
            .collect()
    }

    #[test]
    fn parts_come_back_in_batch_order_and_commit_as_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = Identity::from_seed([1; 32]);
        let verifiers = Verifiers::start(3).unwrap();
        // Several parts, whose later entries depend on the earlier ones being applied first.
        let count = VERIFY_CHUNK_MAX * 2 + 7;
        let ops = feed(2, count);
        let verifying = verifiers.verify(ops, now_ms()).unwrap();
        let outcomes = commit_parts(&store, &me, verifying.into_parts(), now_ms()).unwrap();
        assert_eq!(outcomes.len(), count);
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Ok(OpOutcome::Appended { seq, .. }) => assert_eq!(*seq, i as u64 + 1),
                other => panic!("entry {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_forged_entry_in_one_part_is_refused_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = Identity::from_seed([1; 32]);
        let verifiers = Verifiers::start(2).unwrap();
        let mut ops = feed(3, VERIFY_CHUNK_MAX + 10);
        // Flip a signature byte of the last entry (in the second part).
        if let Some(Op::Remote { entry, .. }) = ops.last_mut() {
            entry.0[0] ^= 1;
        }
        let verifying = verifiers.verify(ops, now_ms()).unwrap();
        let outcomes = commit_parts(&store, &me, verifying.into_parts(), now_ms()).unwrap();
        let refused: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(refused, vec![VERIFY_CHUNK_MAX + 9]);
        assert!(
            matches!(
                outcomes[VERIFY_CHUNK_MAX + 9],
                Err(FeedError::BadSignature { .. })
            ),
            "{:?}",
            outcomes[VERIFY_CHUNK_MAX + 9]
        );
    }

    #[test]
    fn a_lost_part_aborts_the_whole_batch_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = Identity::from_seed([1; 32]);
        let ops = feed(4, 10);
        let author = Identity::from_seed([4; 32]).id();
        // The first part is verified; the second never comes (its verifier crashed).
        let parts = vec![
            Ok(crate::ingest::prepare(ops, now_ms())),
            Err(IngestError::WriterDown("a verifier thread crashed".into())),
        ];
        let result = commit_parts(&store, &me, parts, now_ms());
        assert!(
            matches!(result, Err(IngestError::WriterDown(_))),
            "{result:?}"
        );
        assert_eq!(store.read().unwrap().head(&author).unwrap(), None);
    }

    #[test]
    fn a_full_queue_refuses_the_batch_as_busy() {
        // No verifier threads take parts off the queue: it fills up.
        let (queue, _parts) = sync_channel::<Part>(1);
        let verifiers = Verifiers { queue, threads: 0 };
        let ops = feed(5, VERIFY_CHUNK_MAX * 2);
        assert!(matches!(
            verifiers.verify(ops, now_ms()),
            Err(IngestError::Busy(n)) if n == VERIFY_CHUNK_MAX * 2
        ));
    }
}
