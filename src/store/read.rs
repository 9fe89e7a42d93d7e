//! Read transactions: point lookups and the scans behind `feed`, `timeline` and `contacts`.

use heed::{RoTxn, WithoutTls};

use crate::feed::{
    check_entry, check_sequence, Content, Entry, FeedError, FeedHead, Header, MsgId, Placement,
};
use crate::identity::FeedId;
use crate::replicate::{PeerMemory, WireEntry};
use crate::rolodex::RolodexEntry;
use crate::store::keys::{entry_key, split_entry_key};
use crate::store::{StoreError, Tables};

/// An entry as read back from the store, with its header and (if still held) its content.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Its id.
    pub id: MsgId,
    /// Its header.
    pub header: Header,
    /// Its content, unless the payload was deleted.
    pub content: Option<Content>,
}

/// An entry and its payload (absent if deleted).
pub type EntryWithPayload = (Entry, Option<Vec<u8>>);

/// A read transaction over the store.
pub struct Reader<'e> {
    pub(super) txn: RoTxn<'e, WithoutTls>,
    pub(super) tables: Tables,
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

pub(crate) fn head_in(
    txn: &RoTxn<'_>,
    tables: &Tables,
    author: &FeedId,
) -> Result<Option<FeedHead>, StoreError> {
    match tables.heads.get(txn, &author.0)? {
        Some(bytes) => Ok(Some(decode("heads", bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn entry_in(
    txn: &RoTxn<'_>,
    tables: &Tables,
    author: &FeedId,
    seq: u64,
) -> Result<Option<Entry>, StoreError> {
    Ok(tables
        .entries
        .get(txn, &entry_key(author, seq))?
        .map(|b| Entry(b.to_vec())))
}

impl<'e> Reader<'e> {
    pub(crate) fn new(txn: RoTxn<'e, WithoutTls>, tables: Tables) -> Self {
        Reader { txn, tables }
    }

    /// The latest entry of `author`'s feed held here.
    pub fn head(&self, author: &FeedId) -> Result<Option<FeedHead>, StoreError> {
        head_in(&self.txn, &self.tables, author)
    }

    /// Every feed held, with its head.
    pub fn heads(&self) -> Result<Vec<(FeedId, FeedHead)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tables.heads.iter(&self.txn)? {
            let (key, value) = item?;
            let id: [u8; 32] = key.try_into().map_err(|_| StoreError::Corrupt {
                table: "heads",
                reason: "key length".into(),
            })?;
            out.push((FeedId(id), decode("heads", value)?));
        }
        Ok(out)
    }

    /// The encoded entry at `author`/`seq`.
    pub fn entry(&self, author: &FeedId, seq: u64) -> Result<Option<Entry>, StoreError> {
        entry_in(&self.txn, &self.tables, author, seq)
    }

    /// The payload of the entry at `author`/`seq`, unless deleted.
    pub fn payload(&self, author: &FeedId, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables
            .payloads
            .get(&self.txn, &entry_key(author, seq))?
            .map(<[u8]>::to_vec))
    }

    /// Where a message id sits: its author and sequence.
    pub fn locate(&self, id: &MsgId) -> Result<Option<(FeedId, u64)>, StoreError> {
        Ok(self
            .tables
            .msgs
            .get(&self.txn, &id.0)?
            .and_then(split_entry_key))
    }

    /// The entry at `author`/`seq`, decoded with its content.
    pub fn stored(&self, author: &FeedId, seq: u64) -> Result<Option<StoredEntry>, StoreError> {
        let Some(entry) = self.entry(author, seq)? else {
            return Ok(None);
        };
        let header = entry.header().map_err(|e| StoreError::Corrupt {
            table: "entries",
            reason: e.to_string(),
        })?;
        let id = entry.id();
        let content = match self.payload(author, seq)? {
            Some(bytes) => Some(Content::decode(&bytes).map_err(|e| StoreError::Corrupt {
                table: "payloads",
                reason: e.to_string(),
            })?),
            None => None,
        };
        Ok(Some(StoredEntry {
            id,
            header,
            content,
        }))
    }

    /// `author`'s feed, newest first, at most `limit` entries.
    pub fn feed(&self, author: &FeedId, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .tables
            .entries
            .rev_prefix_iter(&self.txn, &author.0)?
            .take(limit)
        {
            let (key, _) = item?;
            if let Some((a, seq)) = split_entry_key(key) {
                out.extend(self.stored(&a, seq)?);
            }
        }
        Ok(out)
    }

    /// Posts of the feeds `include` accepts, newest first, at most `limit`.
    pub fn timeline(
        &self,
        limit: usize,
        include: impl Fn(&FeedId) -> bool,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.timeline_before(None, limit, include)
    }

    /// Entries of `author` from `from` on, in order: at most `count` entries and about
    /// `bytes_max` bytes (always at least one entry if any is held). With payloads, or, for a
    /// deleted one, the tombstone that proves its author deleted it: a deleted payload is never
    /// served again.
    pub fn range(
        &self,
        author: &FeedId,
        from: u64,
        count: usize,
        bytes_max: usize,
    ) -> Result<Vec<WireEntry>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let start = entry_key(author, from);
        let end = entry_key(author, u64::MAX);
        let bounds = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Included(&end[..]),
        );
        for item in self.tables.entries.range(&self.txn, &bounds)? {
            let (key, value) = item?;
            let entry = Entry(value.to_vec());
            let payload = self
                .tables
                .payloads
                .get(&self.txn, key)?
                .map(<[u8]>::to_vec);
            let tombstone = match payload {
                Some(_) => None,
                None => split_entry_key(key)
                    .map(|(a, seq)| self.tombstone(&a, seq))
                    .transpose()?
                    .flatten(),
            };
            bytes += entry.0.len()
                + payload.as_ref().map_or(0, Vec::len)
                + tombstone
                    .as_ref()
                    .map_or(0, |t| t.entry.0.len() + t.payload.len())
                + 16;
            if !out.is_empty() && (out.len() >= count || bytes > bytes_max) {
                break;
            }
            out.push(WireEntry {
                entry,
                payload,
                tombstone,
            });
        }
        Ok(out)
    }

    /// What this node remembers of its last exchange with `peer`.
    pub fn peer_memory(&self, peer: &FeedId) -> Result<PeerMemory, StoreError> {
        match self.tables.peers.get(&self.txn, &peer.0)? {
            Some(bytes) => decode("peers", bytes),
            None => Ok(PeerMemory::default()),
        }
    }

    /// The remembered switchboards: `HOST:PORT` → target (with its pinned key once learned).
    pub fn switchboards(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tables.switchboards.iter(&self.txn)? {
            let (key, value) = item?;
            out.push((
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        Ok(out)
    }

    /// Every rolodex entry.
    pub fn rolodex(&self) -> Result<Vec<RolodexEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.tables.rolodex.iter(&self.txn)? {
            let (_, value) = item?;
            out.push(decode("rolodex", value)?);
        }
        Ok(out)
    }

    /// Re-validate `author`'s whole feed from seq 1: structure, strict signatures, sequence,
    /// backlinks and payload hashes. Returns the number of entries checked.
    pub fn verify_feed(&self, author: &FeedId, now_ms: u64) -> Result<u64, VerifyError> {
        let mut head: Option<FeedHead> = None;
        for item in self.tables.entries.prefix_iter(&self.txn, &author.0)? {
            let (key, bytes) = item?;
            let entry = Entry(bytes.to_vec());
            let payload = self
                .tables
                .payloads
                .get(&self.txn, key)?
                .map(<[u8]>::to_vec);
            let deleted = payload.is_none();
            let checked = check_entry(entry, payload, Some(*author), now_ms)?;
            checked.verify_signature()?;
            if deleted {
                // A payload may be missing only where its author's delete entry took it back.
                let (a, seq) = (checked.header.author, checked.header.seq);
                match self.tombstone(&a, seq)? {
                    Some(t) => crate::feed::deletion::check_tombstone(&checked, &t, now_ms)?,
                    None => return Err(FeedError::PayloadMissing { author: a, seq }.into()),
                }
            }
            if check_sequence(head.as_ref(), &checked)? != Placement::Next {
                return Err(FeedError::WrongSequence {
                    author: *author,
                    expected: head.map_or(1, |h| h.seq + 1),
                    got: checked.header.seq,
                }
                .into());
            }
            head = Some(FeedHead {
                seq: checked.header.seq,
                id: checked.id,
                timestamp_ms: checked.header.timestamp_ms,
            });
        }
        let stored = self.head(author)?;
        if stored != head {
            return Err(VerifyError::HeadMismatch { author: *author });
        }
        Ok(head.map_or(0, |h| h.seq))
    }
}

/// Why a stored feed failed re-verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An entry is invalid.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The head record disagrees with the entries.
    #[error("the head record of {author} does not match its last entry")]
    HeadMismatch {
        /// The feed.
        author: FeedId,
    },
}

impl From<heed::Error> for VerifyError {
    fn from(e: heed::Error) -> Self {
        VerifyError::Store(StoreError::Lmdb(e))
    }
}
