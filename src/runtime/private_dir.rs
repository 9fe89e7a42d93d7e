//! Data directories private to their owner: created 0700, and an existing one that other users
//! can read is tightened to 0700 (with a warning), because a data directory holds the secret key,
//! the store, the control socket and, on a switchboard, the invite codes and the members.
//!
//! Why refuse a world-writable directory instead of tightening it: `--data-dir /tmp` would
//! otherwise take `/tmp` away from every other user of the machine.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every directory kith creates for its data.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Why a data directory could not be made private.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// Creating, inspecting or tightening the directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path exists and is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The directory is writable by every user (a shared directory such as `/tmp`).
    #[error(
        "{0} is writable by every user; use a directory of your own (e.g. a new one inside it)"
    )]
    Shared(PathBuf),
}

/// Create `path` (and missing parents) with mode 0700, or tighten an existing directory that
/// group or others may access to 0700. A world-writable directory is refused, not changed.
pub fn ensure_private_dir(path: &Path) -> Result<(), PrivateDirError> {
    let io = |source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
        .map_err(io)?;
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Err(PrivateDirError::NotADirectory(path.to_path_buf()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(PrivateDirError::Shared(path.to_path_buf()));
    }
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %path.display(),
            mode = format!("{mode:o}"),
            "the data directory was readable by other users; made it owner-only (0700)"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .map_err(io)?;
    }
    Ok(())
}

/// The mode of every file kith writes into its data directory.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Replaces `path` with `bytes` durably, readable by its owner only: a temporary file beside it
/// (`<name>.tmp`, created anew at 0600, so a file or link left at that name is never written
/// through), fsync'd, renamed over `path`, then the directory fsync'd so that the rename itself
/// survives a crash. A reader sees the old contents or the new, never a part.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_and_its_missing_parents_are_owner_only() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&home.path().join("a")), 0o700);
    }

    #[test]
    fn an_open_directory_is_tightened_and_a_shared_one_refused() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let shared = home.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(
            ensure_private_dir(&shared),
            Err(PrivateDirError::Shared(_))
        ));
        assert_eq!(mode(&shared), 0o777, "a shared directory is left as it is");

        let file = home.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            ensure_private_dir(&file),
            Err(PrivateDirError::Io { .. } | PrivateDirError::NotADirectory(_))
        ));
    }

    #[test]
    fn a_private_file_replaces_the_old_one_whole_at_0600_and_writes_through_no_leftover() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("state.json");
        std::fs::write(&path, b"old").unwrap();
        // A stale temporary file, and one that is a link elsewhere: neither is written through.
        let target = home.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, home.path().join("state.json.tmp")).unwrap();
        write_private_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!home.path().join("state.json.tmp").exists());
    }
}
