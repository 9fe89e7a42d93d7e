//! One batch: check, verify, then apply every op in a single write transaction.

use crate::feed::{
    check_sequence, next_entry, Checked, Content, Entry, FeedError, MsgId, Placement,
};
use crate::identity::{FeedId, Identity};
use crate::ingest::{check_and_verify, check_and_verify_here, IngestError, Unchecked};
use crate::rolodex::RolodexEntry;
use crate::store::{Store, Writer};

/// One thing to write.
#[derive(Debug)]
pub enum Op {
    /// Sign `content` as the next entry of this node's own feed.
    Publish(Content),
    /// An entry from another node (or a replayed one of ours).
    Remote {
        /// The exact entry bytes.
        entry: Entry,
        /// Its payload, if it travelled along.
        payload: Option<Vec<u8>>,
        /// The feed it was delivered as part of, if any.
        feed: Option<FeedId>,
    },
    /// Save a rolodex entry.
    Rolodex(RolodexEntry),
    /// Save what this node remembers of its exchange with a peer.
    PeerMemory(FeedId, crate::replicate::PeerMemory),
    /// Remember a switchboard (`HOST:PORT`, full target with its pinned key).
    Switchboard(String, String),
    /// Forget a remembered switchboard (`HOST:PORT`): `kith switchboards forget`.
    ForgetSwitchboard(String),
}

/// What happened to one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// The entry is now durable.
    Appended {
        /// Its id.
        id: MsgId,
        /// Its author.
        author: FeedId,
        /// Its sequence.
        seq: u64,
        /// Its content, if the payload came along (for rolodex side effects).
        content: Option<Content>,
    },
    /// The store already held exactly this entry.
    Duplicate(MsgId),
    /// The rolodex entry is durable.
    RolodexSaved(FeedId),
    /// The peer memory is durable.
    PeerMemorySaved(FeedId),
    /// The switchboard is remembered.
    SwitchboardSaved,
    /// The switchboard is forgotten (true if it was remembered).
    SwitchboardForgotten(bool),
}

/// A batch whose entries are checked and verified, ready to be committed.
pub struct PreparedBatch(Vec<Prepared>);

impl PreparedBatch {
    /// Number of ops.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// The large variant lives only for the length of one batch; boxing it would cost an
// allocation per entry on the hot path.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Publish(Content),
    Remote(Result<Checked, FeedError>),
    Rolodex(RolodexEntry),
    PeerMemory(FeedId, crate::replicate::PeerMemory),
    Switchboard(String, String),
    ForgetSwitchboard(String),
}

/// Run one batch against `store`. The outer error means nothing was written; otherwise each op
/// has its own outcome and all successful ones were committed together.
pub fn run_batch(
    store: &Store,
    identity: &Identity,
    ops: Vec<Op>,
    now_ms: u64,
) -> Result<Vec<Result<OpOutcome, FeedError>>, IngestError> {
    commit(store, identity, prepare(ops, now_ms), now_ms)
}

/// The CPU half of a batch: check and verify every remote entry on all cores.
pub fn prepare(ops: Vec<Op>, now_ms: u64) -> PreparedBatch {
    PreparedBatch(prepare_ops(ops, now_ms, check_and_verify))
}

/// [`prepare`] on this thread only: for one part of a batch, on a verifier thread of a caller
/// that runs one per core ([`crate::ingest::Verifiers`]).
pub fn prepare_here(ops: Vec<Op>, now_ms: u64) -> PreparedBatch {
    PreparedBatch(prepare_ops(ops, now_ms, check_and_verify_here))
}

/// The store half of a batch: sequence checks, signing own entries, and one write transaction.
pub fn commit(
    store: &Store,
    identity: &Identity,
    batch: PreparedBatch,
    now_ms: u64,
) -> Result<Vec<Result<OpOutcome, FeedError>>, IngestError> {
    commit_parts(store, identity, [Ok(batch)], now_ms)
}

/// [`commit`] for a batch prepared in parts, applied in order as they come, all in **one** write
/// transaction: `parts` may block while the next part is still being verified, so the store is
/// written while the other cores verify. A part that failed (`Err`) aborts the transaction:
/// nothing of the batch is written.
pub fn commit_parts(
    store: &Store,
    identity: &Identity,
    parts: impl IntoIterator<Item = Result<PreparedBatch, IngestError>>,
    now_ms: u64,
) -> Result<Vec<Result<OpOutcome, FeedError>>, IngestError> {
    store.write(|writer| {
        let mut out = Vec::new();
        for part in parts {
            for op in part?.0 {
                out.push(apply(writer, identity, op, now_ms)?);
            }
        }
        Ok(out)
    })
}

/// Check and verify all remote entries with `verify`, keeping every op in its place.
fn prepare_ops(
    ops: Vec<Op>,
    now_ms: u64,
    verify: fn(Vec<Unchecked>, u64) -> Vec<Result<Checked, FeedError>>,
) -> Vec<Prepared> {
    let mut remote = Vec::new();
    let mut slots = Vec::with_capacity(ops.len());
    for op in ops {
        slots.push(match op {
            Op::Publish(content) => Some(Prepared::Publish(content)),
            Op::Remote {
                entry,
                payload,
                feed,
            } => {
                remote.push((entry, payload, feed));
                None
            }
            Op::Rolodex(entry) => Some(Prepared::Rolodex(entry)),
            Op::PeerMemory(peer, memory) => Some(Prepared::PeerMemory(peer, memory)),
            Op::Switchboard(host, target) => Some(Prepared::Switchboard(host, target)),
            Op::ForgetSwitchboard(host) => Some(Prepared::ForgetSwitchboard(host)),
        });
    }
    let mut verified = verify(remote, now_ms).into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Some(prepared) => prepared,
            None => Prepared::Remote(
                verified
                    .next()
                    .unwrap_or_else(|| Err(FeedError::HeaderMalformed("lost in checking".into()))),
            ),
        })
        .collect()
}

fn apply(
    writer: &mut Writer<'_>,
    identity: &Identity,
    op: Prepared,
    now_ms: u64,
) -> Result<Result<OpOutcome, FeedError>, IngestError> {
    Ok(match op {
        Prepared::Publish(content) => publish(writer, identity, content, now_ms)?,
        Prepared::Remote(Ok(checked)) => append_remote(writer, checked)?,
        Prepared::Remote(Err(e)) => Err(e),
        Prepared::Rolodex(entry) => {
            writer.put_rolodex(&entry)?;
            Ok(OpOutcome::RolodexSaved(entry.id))
        }
        Prepared::PeerMemory(peer, memory) => {
            writer.put_peer_memory(&peer, &memory)?;
            Ok(OpOutcome::PeerMemorySaved(peer))
        }
        Prepared::Switchboard(host, target) => {
            writer.put_switchboard(&host, &target)?;
            Ok(OpOutcome::SwitchboardSaved)
        }
        Prepared::ForgetSwitchboard(host) => {
            let was = writer.delete_switchboard(&host)?;
            Ok(OpOutcome::SwitchboardForgotten(was))
        }
    })
}

fn publish(
    writer: &mut Writer<'_>,
    identity: &Identity,
    content: Content,
    now_ms: u64,
) -> Result<Result<OpOutcome, FeedError>, IngestError> {
    let head = writer.head(&identity.id())?;
    let (entry, payload, header) = match next_entry(identity, head.as_ref(), &content, now_ms) {
        Ok(made) => made,
        Err(e) => return Ok(Err(e)),
    };
    let id = entry.id();
    let key = identity.signing_key().verifying_key();
    let (signature, _) = match entry.parts() {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    let checked = Checked {
        entry,
        header,
        id,
        key,
        signature,
        payload: Some(payload),
    };
    writer.append(&checked)?;
    let (author, seq) = (checked.header.author, checked.header.seq);
    Ok(Ok(OpOutcome::Appended {
        id,
        author,
        seq,
        content: Some(content),
    }))
}

fn append_remote(
    writer: &mut Writer<'_>,
    checked: Checked,
) -> Result<Result<OpOutcome, FeedError>, IngestError> {
    let author = checked.header.author;
    let seq = checked.header.seq;
    let head = writer.head(&author)?;
    match check_sequence(head.as_ref(), &checked) {
        Err(e) => Ok(Err(e)),
        Ok(Placement::Held) => {
            let held = writer.entry(&author, seq)?.map(|e| e.id());
            if held == Some(checked.id) {
                Ok(Ok(OpOutcome::Duplicate(checked.id)))
            } else {
                Ok(Err(FeedError::Fork { author, seq }))
            }
        }
        Ok(Placement::Next) => {
            writer.append(&checked)?;
            let content = checked.content().and_then(Result::ok);
            Ok(Ok(OpOutcome::Appended {
                id: checked.id,
                author,
                seq,
                content,
            }))
        }
    }
}
