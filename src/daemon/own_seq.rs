//! The own-feed marker: the last sequence this identity appended to its own feed, kept beside
//! the secret key, so that an emptied or replaced store cannot silently fork the feed.
//!
//! A store whose `data.mdb` was truncated to nothing or deleted opens as a new, empty store; the
//! daemon would then sign seq 1 again, and every follower would see a fork. The marker
//! (`own.seq`, 0600) is updated after each commit that appended to the own feed (written to a
//! temporary file, fsync'd, renamed over the old one, the directory fsync'd), so it survives
//! what happens to the store. At start [`decide`] compares it with the store's own head: below
//! it, the daemon refuses to start unless `--resync-own-feed` is given; with it, the daemon runs
//! but refuses to append to the own feed ([`OwnFeed::gate`]) until replication has brought the
//! own feed back (the own feed is always wanted, so followers serve it).
//!
//! "Back" is the marker *and* the longest own feed a peer has said it holds: a restored identity
//! (`kith init --restore`) knows only that it posted at least once (marker 1), and a follower
//! serves a long feed in batches of [`REPLICATION_BATCH_MAX`](crate::limits::REPLICATION_BATCH_MAX),
//! so the first batch alone must not open the gate. Each peer's clock names how far it holds
//! this feed ([`OwnFeed::peer_holds`], reported by the connection before any of that peer's
//! entries are read), and the gate stays shut until the store holds that much.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::identity::FeedId;
use crate::ingest::IngestError;
use crate::runtime::private_dir::write_private_file;
use crate::store::{Store, StoreError};

/// File name of the marker inside the data directory (beside `secret.key`).
pub const OWN_SEQ_FILE: &str = "own.seq";
const MAGIC: &str = "kith-own-seq-v1";

/// Why the own feed cannot be started as it is.
#[derive(Debug, thiserror::Error)]
pub enum OwnSeqError {
    /// The store holds less of the own feed than this identity has posted.
    #[error(
        "your store holds your own feed up to seq {have}, but this identity has posted up to seq \
         {want} (recorded in {path}): the store was emptied or replaced, and posting now would \
         fork your feed. Restore the store from a backup, or start with `kith daemon \
         --resync-own-feed` to fetch your feed back from the peers that follow you (see README)"
    )]
    Behind {
        /// The store's own head.
        have: u64,
        /// The marker.
        want: u64,
        /// The marker file.
        path: String,
    },
    /// The marker file is not ours or is damaged.
    #[error(
        "the own-feed marker {0} is damaged; it holds the last sequence you posted (see README)"
    )]
    Corrupt(String),
    /// Reading or writing the marker failed.
    #[error("own-feed marker {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to do at start, from the store's own head and the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The store is whole; write the marker if it is behind the store (or missing).
    Run {
        /// The value to record, if the marker must change.
        record: Option<u64>,
    },
    /// The store is behind the marker and no resync was asked for.
    Refuse {
        /// The store's own head.
        have: u64,
        /// The marker.
        want: u64,
    },
    /// The store is behind the marker: run, appending to the own feed only once it is back.
    Resync {
        /// The store's own head.
        have: u64,
        /// The marker.
        want: u64,
    },
}

/// Decide how to start: `head` is the store's own head (0 when empty), `marker` the recorded last
/// sequence (none before the first start with markers), `resync` the `--resync-own-feed` flag.
pub fn decide(head: u64, marker: Option<u64>, resync: bool) -> Start {
    match marker {
        Some(want) if head < want && resync => Start::Resync { have: head, want },
        Some(want) if head < want => Start::Refuse { have: head, want },
        Some(want) if head == want => Start::Run { record: None },
        _ => Start::Run { record: Some(head) },
    }
}

/// The own feed's marker and resync state, shared by the store writer's actor and committer.
#[derive(Clone)]
pub struct OwnFeed(Arc<Inner>);

struct Inner {
    id: FeedId,
    /// The marker file; none when not tracked (benchmarks).
    path: Option<PathBuf>,
    /// The value last written to the marker.
    written: Mutex<u64>,
    /// While resyncing, the sequence the own feed must reach before appends; 0 otherwise.
    resync_to: AtomicU64,
    /// While resyncing, the longest own feed a peer's clock said it holds.
    peer_head: AtomicU64,
}

impl OwnFeed {
    /// Read the marker and the store's own head and decide; refuses with [`OwnSeqError::Behind`]
    /// when the store is behind the marker and `resync` is false.
    pub fn open(
        data_dir: &Path,
        store: &Store,
        id: FeedId,
        resync: bool,
    ) -> Result<OwnFeed, OwnSeqError> {
        let path = data_dir.join(OWN_SEQ_FILE);
        let marker = load(&path)?;
        let head = store.read()?.head(&id)?.map_or(0, |h| h.seq);
        let (written, resync_to) = match decide(head, marker, resync) {
            Start::Refuse { have, want } => {
                return Err(OwnSeqError::Behind {
                    have,
                    want,
                    path: path.display().to_string(),
                })
            }
            Start::Resync { have, want } => {
                tracing::warn!(
                    have,
                    want,
                    "resyncing the own feed from followers; posting waits until it is back"
                );
                (want, want)
            }
            Start::Run { record: Some(seq) } => {
                save(&path, seq)?;
                (seq, 0)
            }
            Start::Run { record: None } => (head, 0),
        };
        Ok(OwnFeed(Arc::new(Inner {
            id,
            path: Some(path),
            written: Mutex::new(written),
            resync_to: AtomicU64::new(resync_to),
            peer_head: AtomicU64::new(0),
        })))
    }

    /// An own feed without a marker (benchmarks, tests of other parts).
    pub fn untracked(id: FeedId) -> OwnFeed {
        OwnFeed(Arc::new(Inner {
            id,
            path: None,
            written: Mutex::new(0),
            resync_to: AtomicU64::new(0),
            peer_head: AtomicU64::new(0),
        }))
    }

    /// The own feed's id.
    pub fn id(&self) -> FeedId {
        self.0.id
    }

    /// Whether the own feed may be appended to now: refused while it is being resynced and the
    /// store's own head is below the marker or below what a peer said it holds of the feed
    /// ([`OwnFeed::peer_holds`]). Once it has caught up it stays open.
    pub fn gate(&self, store: &Store) -> Result<(), IngestError> {
        let Some(want) = self.wanted() else {
            return Ok(());
        };
        let have = store.read()?.head(&self.0.id)?.map_or(0, |h| h.seq);
        if have >= want {
            self.0.resync_to.store(0, Ordering::Release);
            tracing::info!(
                seq = have,
                "own feed resynced from followers; posting resumes"
            );
            return Ok(());
        }
        Err(IngestError::Resyncing { have, want })
    }

    /// A peer's clock says it holds this node's own feed up to `seq`. While resyncing, the gate
    /// then waits for the store to hold that much too, so the next own entry follows the
    /// longest feed known rather than forking it. Ignored once the own feed is open.
    pub fn peer_holds(&self, seq: u64) {
        if self.0.resync_to.load(Ordering::Acquire) != 0 {
            self.0.peer_head.fetch_max(seq, Ordering::AcqRel);
        }
    }

    /// While resyncing, the sequence the own feed must reach: the marker or the longest own feed
    /// a peer holds, whichever is further.
    fn wanted(&self) -> Option<u64> {
        let marker = self.0.resync_to.load(Ordering::Acquire);
        if marker == 0 {
            return None;
        }
        Some(marker.max(self.0.peer_head.load(Ordering::Acquire)))
    }

    /// While resyncing, how far the own feed has come back: `(have, want)`.
    pub fn resync_progress(&self, store: &Store) -> Option<(u64, u64)> {
        let want = self.wanted()?;
        let have = store
            .read()
            .ok()?
            .head(&self.0.id)
            .ok()?
            .map_or(0, |h| h.seq);
        Some((have, want))
    }

    /// A commit appended own entries up to `seq` (and it is durable): record it if it is past
    /// the marker. Called on the committer thread before the submitters are answered.
    pub fn appended(&self, seq: u64) {
        let Some(path) = &self.0.path else {
            return;
        };
        let Ok(mut written) = self.0.written.lock() else {
            return;
        };
        if seq <= *written {
            return;
        }
        match save(path, seq) {
            Ok(()) => *written = seq,
            Err(e) => tracing::warn!(
                error = %e,
                seq,
                "the own-feed marker could not be updated; an emptied store would not be noticed past it"
            ),
        }
    }
}

/// The marker's value, or none when there is no marker yet.
pub fn load(path: &Path) -> Result<Option<u64>, OwnSeqError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OwnSeqError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let corrupt = || OwnSeqError::Corrupt(path.display().to_string());
    let seq = text
        .trim_end()
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(corrupt)?;
    seq.parse().map(Some).map_err(|_| corrupt())
}

/// Replace the marker durably: a temporary file (0600), fsync'd, renamed over the marker, then
/// the directory fsync'd so that the rename itself survives a crash.
fn save(path: &Path, seq: u64) -> Result<(), OwnSeqError> {
    let io = |source| OwnSeqError::Io {
        path: path.display().to_string(),
        source,
    };
    write_private_file(path, format!("{MAGIC} {seq}\n").as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_decision_covers_every_case() {
        assert_eq!(decide(0, None, false), Start::Run { record: Some(0) });
        assert_eq!(decide(7, None, false), Start::Run { record: Some(7) });
        assert_eq!(decide(7, Some(7), false), Start::Run { record: None });
        assert_eq!(decide(9, Some(7), false), Start::Run { record: Some(9) });
        assert_eq!(
            decide(0, Some(7), false),
            Start::Refuse { have: 0, want: 7 }
        );
        assert_eq!(decide(3, Some(7), true), Start::Resync { have: 3, want: 7 });
        assert_eq!(decide(7, Some(7), true), Start::Run { record: None });
    }

    #[test]
    fn the_marker_round_trips_privately_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OWN_SEQ_FILE);
        assert_eq!(load(&path).unwrap(), None);
        save(&path, 2453).unwrap();
        assert_eq!(load(&path).unwrap(), Some(2453));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!path.with_extension("seq.tmp").exists());
        std::fs::write(&path, "12\n").unwrap();
        assert!(matches!(load(&path), Err(OwnSeqError::Corrupt(_))));
    }

    #[test]
    fn an_emptied_store_is_refused_and_a_resync_gates_appends() {
        let dir = tempfile::tempdir().unwrap();
        let id = crate::identity::Identity::generate().id();
        save(&dir.path().join(OWN_SEQ_FILE), 5).unwrap();
        let store = Store::open(dir.path()).unwrap();
        match OwnFeed::open(dir.path(), &store, id, false) {
            Err(OwnSeqError::Behind {
                have: 0, want: 5, ..
            }) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("an emptied store was accepted"),
        }
        let own = OwnFeed::open(dir.path(), &store, id, true).unwrap();
        match own.gate(&store) {
            Err(e @ IngestError::Resyncing { have: 0, want: 5 }) => assert_eq!(
                e.to_string(),
                "resyncing your own feed from followers: have 0 of 5; posting resumes once it is complete"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(own.resync_progress(&store), Some((0, 5)));
        // The marker is never lowered while resyncing.
        own.appended(3);
        assert_eq!(load(&dir.path().join(OWN_SEQ_FILE)).unwrap(), Some(5));
        own.appended(6);
        assert_eq!(load(&dir.path().join(OWN_SEQ_FILE)).unwrap(), Some(6));
    }

    /// A restored identity (marker 1) whose follower holds a feed longer than one replication
    /// batch: the first batch back must not open the gate, or the next post would sign a
    /// sequence the follower already holds (a fork).
    #[test]
    fn a_restored_feed_longer_than_one_batch_stays_gated_until_all_of_it_is_back() {
        use crate::feed::Content;
        use crate::ingest::{run_batch, Op};
        use crate::limits::REPLICATION_BATCH_MAX;
        let dir = tempfile::tempdir().unwrap();
        let identity = crate::identity::Identity::generate();
        save(&dir.path().join(OWN_SEQ_FILE), 1).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let own = OwnFeed::open(dir.path(), &store, identity.id(), true).unwrap();
        let follower_holds = (2 * REPLICATION_BATCH_MAX + REPLICATION_BATCH_MAX / 2) as u64;
        own.peer_holds(follower_holds);
        // The own entries come back batch by batch (published here: the same feed, the same
        // store writes as a follower's batches).
        let mut held = 0u64;
        while held < follower_holds {
            let n = REPLICATION_BATCH_MAX.min((follower_holds - held) as usize);
            let ops = (0..n)
                .map(|i| {
                    Op::Publish(Content::Post {
                        text: format!("post {}", held + i as u64 + 1),
                        reply_to: None,
                    })
                })
                .collect();
            run_batch(&store, &identity, ops, crate::feed::now_ms()).unwrap();
            held += n as u64;
            if held < follower_holds {
                match own.gate(&store) {
                    Err(IngestError::Resyncing { have, want }) => {
                        assert_eq!((have, want), (held, follower_holds));
                    }
                    other => panic!("the gate opened at {held} of {follower_holds}: {other:?}"),
                }
                assert_eq!(own.resync_progress(&store), Some((held, follower_holds)));
            }
        }
        own.gate(&store).expect("the whole feed is back");
        assert_eq!(own.resync_progress(&store), None);
        // Once open it stays open; later clocks change nothing.
        own.peer_holds(follower_holds + 10);
        own.gate(&store).expect("still open");
    }
}
