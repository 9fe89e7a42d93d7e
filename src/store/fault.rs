//! Storage faults by name: LMDB's errors that mean "the disk (or the map) is full" become
//! [`StoreError::DiskFull`] / [`StoreError::MapFull`], which the store writer answers without
//! crashing, and a data file shorter than LMDB's record of it is refused before it is mapped.

use std::path::Path;

use crate::limits::STORE_MAP_BYTES;
use crate::store::meta::{self, CheckError, DATA_FILE};
use crate::store::StoreError;

impl From<heed::Error> for StoreError {
    fn from(error: heed::Error) -> Self {
        match &error {
            heed::Error::Io(io) if is_disk_full(io) => StoreError::DiskFull,
            heed::Error::Mdb(heed::MdbError::MapFull) => StoreError::MapFull(STORE_MAP_BYTES),
            _ => StoreError::Lmdb(error),
        }
    }
}

impl StoreError {
    /// Whether this is a full disk or a full map: nothing was written, the store is intact, and
    /// the same write may succeed later.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::DiskFull | StoreError::MapFull(_))
    }
}

/// Whether an I/O error means no space is left (the filesystem is full, or the quota is used).
pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Refuse a data file that is shorter than its last used page (see [`meta`]); a missing file is
/// a new store.
pub(crate) fn check_data_file(store_dir: &Path) -> Result<(), StoreError> {
    let path = store_dir.join(DATA_FILE);
    let shown = path.display().to_string();
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: shown,
                source,
            })
        }
    };
    match meta::check(&file) {
        Ok(()) => Ok(()),
        Err(CheckError::Damaged(damage)) => Err(StoreError::Damaged {
            path: shown,
            damage,
        }),
        Err(CheckError::Io(source)) => Err(StoreError::Io {
            path: shown,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_and_full_map_are_named() {
        let enospc = heed::Error::Io(std::io::Error::from_raw_os_error(28));
        assert!(matches!(StoreError::from(enospc), StoreError::DiskFull));
        let edquot = heed::Error::Io(std::io::Error::from_raw_os_error(122));
        assert!(matches!(StoreError::from(edquot), StoreError::DiskFull));
        let map = heed::Error::Mdb(heed::MdbError::MapFull);
        assert!(StoreError::from(map).is_full());
        let other = heed::Error::Io(std::io::Error::from_raw_os_error(5));
        assert!(matches!(StoreError::from(other), StoreError::Lmdb(_)));
        assert_eq!(
            StoreError::DiskFull.to_string(),
            "disk full: free space and the store writer resumes"
        );
    }
}
