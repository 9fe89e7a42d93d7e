//! The store: one LMDB environment per node, through heed. The only module that touches heed.
//!
//! LMDB is the source of truth for feeds and the rolodex. Reads run in concurrent read
//! transactions ([`Store::read`]); writes go through [`Store::write`], which only the store writer
//! actor calls, so that all writes are grouped into few commits. A lock file stops a second
//! process from opening the same data directory.

mod deletion;
mod fault;
mod keys;
mod lock;
mod meta;
mod page;
mod read;
mod social;
mod timeline;
mod write;

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, WithoutTls};

pub use deletion::InboxItem;
pub use lock::DirLock;
pub use meta::Damage;
pub use page::Before;
pub use read::{EntryWithPayload, Reader, StoredEntry, VerifyError};
pub use social::{FeedSummary, Profile, Reactions, Thread};
pub use timeline::{TimelineCursor, TimelinePage, TimelineThread};
pub use write::Writer;

use crate::limits::{STORE_MAP_BYTES, STORE_READERS_MAX};

/// Name of the LMDB directory inside the data directory.
pub const STORE_DIR: &str = "store";

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error(
        "another kith process holds the lock {path}; stop it first (one daemon per data directory)"
    )]
    Locked {
        /// The lock file.
        path: String,
    },
    /// LMDB failed (a full disk or map is [`StoreError::DiskFull`] or [`StoreError::MapFull`]).
    #[error("store: {0}")]
    Lmdb(heed::Error),
    /// The filesystem holding the store is full (or the user's quota is): nothing was written.
    /// The store writer stays up and the next write tries again.
    #[error("disk full: free space and the store writer resumes")]
    DiskFull,
    /// The store reached the size of its LMDB map (`STORE_MAP_BYTES`): nothing was written.
    #[error("store full: it reached its map size of {0} bytes; writes are refused until entries are removed")]
    MapFull(usize),
    /// The data file is shorter than LMDB's own record of it (truncated or cut short): opening it
    /// would crash the process on the first read past its end.
    #[error("store damaged; restore from a backup or re-sync (see README): {path}: {damage}")]
    Damaged {
        /// The data file.
        path: String,
        /// What is wrong with it.
        damage: Damage,
    },
    /// A value in the store does not decode: the store is damaged or from a newer kith.
    #[error("store value in `{table}` does not decode: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What failed.
        reason: String,
    },
    /// Filesystem error around the store.
    #[error("store directory {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

type Table = Database<'static, Bytes, Bytes>;

#[derive(Clone, Copy)]
pub(crate) struct Tables {
    /// author ‖ seq (big-endian) → encoded entry.
    entries: Table,
    /// author ‖ seq → payload bytes (deletable without breaking the chain; the header signs its hash).
    payloads: Table,
    /// message id → author ‖ seq.
    msgs: Table,
    /// author → postcard `FeedHead`.
    heads: Table,
    /// timestamp ‖ author ‖ seq → empty: posts in time order, for the timeline.
    timeline: Table,
    /// feed id → postcard `RolodexEntry`.
    rolodex: Table,
    /// peer id → postcard `PeerMemory`: the clocks last exchanged with that peer.
    peers: Table,
    /// `HOST:PORT` → the switchboard's pinned target (`@ID@HOST:PORT[#INVITE]`), as SSH keeps
    /// known hosts: the daemon reconnects to these, and a key learned on first use stays pinned.
    switchboards: Table,
    /// Names, threads, mentions and reactions ([`social`]).
    social: social::SocialTables,
    /// Tombstones of deleted payloads and the private-message index ([`deletion`]).
    removal: deletion::DeletionTables,
}

/// A handle to the node's store. Cheap to clone; all clones share one environment and one lock.
#[derive(Clone)]
pub struct Store {
    env: Env<WithoutTls>,
    tables: Tables,
    dir: PathBuf,
    _lock: std::sync::Arc<DirLock>,
}

impl Store {
    /// Open (or create) the store in `data_dir`, taking the directory's process lock.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let lock = DirLock::acquire(data_dir)?;
        let dir = data_dir.join(STORE_DIR);
        // Owner-only, like the data directory around it (the feeds followed are private).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        fault::check_data_file(&dir)?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(STORE_MAP_BYTES)
            .max_dbs(32)
            .max_readers(STORE_READERS_MAX);
        // SAFETY: the directory lock above guarantees that no other kith process has this
        // environment open, and heed refuses a second open of one path inside this process.
        let env = unsafe { options.open(&dir)? };
        let tables = Self::create_tables(&env)?;
        social::backfill(&env, &tables)?;
        Ok(Store {
            env,
            tables,
            dir,
            _lock: std::sync::Arc::new(lock),
        })
    }

    fn create_tables(env: &Env<WithoutTls>) -> Result<Tables, StoreError> {
        const NAMES: [&str; 8] = [
            "entries",
            "payloads",
            "msgs",
            "heads",
            "timeline",
            "rolodex",
            "peers",
            "switchboards",
        ];
        let wtxn = env.write_txn()?;
        let made = env.create_databases_and_commit(wtxn, |opener, wtxn| {
            let mut tables = Vec::with_capacity(NAMES.len());
            for name in NAMES {
                tables.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
            }
            let tables: [Database<'_, Bytes, Bytes>; 8] = tables
                .try_into()
                .map_err(|_| heed::Error::Mdb(heed::MdbError::Incompatible))?;
            Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(tables))
        })?;
        let CommitOrAbort::Commit(
            [entries, payloads, msgs, heads, timeline, rolodex, peers, switchboards],
        ) = made
        else {
            return Err(StoreError::Corrupt {
                table: "*",
                reason: "table creation aborted".into(),
            });
        };
        Ok(Tables {
            entries,
            payloads,
            msgs,
            heads,
            timeline,
            rolodex,
            peers,
            switchboards,
            social: social::SocialTables::create(env)?,
            removal: deletion::DeletionTables::create(env)?,
        })
    }

    /// The LMDB directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The rolodex table as it was last made durable: rolodex records, each feed's latest
    /// sequence taken from the feed heads.
    pub fn load_rolodex(&self) -> Result<crate::rolodex::Rolodex, StoreError> {
        let reader = self.read()?;
        let heads = reader.heads()?.into_iter().map(|(id, head)| (id, head.seq));
        Ok(crate::rolodex::Rolodex::from_records(
            reader.rolodex()?,
            heads,
        ))
    }

    /// A read transaction. Keep it short: a long reader pins old pages.
    pub fn read(&self) -> Result<Reader<'_>, StoreError> {
        Ok(Reader::new(self.env.read_txn()?, self.tables))
    }

    /// Run `f` in one write transaction and commit it durably (fsync) before returning.
    ///
    /// If `f` fails the transaction is aborted and nothing it wrote is kept. Only the store writer
    /// actor calls this, so that writes are grouped; LMDB would serialise other callers anyway.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let txn = self.env.write_txn().map_err(StoreError::from)?;
        let mut writer = Writer::new(txn, self.tables);
        let out = f(&mut writer)?;
        writer.commit()?;
        Ok(out)
    }
}
