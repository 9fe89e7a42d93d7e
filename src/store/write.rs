//! The write transaction: appends of validated entries and rolodex updates, committed together.

use std::collections::BTreeMap;

use heed::RwTxn;

use crate::feed::{Checked, ContentType, Entry, FeedHead, MsgId};
use crate::identity::FeedId;
use crate::replicate::PeerMemory;
use crate::rolodex::RolodexEntry;
use crate::store::keys::{entry_key, timeline_key, PendingMsgs};
use crate::store::read::{entry_in, head_in};
use crate::store::{StoreError, Tables};

/// One write transaction. Dropped without [`Writer::commit`], it aborts.
///
/// The heads of the feeds it appended to are kept here and written once each at commit (in key
/// order), not once per entry: a batch of a feed's entries costs one `heads` put, not one per
/// entry. [`Writer::head`] reads them first, so the transaction sees its own appends.
///
/// Likewise the message-id index rows (`msgs`) of its appends are kept here and written at
/// commit, sorted by id: ids are hashes, so rows put in append order land on random pages of the
/// table, while sorted they walk it once, page after page. [`Writer::locate`] (and the social
/// index's lookups of a parent) read them first.
pub struct Writer<'e> {
    pub(super) txn: RwTxn<'e>,
    pub(super) tables: Tables,
    /// Heads of the feeds appended to in this transaction, not yet in the `heads` table: at most
    /// one per feed appended to, so bounded by the batch.
    heads: BTreeMap<FeedId, FeedHead>,
    /// `msgs` rows of this transaction's appends, not yet in the table: one per append, so
    /// bounded by the batch.
    pub(super) msgs: PendingMsgs,
}

impl<'e> Writer<'e> {
    pub(crate) fn new(txn: RwTxn<'e>, tables: Tables) -> Self {
        Writer {
            txn,
            tables,
            heads: BTreeMap::new(),
            msgs: PendingMsgs::new(),
        }
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        let mut msgs: Vec<(MsgId, [u8; 40])> = std::mem::take(&mut self.msgs).into_iter().collect();
        msgs.sort_unstable_by_key(|(id, _)| *id);
        for (id, key) in msgs {
            self.tables.msgs.put(&mut self.txn, &id.0, &key)?;
        }
        for (author, head) in std::mem::take(&mut self.heads) {
            let bytes = postcard::to_stdvec(&head).map_err(|e| StoreError::Corrupt {
                table: "heads",
                reason: e.to_string(),
            })?;
            self.tables.heads.put(&mut self.txn, &author.0, &bytes)?;
        }
        Ok(self.txn.commit()?)
    }

    /// The feed's head as this transaction sees it (including its own appends).
    pub fn head(&self, author: &FeedId) -> Result<Option<FeedHead>, StoreError> {
        match self.heads.get(author) {
            Some(head) => Ok(Some(*head)),
            None => head_in(&self.txn, &self.tables, author),
        }
    }

    /// The entry at `author`/`seq` as this transaction sees it.
    pub fn entry(&self, author: &FeedId, seq: u64) -> Result<Option<Entry>, StoreError> {
        entry_in(&self.txn, &self.tables, author, seq)
    }

    /// Where a message id sits, as this transaction sees it: its author and sequence.
    pub fn locate(&self, id: &MsgId) -> Result<Option<(FeedId, u64)>, StoreError> {
        if let Some(key) = self.msgs.get(id) {
            return Ok(crate::store::keys::split_entry_key(key));
        }
        Ok(self
            .tables
            .msgs
            .get(&self.txn, &id.0)?
            .and_then(crate::store::keys::split_entry_key))
    }

    /// Append an entry that the caller has fully validated as the feed's next one.
    pub fn append(&mut self, checked: &Checked) -> Result<FeedHead, StoreError> {
        let header = &checked.header;
        let key = entry_key(&header.author, header.seq);
        debug_assert_eq!(
            self.head(&header.author)?.map_or(1, |h| h.seq + 1),
            header.seq
        );
        self.tables
            .entries
            .put(&mut self.txn, &key, &checked.entry.0)?;
        self.msgs.insert(checked.id, key);
        if let Some(payload) = &checked.payload {
            self.tables.payloads.put(&mut self.txn, &key, payload)?;
            // Names, threads, mentions and reactions are indexed in the same transaction, from
            // the content decoded when the entry was checked (decoded here only if it was not).
            let decoded;
            let content = match &checked.decoded {
                Some(content) => Some(content),
                None => {
                    decoded = crate::feed::Content::decode(payload).ok();
                    decoded.as_ref()
                }
            };
            if let Some(content) = content {
                crate::store::social::index(
                    &mut self.txn,
                    &self.tables,
                    &self.msgs,
                    header,
                    content,
                )?;
            }
        }
        if header.content_type == ContentType::Post {
            let tkey = timeline_key(header.timestamp_ms, &header.author, header.seq);
            self.tables.timeline.put(&mut self.txn, &tkey, &[])?;
        }
        let head = FeedHead {
            seq: header.seq,
            id: checked.id,
            timestamp_ms: header.timestamp_ms,
        };
        self.heads.insert(header.author, head);
        Ok(head)
    }

    /// Remember the clocks last exchanged with `peer`.
    pub fn put_peer_memory(
        &mut self,
        peer: &FeedId,
        memory: &PeerMemory,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(memory).map_err(|e| StoreError::Corrupt {
            table: "peers",
            reason: e.to_string(),
        })?;
        Ok(self.tables.peers.put(&mut self.txn, &peer.0, &bytes)?)
    }

    /// Remember a switchboard: `host` (`HOST:PORT`) → `target` (`[@ID@]HOST:PORT[#INVITE]`).
    pub fn put_switchboard(&mut self, host: &str, target: &str) -> Result<(), StoreError> {
        Ok(self
            .tables
            .switchboards
            .put(&mut self.txn, host.as_bytes(), target.as_bytes())?)
    }

    /// Forget a remembered switchboard; true if it was remembered.
    pub fn delete_switchboard(&mut self, host: &str) -> Result<bool, StoreError> {
        Ok(self
            .tables
            .switchboards
            .delete(&mut self.txn, host.as_bytes())?)
    }

    /// Insert or replace a rolodex entry.
    pub fn put_rolodex(&mut self, entry: &RolodexEntry) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(entry).map_err(|e| StoreError::Corrupt {
            table: "rolodex",
            reason: e.to_string(),
        })?;
        Ok(self
            .tables
            .rolodex
            .put(&mut self.txn, &entry.id.0, &bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use crate::feed::{checked_posts as chain, FeedHead};
    use crate::identity::Identity;
    use crate::store::{Store, StoreError};

    #[test]
    fn heads_are_seen_inside_the_transaction_and_written_at_commit_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let (a_entries, b_entries) = (chain(&a, None, 3), chain(&b, None, 1));
        store
            .write(|w| {
                for c in a_entries.iter().chain(&b_entries) {
                    w.append(c)?;
                    // The transaction sees its own appends.
                    assert_eq!(w.head(&c.header.author)?.map(|h| h.seq), Some(c.header.seq));
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let reader = store.read().unwrap();
        let mut heads: Vec<_> = reader
            .heads()
            .unwrap()
            .into_iter()
            .map(|(id, h)| (id, h.seq, h.id))
            .collect();
        heads.sort();
        let mut want = vec![(a.id(), 3, a_entries[2].id), (b.id(), 1, b_entries[0].id)];
        want.sort();
        assert_eq!(heads, want);
        drop(reader);

        // An aborted transaction leaves the head where it was.
        let last = reader_head(&store, &a);
        let next = chain(&a, last, 1);
        let aborted = store.write(|w| {
            w.append(&next[0])?;
            Err::<(), _>(StoreError::DiskFull)
        });
        assert!(matches!(aborted, Err(StoreError::DiskFull)));
        assert_eq!(reader_head(&store, &a).map(|h| h.seq), Some(3));
        // Message ids: seen inside the transaction, in the index once committed, and not at all
        // after an abort.
        let reader = store.read().unwrap();
        for c in a_entries.iter().chain(&b_entries) {
            assert_eq!(
                reader.locate(&c.id).unwrap(),
                Some((c.header.author, c.header.seq))
            );
        }
        assert_eq!(reader.locate(&next[0].id).unwrap(), None);
        drop(reader);
        store
            .write(|w| {
                w.append(&next[0])?;
                assert_eq!(w.locate(&next[0].id)?, Some((a.id(), 4)));
                assert_eq!(w.locate(&a_entries[0].id)?, Some((a.id(), 1)));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(
            store.read().unwrap().locate(&next[0].id).unwrap(),
            Some((a.id(), 4))
        );
    }

    fn reader_head(store: &Store, who: &Identity) -> Option<FeedHead> {
        store.read().unwrap().head(&who.id()).unwrap()
    }
}
