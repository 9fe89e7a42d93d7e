//! The write transaction: appends of validated entries and rolodex updates, committed together.

use heed::RwTxn;

use crate::feed::{Checked, ContentType, Entry, FeedHead};
use crate::identity::FeedId;
use crate::replicate::PeerMemory;
use crate::rolodex::RolodexEntry;
use crate::store::keys::{entry_key, timeline_key};
use crate::store::read::{entry_in, head_in};
use crate::store::{StoreError, Tables};

/// One write transaction. Dropped without [`Writer::commit`], it aborts.
pub struct Writer<'e> {
    pub(super) txn: RwTxn<'e>,
    pub(super) tables: Tables,
}

impl<'e> Writer<'e> {
    pub(crate) fn new(txn: RwTxn<'e>, tables: Tables) -> Self {
        Writer { txn, tables }
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit()?)
    }

    /// The feed's head as this transaction sees it (including its own appends).
    pub fn head(&self, author: &FeedId) -> Result<Option<FeedHead>, StoreError> {
        head_in(&self.txn, &self.tables, author)
    }

    /// The entry at `author`/`seq` as this transaction sees it.
    pub fn entry(&self, author: &FeedId, seq: u64) -> Result<Option<Entry>, StoreError> {
        entry_in(&self.txn, &self.tables, author, seq)
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
        self.tables.msgs.put(&mut self.txn, &checked.id.0, &key)?;
        if let Some(payload) = &checked.payload {
            self.tables.payloads.put(&mut self.txn, &key, payload)?;
            // Names, threads, mentions and reactions are indexed in the same transaction.
            if let Ok(content) = crate::feed::Content::decode(payload) {
                crate::store::social::index(&mut self.txn, &self.tables, header, &content)?;
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
        let bytes = postcard::to_stdvec(&head).map_err(|e| StoreError::Corrupt {
            table: "heads",
            reason: e.to_string(),
        })?;
        self.tables
            .heads
            .put(&mut self.txn, &header.author.0, &bytes)?;
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
