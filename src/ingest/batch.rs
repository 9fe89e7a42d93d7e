//! One batch: check, verify, then apply every op in a single write transaction.

use crate::feed::deletion::{check_delete, check_tombstone, Tombstone};
use crate::feed::{
    check_sequence, next_entry, Checked, Content, Entry, FeedError, MsgId, Placement,
};
use crate::identity::{FeedId, Identity};
use crate::ingest::{check_and_verify, check_and_verify_here, IngestError, Unchecked};
use crate::replicate::WireEntry;
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
    /// An entry from another node that came without its payload, with the delete entry of its
    /// author that covers it ([`crate::feed::deletion`]). An [`Op::Remote`] without a payload is
    /// refused ([`FeedError::PayloadMissing`]).
    Tombstoned {
        /// The exact entry bytes.
        entry: Entry,
        /// The delete entry (and its payload) that took the payload back.
        tombstone: Tombstone,
        /// The feed it was delivered as part of, if any.
        feed: Option<FeedId>,
    },
}

impl Op {
    /// The op for an entry as it arrived in replication: with its payload, or deleted with its
    /// tombstone (a payload-less entry without one becomes an [`Op::Remote`] that is refused).
    pub fn from_wire(wire: WireEntry, feed: Option<FeedId>) -> Op {
        match (wire.payload, wire.tombstone) {
            (None, Some(tombstone)) => Op::Tombstoned {
                entry: wire.entry,
                tombstone,
                feed,
            },
            (payload, _) => Op::Remote {
                entry: wire.entry,
                payload,
                feed,
            },
        }
    }
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
    Tombstoned(Result<(Checked, Tombstone), FeedError>),
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
    let mut tombstones = Vec::new();
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
                tombstones.push(None);
                None
            }
            Op::Tombstoned {
                entry,
                tombstone,
                feed,
            } => {
                remote.push((entry, None, feed));
                tombstones.push(Some(tombstone));
                None
            }
            Op::Rolodex(entry) => Some(Prepared::Rolodex(entry)),
            Op::PeerMemory(peer, memory) => Some(Prepared::PeerMemory(peer, memory)),
            Op::Switchboard(host, target) => Some(Prepared::Switchboard(host, target)),
            Op::ForgetSwitchboard(host) => Some(Prepared::ForgetSwitchboard(host)),
        });
    }
    let mut verified = verify(remote, now_ms).into_iter().zip(tombstones);
    slots
        .into_iter()
        .map(|slot| match slot {
            Some(prepared) => prepared,
            None => match verified.next() {
                Some((checked, None)) => Prepared::Remote(checked.and_then(|c| {
                    // A payload may be missing only with its author's delete entry beside it.
                    match c.payload {
                        Some(_) => Ok(c),
                        None => Err(FeedError::PayloadMissing {
                            author: c.header.author,
                            seq: c.header.seq,
                        }),
                    }
                })),
                Some((checked, Some(tombstone))) => Prepared::Tombstoned(checked.and_then(|c| {
                    check_tombstone(&c, &tombstone, now_ms)?;
                    Ok((c, tombstone))
                })),
                None => {
                    Prepared::Remote(Err(FeedError::HeaderMalformed("lost in checking".into())))
                }
            },
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
        Prepared::Remote(Ok(checked)) => append_remote(writer, identity, checked, None)?,
        Prepared::Remote(Err(e)) | Prepared::Tombstoned(Err(e)) => Err(e),
        Prepared::Tombstoned(Ok((checked, tombstone))) => {
            append_remote(writer, identity, checked, Some(tombstone))?
        }
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
        decoded: Some(content),
    };
    let opened = match before_append(writer, identity, &checked) {
        Ok(opened) => opened,
        Err(e) => return Ok(Err(e)),
    };
    writer.append(&checked)?;
    after_append(writer, &checked, None, opened)?;
    let (author, seq) = (checked.header.author, checked.header.seq);
    Ok(Ok(OpOutcome::Appended {
        id,
        author,
        seq,
        content: checked.decoded,
    }))
}

fn append_remote(
    writer: &mut Writer<'_>,
    identity: &Identity,
    checked: Checked,
    tombstone: Option<Tombstone>,
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
            let opened = match before_append(writer, identity, &checked) {
                Ok(opened) => opened,
                Err(e) => return Ok(Err(e)),
            };
            writer.append(&checked)?;
            after_append(writer, &checked, tombstone, opened)?;
            // Decoded once, when the entry was checked; moved into the outcome, not copied.
            Ok(Ok(OpOutcome::Appended {
                id: checked.id,
                author,
                seq,
                content: checked.decoded,
            }))
        }
    }
}

/// Rules that need the store or this node's key, checked before an entry is appended, so that a
/// refused entry leaves nothing behind. A delete must name an earlier, deletable message of its
/// own feed that still has its payload, or one whose payload this very entry already took back
/// (a node that received the deleted entry with this tombstone before the delete itself). A
/// private message that opens with this node's key must be well formed and sealed by the feed's
/// author; the answer says whether it opened (for the inbox).
fn before_append(
    writer: &Writer<'_>,
    identity: &Identity,
    checked: &Checked,
) -> Result<bool, FeedError> {
    let store = |e: crate::store::StoreError| FeedError::PayloadMalformed(e.to_string());
    match &checked.decoded {
        Some(Content::Private { sealed }) => {
            Ok(crate::feed::private::open(identity, &checked.header.author, sealed)?.is_some())
        }
        Some(Content::Delete { msg }) => {
            let msg = *msg;
            let Some((author, seq)) = writer.locate(&msg).map_err(store)? else {
                check_delete(&checked.header, msg, None, true)?;
                return Ok(false);
            };
            let target = writer
                .entry(&author, seq)
                .map_err(store)?
                .map(|e| e.header())
                .transpose()?;
            let held = writer.has_payload(&author, seq).map_err(store)?;
            if !held && author == checked.header.author {
                if let Some(t) = writer.tombstone(&author, seq).map_err(store)? {
                    if t.entry.id() == checked.id {
                        return Ok(false);
                    }
                }
            }
            check_delete(&checked.header, msg, target.as_ref(), held)?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// What an appended entry does to the store besides itself, in the same transaction: a delete
/// drops the payload it names (keeping its own entry as the tombstone), a payload-less entry
/// keeps its tombstone, and a private message this node opened is noted for the inbox.
fn after_append(
    writer: &mut Writer<'_>,
    checked: &Checked,
    tombstone: Option<Tombstone>,
    opened: bool,
) -> Result<(), crate::store::StoreError> {
    let (author, seq) = (checked.header.author, checked.header.seq);
    if let (None, Some(t)) = (&checked.payload, &tombstone) {
        writer.put_tombstone(&author, seq, t)?;
    }
    if opened {
        writer.index_private(&checked.header)?;
    }
    if let (Some(payload), Some(Content::Delete { msg })) = (&checked.payload, &checked.decoded) {
        if let Some((a, s)) = writer.locate(msg)? {
            let t = Tombstone {
                entry: checked.entry.clone(),
                payload: payload.clone(),
            };
            writer.delete_payload(&a, s, &t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::private::seal;
    use crate::feed::{hash_payload, now_ms, ContentType, FeedHead, Header};
    use crate::store::Store;

    struct Node {
        _dir: tempfile::TempDir,
        store: Store,
        me: Identity,
    }

    impl Node {
        fn new() -> Node {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            Node {
                _dir: dir,
                store,
                me: Identity::generate(),
            }
        }

        fn run(&self, op: Op) -> Result<OpOutcome, FeedError> {
            run_batch(&self.store, &self.me, vec![op], now_ms())
                .unwrap()
                .pop()
                .unwrap()
        }

        fn publish(&self, content: Content) -> Result<MsgId, FeedError> {
            match self.run(Op::Publish(content))? {
                OpOutcome::Appended { id, .. } => Ok(id),
                other => panic!("{other:?}"),
            }
        }

        /// Everything `other` holds of `feed`, as replication serves it, ingested here.
        fn sync(&self, other: &Node, feed: &FeedId) -> Vec<Result<OpOutcome, FeedError>> {
            let from = self.head(feed) + 1;
            let wire = other
                .store
                .read()
                .unwrap()
                .range(feed, from, 1000, usize::MAX)
                .unwrap();
            let ops = wire
                .into_iter()
                .map(|w| Op::from_wire(w, Some(*feed)))
                .collect();
            run_batch(&self.store, &self.me, ops, now_ms()).unwrap()
        }

        fn head(&self, feed: &FeedId) -> u64 {
            self.store
                .read()
                .unwrap()
                .head(feed)
                .unwrap()
                .map_or(0, |h| h.seq)
        }

        fn payload(&self, feed: &FeedId, seq: u64) -> Option<Vec<u8>> {
            self.store.read().unwrap().payload(feed, seq).unwrap()
        }

        fn verify(&self, feed: &FeedId) -> u64 {
            self.store
                .read()
                .unwrap()
                .verify_feed(feed, now_ms())
                .unwrap()
        }

        fn inbox(&self) -> usize {
            self.store.read().unwrap().inbox(100).unwrap().len()
        }
    }

    fn text(t: &str, mentions: Vec<FeedId>) -> Content {
        Content::Text {
            text: t.into(),
            root: None,
            branch: None,
            mentions,
        }
    }

    /// Sign `payload` (any bytes) as the next entry of `who`'s feed as `node` holds it.
    fn raw(node: &Node, who: &Identity, kind: ContentType, payload: &[u8]) -> Op {
        let head: Option<FeedHead> = node.store.read().unwrap().head(&who.id()).unwrap();
        let header = Header {
            version: crate::feed::FORMAT_VERSION,
            author: who.id(),
            seq: head.map_or(1, |h| h.seq + 1),
            prev: head.map(|h| h.id),
            timestamp_ms: now_ms(),
            content_type: kind,
            payload_hash: hash_payload(payload),
            payload_len: payload.len() as u32,
        };
        Op::Remote {
            entry: Entry::sign(who, &header).unwrap(),
            payload: Some(payload.to_vec()),
            feed: Some(who.id()),
        }
    }

    /// Sign `content` as the next entry of `who`'s feed after `head` (moved on), as replication
    /// would deliver it; with its id.
    fn sign_next(who: &Identity, head: &mut Option<FeedHead>, content: Content) -> (Op, MsgId) {
        let (entry, payload, _) = crate::feed::signed_next(who, head, content);
        let id = entry.id();
        let op = Op::Remote {
            entry,
            payload: Some(payload),
            feed: Some(who.id()),
        };
        (op, id)
    }

    #[test]
    fn entries_that_name_each_other_in_one_batch_see_each_other() {
        // The message-id index of a batch's appends is written at its commit: what a later entry
        // of the same batch looks up by id (a reply's thread, a delete's target) must find them.
        let node = Node::new();
        let author = Identity::generate();
        let aid = author.id();
        let mut head = None;
        let (op1, root) = sign_next(&author, &mut head, text("root", vec![]));
        let reply = Content::Text {
            text: "reply".into(),
            root: Some(root),
            branch: Some(root),
            mentions: vec![],
        };
        let (op2, reply) = sign_next(&author, &mut head, reply);
        // Seq 3 answers the reply in the first form (naming the parent only): its thread is the
        // parent's root, found by looking the parent up. Seq 4 deletes seq 1's payload.
        let answer = Content::Post {
            text: "answer".into(),
            reply_to: Some(reply),
        };
        let (op3, _) = sign_next(&author, &mut head, answer);
        let (op4, _) = sign_next(&author, &mut head, Content::Delete { msg: root });
        let outcomes =
            run_batch(&node.store, &node.me, vec![op1, op2, op3, op4], now_ms()).unwrap();
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let thread = node.store.read().unwrap().thread(&reply).unwrap();
        assert_eq!(thread.root_id, root);
        assert_eq!(thread.replies.len(), 2, "{:?}", thread.replies);
        assert_eq!(node.payload(&aid, 1), None);
        assert!(node.payload(&aid, 2).is_some());
        assert_eq!(node.verify(&aid), 4);
        // Every id is in the index once committed.
        for seq in 1..=4 {
            let reader = node.store.read().unwrap();
            let id = reader.entry(&aid, seq).unwrap().unwrap().id();
            assert_eq!(reader.locate(&id).unwrap(), Some((aid, seq)));
        }
    }

    #[test]
    fn a_delete_drops_the_payload_everywhere_and_the_feed_still_validates() {
        let (a, b, c) = (Node::new(), Node::new(), Node::new());
        let aid = a.me.id();
        let p1 = a
            .publish(text("regrettable words", vec![b.me.id()]))
            .unwrap();
        let p2 = a.publish(text("keep this", vec![])).unwrap();
        a.publish(Content::React {
            msg: p2,
            text: "👍".into(),
        })
        .unwrap();
        assert!(b.sync(&a, &aid).iter().all(Result::is_ok));
        assert!(b.payload(&aid, 1).is_some());
        assert_eq!(
            b.store
                .read()
                .unwrap()
                .mentions(&b.me.id(), 10)
                .unwrap()
                .len(),
            1
        );

        a.publish(Content::Delete { msg: p1 }).unwrap();
        assert_eq!(a.payload(&aid, 1), None);
        assert!(a
            .store
            .read()
            .unwrap()
            .tombstone(&aid, 1)
            .unwrap()
            .is_some());
        assert_eq!(a.verify(&aid), 4);
        // B, holding the payload, drops it (and the mention derived from it) on the next sync.
        assert!(b.sync(&a, &aid).iter().all(Result::is_ok));
        assert_eq!(b.payload(&aid, 1), None);
        assert!(b.payload(&aid, 2).is_some());
        assert!(b
            .store
            .read()
            .unwrap()
            .mentions(&b.me.id(), 10)
            .unwrap()
            .is_empty());
        assert_eq!(b.verify(&aid), 4);
        let shown = b.store.read().unwrap().message(&p1).unwrap().unwrap();
        assert_eq!(shown.content, None);
        // C, syncing later (from B), gets the header with the tombstone and never the payload.
        let served = b
            .store
            .read()
            .unwrap()
            .range(&aid, 1, 10, usize::MAX)
            .unwrap();
        assert!(served[0].payload.is_none() && served[0].tombstone.is_some());
        assert!(c.sync(&b, &aid).iter().all(Result::is_ok));
        assert_eq!(c.head(&aid), 4);
        assert_eq!(c.payload(&aid, 1), None);
        assert_eq!(c.verify(&aid), 4);
        // Deleting a reaction removes its text from the reaction index.
        a.publish(Content::Delete {
            msg: a
                .store
                .read()
                .unwrap()
                .entry(&aid, 3)
                .unwrap()
                .unwrap()
                .id(),
        })
        .unwrap();
        assert!(a
            .store
            .read()
            .unwrap()
            .reactions(&p2, |_| false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_payload_stripped_without_its_authors_delete_is_refused_and_nothing_is_stored() {
        let (a, c) = (Node::new(), Node::new());
        let aid = a.me.id();
        let p1 = a.publish(text("one", vec![])).unwrap();
        a.publish(text("two", vec![])).unwrap();
        let d = a.publish(Content::Delete { msg: p1 }).unwrap();
        let wire = a
            .store
            .read()
            .unwrap()
            .range(&aid, 1, 10, usize::MAX)
            .unwrap();
        // Seq 1 without payload and without tombstone: refused by name.
        let mut bare = wire[0].clone();
        bare.tombstone = None;
        assert_eq!(
            c.run(Op::from_wire(bare, Some(aid))),
            Err(FeedError::PayloadMissing {
                author: aid,
                seq: 1
            })
        );
        assert_eq!(c.head(&aid), 0);
        // Seq 1 arrives properly; seq 2 stripped, with seq 1's tombstone: refused.
        c.run(Op::from_wire(wire[0].clone(), Some(aid))).unwrap();
        let mut stripped = wire[1].clone();
        stripped.payload = None;
        stripped.tombstone = wire[0].tombstone.clone();
        assert!(matches!(
            c.run(Op::from_wire(stripped, Some(aid))),
            Err(FeedError::PayloadMissing { seq: 2, .. })
        ));
        assert_eq!(c.head(&aid), 1);
        // The rest, then the delete itself (whose target is already payload-less here).
        assert!(c.sync(&a, &aid).iter().all(Result::is_ok));
        assert_eq!(c.head(&aid), 3);
        assert_eq!(c.store.read().unwrap().locate(&d).unwrap(), Some((aid, 3)));
        assert_eq!(c.verify(&aid), 3);
    }

    #[test]
    fn deleting_what_is_not_yours_or_not_deletable_is_refused_by_name_and_stores_nothing() {
        let (a, b) = (Node::new(), Node::new());
        let (aid, bid) = (a.me.id(), b.me.id());
        let theirs = b.publish(text("bob's", vec![])).unwrap();
        assert!(a.sync(&b, &bid).iter().all(Result::is_ok));
        let follow = a.publish(Content::Follow { id: bid }).unwrap();
        let mine = a.publish(text("mine", vec![])).unwrap();
        let before = a.head(&aid);
        assert_eq!(
            a.publish(Content::Delete { msg: theirs }),
            Err(FeedError::DeleteNotOwn {
                msg: theirs,
                author: bid
            })
        );
        for msg in [follow, MsgId([9; 32])] {
            assert!(matches!(
                a.publish(Content::Delete { msg }),
                Err(FeedError::DeleteRefused { .. })
            ));
        }
        a.publish(Content::Delete { msg: mine }).unwrap();
        assert!(matches!(
            a.publish(Content::Delete { msg: mine }),
            Err(FeedError::DeleteRefused { .. })
        ));
        assert_eq!(a.head(&aid), before + 1);
        // A delete of A's message signed into B's feed is refused where it arrives.
        assert!(b.sync(&a, &aid).iter().all(Result::is_ok));
        let bad = raw(
            &b,
            &b.me,
            ContentType::Delete,
            &Content::Delete { msg: follow }.encode().unwrap(),
        );
        let b_head = b.head(&bid);
        assert!(matches!(b.run(bad), Err(FeedError::DeleteNotOwn { .. })));
        assert_eq!(b.head(&bid), b_head);
        assert!(b.payload(&aid, 1).is_some());
    }

    #[test]
    fn a_private_message_is_indexed_for_its_readers_only_and_a_malformed_one_is_refused() {
        let (a, b, d) = (Node::new(), Node::new(), Node::new());
        let aid = a.me.id();
        let sealed = seal(&a.me, &[b.me.id()], "for b only", &mut rand::thread_rng()).unwrap();
        a.publish(Content::Private {
            sealed: sealed.clone(),
        })
        .unwrap();
        assert_eq!(a.inbox(), 1);
        assert!(b.sync(&a, &aid).iter().all(Result::is_ok));
        assert!(d.sync(&a, &aid).iter().all(Result::is_ok));
        assert_eq!((b.inbox(), d.inbox()), (1, 0));
        assert_eq!(d.head(&aid), 1);

        // Not the shape of a sealed message: refused everywhere, nothing stored.
        let short = postcard::to_stdvec(&Content::Private {
            sealed: vec![0; 100],
        })
        .unwrap();
        for node in [&b, &d] {
            assert!(matches!(
                node.run(raw(node, &a.me, ContentType::Private, &short)),
                Err(FeedError::PrivateMalformed(_))
            ));
            assert_eq!(node.head(&aid), 1);
        }
        // B's slot opens but the body was tampered with: B refuses it by name, nothing stored.
        let mut tampered = seal(&a.me, &[b.me.id()], "x", &mut rand::thread_rng()).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x55;
        let payload = Content::Private { sealed: tampered }.encode().unwrap();
        assert!(matches!(
            b.run(raw(&b, &a.me, ContentType::Private, &payload)),
            Err(FeedError::PrivateMalformed(_))
        ));
        assert_eq!(b.head(&aid), 1);
        // A message sealed by A, republished in C's feed: B sees it is not C's.
        let c = Identity::generate();
        let copied = Content::Private { sealed }.encode().unwrap();
        assert_eq!(
            b.run(raw(&b, &c, ContentType::Private, &copied)),
            Err(FeedError::PrivateForwarded {
                author: c.id(),
                sealed_by: aid
            })
        );
        assert_eq!(b.head(&c.id()), 0);
    }
}
