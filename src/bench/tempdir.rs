//! A scratch directory for benchmarks, removed on drop.

use std::path::{Path, PathBuf};

/// A directory under the system temp dir that is deleted when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create a fresh, uniquely named directory.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let unique = format!("{prefix}-{}-{}", std::process::id(), rand::random::<u64>());
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
