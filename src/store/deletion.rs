//! Deleted payloads and the private-message index.
//!
//! - `deletions`: author ‖ seq of a deleted message → postcard [`Tombstone`]: the delete entry
//!   that took its payload back. Kept so that the entry can be served (and re-verified) without
//!   its payload: the tombstone is the proof that its author deleted it.
//! - `inbox`: timestamp ‖ author ‖ seq → empty: the private messages this node's key opened when
//!   they were stored (its own and those sealed to it). Holds no plaintext and no recipient: the
//!   messages are opened again, with the node's key, when read.
//!
//! Deleting a payload also removes what the social indexes derived from it (a reply's place in
//! its thread, a mention, a reaction's text), so no part of the content outlives it here.

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, WithoutTls};

use crate::feed::deletion::Tombstone;
use crate::feed::{Content, Header};
use crate::identity::FeedId;
use crate::store::keys::{entry_key, timeline_entry, timeline_key};
use crate::store::read::{decode, Reader};
use crate::store::{StoreError, Table, Writer};

/// One private message noted for the inbox: its author, its sequence and its sealed bytes
/// (`None` once its author deleted it).
pub type InboxItem = (FeedId, u64, Option<Vec<u8>>);

/// The deletion and inbox tables.
#[derive(Clone, Copy)]
pub(crate) struct DeletionTables {
    deletions: Table,
    inbox: Table,
}

impl DeletionTables {
    /// Create (or open) the tables.
    pub(crate) fn create(env: &Env<WithoutTls>) -> Result<DeletionTables, StoreError> {
        let wtxn = env.write_txn()?;
        let made = env.create_databases_and_commit(wtxn, |opener, wtxn| {
            let deletions = opener.create_database::<Bytes, Bytes>(wtxn, Some("deletions"))?;
            let inbox = opener.create_database::<Bytes, Bytes>(wtxn, Some("inbox"))?;
            Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit([deletions, inbox]))
        })?;
        let CommitOrAbort::Commit([deletions, inbox]) = made else {
            return Err(StoreError::Corrupt {
                table: "deletions",
                reason: "table creation aborted".into(),
            });
        };
        Ok(DeletionTables { deletions, inbox })
    }
}

impl Writer<'_> {
    /// Drop the payload of `author`/`seq` (deleted by `tombstone`), what the social indexes
    /// derived from it, and keep the tombstone. The signed entry stays.
    pub fn delete_payload(
        &mut self,
        author: &FeedId,
        seq: u64,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let key = entry_key(author, seq);
        let old = self
            .tables
            .payloads
            .get(&self.txn, &key)?
            .map(<[u8]>::to_vec);
        if let (Some(old), Some(entry)) = (old, self.entry(author, seq)?) {
            if let (Ok(content), Ok(header)) = (Content::decode(&old), entry.header()) {
                crate::store::social::unindex(
                    &mut self.txn,
                    &self.tables,
                    &self.msgs,
                    &header,
                    &content,
                )?;
            }
            self.tables.payloads.delete(&mut self.txn, &key)?;
        }
        self.put_tombstone(author, seq, tombstone)
    }

    /// Keep the tombstone of `author`/`seq` (an entry stored without its payload).
    pub fn put_tombstone(
        &mut self,
        author: &FeedId,
        seq: u64,
        tombstone: &Tombstone,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(tombstone).map_err(|e| StoreError::Corrupt {
            table: "deletions",
            reason: e.to_string(),
        })?;
        Ok(self
            .tables
            .removal
            .deletions
            .put(&mut self.txn, &entry_key(author, seq), &bytes)?)
    }

    /// Note a private message this node's key opened, for `kith inbox`.
    pub fn index_private(&mut self, header: &Header) -> Result<(), StoreError> {
        let key = timeline_key(header.timestamp_ms, &header.author, header.seq);
        Ok(self.tables.removal.inbox.put(&mut self.txn, &key, &[])?)
    }

    /// The tombstone of `author`/`seq`, as this transaction sees it.
    pub fn tombstone(&self, author: &FeedId, seq: u64) -> Result<Option<Tombstone>, StoreError> {
        match self
            .tables
            .removal
            .deletions
            .get(&self.txn, &entry_key(author, seq))?
        {
            Some(bytes) => Ok(Some(decode("deletions", bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether the payload of `author`/`seq` is held, as this transaction sees it.
    pub fn has_payload(&self, author: &FeedId, seq: u64) -> Result<bool, StoreError> {
        Ok(self
            .tables
            .payloads
            .get(&self.txn, &entry_key(author, seq))?
            .is_some())
    }
}

impl Reader<'_> {
    /// The tombstone of `author`/`seq`, if its payload was deleted.
    pub fn tombstone(&self, author: &FeedId, seq: u64) -> Result<Option<Tombstone>, StoreError> {
        match self
            .tables
            .removal
            .deletions
            .get(&self.txn, &entry_key(author, seq))?
        {
            Some(bytes) => Ok(Some(decode("deletions", bytes)?)),
            None => Ok(None),
        }
    }

    /// The private messages this node opened, newest first: `(author, seq)` and the sealed
    /// bytes (`None` if deleted since), at most `limit`.
    pub fn inbox(&self, limit: usize) -> Result<Vec<InboxItem>, StoreError> {
        let mut out = Vec::new();
        for item in self.tables.removal.inbox.rev_iter(&self.txn)?.take(limit) {
            let (key, _) = item?;
            let Some((author, seq)) = timeline_entry(key) else {
                continue;
            };
            let sealed = match self.payload(&author, seq)? {
                Some(bytes) => match Content::decode(&bytes) {
                    Ok(Content::Private { sealed }) => Some(sealed),
                    _ => None,
                },
                None => None,
            };
            out.push((author, seq, sealed));
        }
        Ok(out)
    }
}
