//! The data directory's process lock: one daemon per data directory.
//!
//! LMDB itself lets several processes share an environment, but kith's single-writer design and
//! its control socket assume one daemon. An exclusive advisory lock on `kith.lock`, held for the
//! life of the process, makes a second daemon fail at once with a message naming the lock. The
//! kernel drops the lock when the process dies, even by SIGKILL, so a crash never leaves it stale.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::store::StoreError;

/// Name of the lock file inside the data directory.
pub(super) const LOCK_FILE: &str = "kith.lock";

/// A held directory lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Take the lock on `data_dir`, or fail with [`StoreError::Locked`].
    pub fn acquire(data_dir: &Path) -> Result<DirLock, StoreError> {
        let path = data_dir.join(LOCK_FILE);
        let shown = path.display().to_string();
        let io = |source| StoreError::Io {
            path: shown.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { path: shown })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}
