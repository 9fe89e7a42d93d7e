//! The blob files: `<data dir>/blobs/<hex of the BLAKE3 hash>`, outside LMDB (a 5 MiB value
//! would bloat the map and every copy of it; files are streamed, served and removed on their
//! own).
//!
//! Every write is atomic: the bytes go to a temporary file in `blobs/tmp/` (0600), which is
//! fsync'd, checked against the id, renamed into place, and the folder fsync'd, so a crash
//! leaves either the whole blob or none of it (stale temporaries are removed at open). Blobs the
//! user added (`kith blob add`, `kith post --attach`) are *pinned* by an empty marker in
//! `blobs/local/`: they are never dropped by the unfollow clean-up, which only removes blobs
//! fetched for feeds no longer followed. Directories are 0700, like the rest of the data.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::blob::verify::Verified;
use crate::blob::{BlobError, BlobId, BlobRef};
use crate::limits::{
    BLOBS_HELD_MAX, BLOB_BUDGET_BYTES_DEFAULT, BLOB_BYTES_CEILING, BLOB_BYTES_MAX_DEFAULT,
};
use crate::runtime::private_dir::ensure_private_dir;

/// Folder of the blobs inside the data directory.
pub const BLOBS_DIR: &str = "blobs";

/// The per-blob limit and the total budget (`[blobs]` in config.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLimits {
    /// Largest blob stored, attached or fetched.
    pub max_bytes: u64,
    /// Largest total of all blobs held.
    pub budget_bytes: u64,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits {
            max_bytes: BLOB_BYTES_MAX_DEFAULT,
            budget_bytes: BLOB_BUDGET_BYTES_DEFAULT,
        }
    }
}

impl BlobLimits {
    /// Limits from config values, defaults for the missing ones; `None` if they make no sense
    /// (a per-blob limit of 0 or over [`BLOB_BYTES_CEILING`], or a budget under it).
    pub fn from_config(max_bytes: Option<u64>, budget_bytes: Option<u64>) -> Option<BlobLimits> {
        let max_bytes = max_bytes.unwrap_or(BLOB_BYTES_MAX_DEFAULT);
        let budget_bytes = budget_bytes.unwrap_or(BLOB_BUDGET_BYTES_DEFAULT.max(max_bytes));
        (max_bytes > 0 && max_bytes <= BLOB_BYTES_CEILING && budget_bytes >= max_bytes).then_some(
            BlobLimits {
                max_bytes,
                budget_bytes,
            },
        )
    }
}

/// One blob held here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBlob {
    /// Its id.
    pub id: BlobId,
    /// Its size.
    pub size: u64,
    /// Added by the user here (kept whatever is followed).
    pub pinned: bool,
}

/// The blob files of one data directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    limits: BlobLimits,
}

/// Numbers temporary files apart within this process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlobStore {
    /// Open (creating) `<data_dir>/blobs`, removing temporaries a crash left behind.
    pub fn open(data_dir: &Path, limits: BlobLimits) -> Result<BlobStore, BlobError> {
        let dir = data_dir.join(BLOBS_DIR);
        for sub in [dir.clone(), dir.join("tmp"), dir.join("local")] {
            ensure_private_dir(&sub)?;
        }
        let store = BlobStore { dir, limits };
        let tmp = store.dir.join("tmp");
        let entries = std::fs::read_dir(&tmp).map_err(|e| BlobError::io("reading", &tmp, e))?;
        for entry in entries.take(BLOBS_HELD_MAX).flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(store)
    }

    /// The limits it enforces.
    pub fn limits(&self) -> BlobLimits {
        self.limits
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `id` is (or would be) kept.
    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(id.hex())
    }

    fn pin_path(&self, id: &BlobId) -> PathBuf {
        self.dir.join("local").join(id.hex())
    }

    /// The size of blob `id`, if held.
    pub fn size_of(&self, id: &BlobId) -> Result<Option<u64>, BlobError> {
        let path = self.path(id);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io("reading", path, e)),
        }
    }

    /// Add the file at `path` as a pinned blob; its reference names the file.
    pub fn add_file(&self, path: &Path) -> Result<BlobRef, BlobError> {
        let mut file = File::open(path).map_err(|e| BlobError::io("opening", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| BlobError::io("reading", path, e))?
            .len();
        self.check_size(len)?;
        let mut bytes = Vec::with_capacity(len as usize);
        // Read one byte past the limit, so a file that grew meanwhile is refused, not cut.
        (&mut file)
            .take(self.limits.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| BlobError::io("reading", path, e))?;
        self.check_size(bytes.len() as u64)?;
        let id = self.add_bytes(&bytes, true)?;
        let name = path.file_name().and_then(|n| n.to_str()).map(|n| {
            n.chars()
                .take(crate::limits::BLOB_NAME_BYTES_MAX / 4)
                .collect()
        });
        let r = BlobRef {
            id,
            size: bytes.len() as u64,
            name,
        };
        Ok(match r.validate() {
            Ok(()) => r,
            Err(_) => BlobRef { name: None, ..r },
        })
    }

    /// Store `bytes` (pinned or not); returns their id.
    pub fn add_bytes(&self, bytes: &[u8], pinned: bool) -> Result<BlobId, BlobError> {
        let id = BlobId::of(bytes);
        if pinned {
            self.pin(&id)?;
        }
        if self.size_of(&id)? != Some(bytes.len() as u64) {
            self.put(&id, bytes)?;
        }
        Ok(id)
    }

    /// Store `bytes` as blob `id`: refused by name, with nothing written, if they do not hash
    /// to `id`, are over the per-blob limit, or would pass the budget.
    pub fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<(), BlobError> {
        self.check_size(bytes.len() as u64)?;
        let actual = BlobId::of(bytes);
        if actual != *id {
            return Err(BlobError::HashMismatch {
                expected: *id,
                actual,
            });
        }
        let mut incoming = self.incoming(*id, bytes.len() as u64)?;
        incoming.write(&Verified {
            offset: 0,
            data: bytes.to_vec(),
        })?;
        incoming.commit()
    }

    /// Start receiving blob `id` of `size` bytes into a temporary file (refused at once if it is
    /// over the limit or the budget).
    pub fn incoming(&self, id: BlobId, size: u64) -> Result<Incoming, BlobError> {
        self.check_size(size)?;
        self.check_budget(size)?;
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}.{}.{n}", id.hex(), std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| BlobError::io("creating", &tmp, e))?;
        Ok(Incoming {
            store: self.clone(),
            id,
            size,
            tmp,
            file: Some(file),
            hasher: blake3::Hasher::new(),
            written: 0,
        })
    }

    /// Blob `id`'s bytes, checked against its id (a damaged file is refused, not passed on).
    pub fn read(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let path = self.path(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotHeld(*id))
            }
            Err(e) => return Err(BlobError::io("opening", path, e)),
        };
        let mut bytes = Vec::new();
        file.take(BLOB_BYTES_CEILING + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| BlobError::io("reading", &path, e))?;
        let actual = BlobId::of(&bytes);
        if actual != *id {
            return Err(BlobError::HashMismatch {
                expected: *id,
                actual,
            });
        }
        Ok(bytes)
    }

    /// The blobs held (at most [`BLOBS_HELD_MAX`]), in id order.
    pub fn list(&self) -> Result<Vec<HeldBlob>, BlobError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| BlobError::io("reading", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().and_then(BlobId::from_hex) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            out.push(HeldBlob {
                id,
                size: meta.len(),
                pinned: self.pin_path(&id).exists(),
            });
            if out.len() >= BLOBS_HELD_MAX {
                break;
            }
        }
        out.sort_by_key(|b| b.id);
        Ok(out)
    }

    /// Total bytes held.
    pub fn held_bytes(&self) -> Result<u64, BlobError> {
        Ok(self.list()?.iter().map(|b| b.size).sum())
    }

    /// Remove blob `id` and its pin; false if it was not held.
    pub fn remove(&self, id: &BlobId) -> Result<bool, BlobError> {
        let _ = std::fs::remove_file(self.pin_path(id));
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::io("removing", self.path(id), e)),
        }
    }

    fn pin(&self, id: &BlobId) -> Result<(), BlobError> {
        let path = self.pin_path(id);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map(drop)
            .map_err(|e| BlobError::io("creating", path, e))
    }

    fn check_size(&self, size: u64) -> Result<(), BlobError> {
        if size > self.limits.max_bytes {
            return Err(BlobError::TooLarge {
                size,
                max: self.limits.max_bytes,
            });
        }
        Ok(())
    }

    fn check_budget(&self, size: u64) -> Result<(), BlobError> {
        let held = self.held_bytes()?;
        if held.saturating_add(size) > self.limits.budget_bytes {
            return Err(BlobError::OverBudget {
                size,
                held,
                budget: self.limits.budget_bytes,
            });
        }
        Ok(())
    }
}

/// A blob being received: verified pieces are appended to a temporary file; [`Incoming::commit`]
/// checks the whole, makes it durable and moves it into place. Dropped uncommitted, the
/// temporary file is removed and nothing is stored.
#[derive(Debug)]
pub struct Incoming {
    store: BlobStore,
    id: BlobId,
    size: u64,
    tmp: PathBuf,
    file: Option<File>,
    hasher: blake3::Hasher,
    written: u64,
}

impl Incoming {
    /// Append verified bytes (they must follow the previous ones).
    pub fn write(&mut self, piece: &Verified) -> Result<(), BlobError> {
        let end = self.written.saturating_add(piece.data.len() as u64);
        if piece.offset != self.written || end > self.size {
            return Err(BlobError::TooLarge {
                size: end,
                max: self.size,
            });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(BlobError::NotHeld(self.id));
        };
        file.write_all(&piece.data)
            .map_err(|e| BlobError::io("writing", &self.tmp, e))?;
        self.hasher.update(&piece.data);
        self.written = end;
        Ok(())
    }

    /// Check the whole blob against its id and size, fsync, rename into place, fsync the folder.
    pub fn commit(mut self) -> Result<(), BlobError> {
        let actual = BlobId(*self.hasher.finalize().as_bytes());
        if actual != self.id || self.written != self.size {
            return Err(BlobError::HashMismatch {
                expected: self.id,
                actual,
            });
        }
        let Some(file) = self.file.take() else {
            return Err(BlobError::NotHeld(self.id));
        };
        file.sync_all()
            .map_err(|e| BlobError::io("writing", &self.tmp, e))?;
        drop(file);
        let path = self.store.path(&self.id);
        std::fs::rename(&self.tmp, &path).map_err(|e| BlobError::io("storing", &path, e))?;
        File::open(&self.store.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| BlobError::io("syncing", &self.store.dir, e))?;
        Ok(())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // After a commit the temporary was renamed away and this finds nothing.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::verify::{encode, Verifier};

    fn store(limits: BlobLimits) -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), limits).unwrap();
        (dir, store)
    }

    fn tmp_files(store: &BlobStore) -> usize {
        std::fs::read_dir(store.dir().join("tmp")).unwrap().count()
    }

    #[test]
    fn a_file_is_stored_by_its_hash_pinned_and_read_back() {
        let (dir, store) = store(BlobLimits::default());
        let file = dir.path().join("cat.png");
        std::fs::write(&file, b"not really a cat").unwrap();
        let r = store.add_file(&file).unwrap();
        assert_eq!(r.id, BlobId::of(b"not really a cat"));
        assert_eq!((r.size, r.name.as_deref()), (16, Some("cat.png")));
        assert_eq!(store.read(&r.id).unwrap(), b"not really a cat");
        let held = store.list().unwrap();
        assert_eq!(
            held,
            vec![HeldBlob {
                id: r.id,
                size: 16,
                pinned: true
            }]
        );
        assert_eq!(tmp_files(&store), 0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path(&r.id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.remove(&r.id).unwrap());
        assert!(!store.remove(&r.id).unwrap());
        assert!(matches!(store.read(&r.id), Err(BlobError::NotHeld(_))));
    }

    #[test]
    fn over_the_limit_or_the_wrong_bytes_are_refused_and_nothing_is_stored() {
        let limits = BlobLimits {
            max_bytes: 100,
            budget_bytes: 150,
        };
        let (dir, store) = store(limits);
        let big = dir.path().join("big");
        std::fs::write(&big, [1u8; 101]).unwrap();
        assert!(matches!(
            store.add_file(&big),
            Err(BlobError::TooLarge {
                size: 101,
                max: 100
            })
        ));
        let id = BlobId::of(b"right");
        assert!(matches!(
            store.put(&id, b"wrong"),
            Err(BlobError::HashMismatch { .. })
        ));
        store.add_bytes(&[2u8; 100], false).unwrap();
        assert!(matches!(
            store.add_bytes(&[3u8; 60], false),
            Err(BlobError::OverBudget {
                size: 60,
                held: 100,
                budget: 150
            })
        ));
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(tmp_files(&store), 0);
    }

    #[test]
    fn an_incoming_blob_lands_whole_or_not_at_all() {
        let (_dir, store) = store(BlobLimits::default());
        let bytes: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
        let (id, stream) = encode(&bytes).unwrap();
        // Half received, then abandoned: nothing stored, no temporary left.
        let mut v = Verifier::new(id, bytes.len() as u64);
        let mut incoming = store.incoming(id, bytes.len() as u64).unwrap();
        let mut out = Vec::new();
        v.push(&stream[..30_000], &mut out).unwrap();
        for piece in &out {
            incoming.write(piece).unwrap();
        }
        drop(incoming);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(tmp_files(&store), 0);
        // Whole: stored.
        let mut v = Verifier::new(id, bytes.len() as u64);
        let mut incoming = store.incoming(id, bytes.len() as u64).unwrap();
        let mut out = Vec::new();
        v.push(&stream, &mut out).unwrap();
        for piece in &out {
            incoming.write(piece).unwrap();
        }
        // A commit before the last piece would be refused; here all arrived.
        incoming.commit().unwrap();
        assert_eq!(store.read(&id).unwrap(), bytes);
        assert!(!store.list().unwrap()[0].pinned);
        // A short incoming blob is refused at commit.
        let (id2, _) = encode(b"short").unwrap();
        let mut short = store.incoming(id2, 5).unwrap();
        short
            .write(&Verified {
                offset: 0,
                data: b"sho".to_vec(),
            })
            .unwrap();
        assert!(matches!(
            short.commit(),
            Err(BlobError::HashMismatch { .. })
        ));
        assert_eq!(tmp_files(&store), 0);
    }

    #[test]
    fn a_damaged_file_is_not_read_as_the_blob() {
        let (_dir, store) = store(BlobLimits::default());
        let id = store.add_bytes(b"intact", false).unwrap();
        std::fs::write(store.path(&id), b"rotten").unwrap();
        assert!(matches!(
            store.read(&id),
            Err(BlobError::HashMismatch { .. })
        ));
    }

    #[test]
    fn stale_temporaries_are_cleared_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path(), BlobLimits::default()).unwrap();
        std::fs::write(store.dir().join("tmp").join("x.1.1"), b"half").unwrap();
        let store = BlobStore::open(dir.path(), BlobLimits::default()).unwrap();
        assert_eq!(tmp_files(&store), 0);
    }

    #[test]
    fn limits_from_config_are_checked() {
        assert_eq!(
            BlobLimits::from_config(None, None),
            Some(BlobLimits::default())
        );
        assert_eq!(BlobLimits::from_config(Some(0), None), None);
        assert_eq!(
            BlobLimits::from_config(Some(BLOB_BYTES_CEILING + 1), None),
            None
        );
        assert_eq!(BlobLimits::from_config(Some(10), Some(5)), None);
        assert!(BlobLimits::from_config(Some(10), Some(10)).is_some());
    }
}
