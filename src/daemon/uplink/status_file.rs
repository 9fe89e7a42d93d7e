//! The daemon's own status line on disk (`status.json` in the data directory), so that
//! `kith presence set` survives a restart, as a status does in any chat client.
//!
//! It is a preference, not feed data: one small file, written to a temporary file, synced and
//! renamed over the old one, so a crash leaves either the old line or the new one. A missing
//! file means no status line; a damaged one is a named error, never a panic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::private_dir::write_private_file;
use crate::wire::switchboard::check_status;

/// The file's name in the data directory.
pub const STATUS_FILE: &str = "status.json";

/// Why the status line could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    /// Reading or writing the file failed.
    #[error("status file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a status line kith wrote (or one over the length limit).
    #[error("status file {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    text: Option<String>,
}

/// The status line's file in a data directory.
#[derive(Clone, Debug)]
pub struct StatusFile {
    path: PathBuf,
}

impl StatusFile {
    /// The status file of data directory `dir`.
    pub fn in_dir(dir: &Path) -> StatusFile {
        StatusFile {
            path: dir.join(STATUS_FILE),
        }
    }

    /// The saved status line; `None` when there is none.
    pub fn load(&self) -> Result<Option<String>, StatusFileError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StatusFileError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let damaged = |reason: String| StatusFileError::Damaged {
            path: self.path.clone(),
            reason,
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        check_status(&stored.text).map_err(damaged)?;
        Ok(stored.text)
    }

    /// Save `text` (`None` clears it) durably.
    pub fn save(&self, text: &Option<String>) -> Result<(), StatusFileError> {
        let io = |source| StatusFileError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&Stored { text: text.clone() }).map_err(|e| io(e.into()))?;
        // Owner-only: what the user last told their switchboards is theirs.
        write_private_file(&self.path, &bytes).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_line_loads_back_and_damage_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let file = StatusFile::in_dir(dir.path());
        assert_eq!(file.load().expect("none yet"), None);
        file.save(&Some("out walking".into())).expect("save");
        assert_eq!(file.load().expect("load"), Some("out walking".into()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(STATUS_FILE))
                .expect("saved")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the status file is owner-only");
        file.save(&None).expect("clear");
        assert_eq!(file.load().expect("load"), None);
        std::fs::write(dir.path().join(STATUS_FILE), b"{not json").expect("damage");
        assert!(matches!(file.load(), Err(StatusFileError::Damaged { .. })));
    }
}
