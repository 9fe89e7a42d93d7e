//! Invite codes for an invite-only switchboard: single use, expiring, bounded, and kept in a
//! file in the switchboard's data directory so that a restart does not void them.
//!
//! The table is pure (time passed in); [`InviteFile`] adds the load and the atomic save.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::limits::INVITES_MAX;

/// Name of the invites file in the switchboard's data directory.
pub const INVITES_FILE: &str = "invites.json";

/// Why an invite was not accepted (or not made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// No code was given.
    #[error("this switchboard is invite-only; ask its operator for an invite code")]
    Missing,
    /// The code is unknown or was already used.
    #[error("that invite code is unknown or was already used")]
    Unknown,
    /// The code expired.
    #[error("that invite code has expired; ask for a new one")]
    Expired,
    /// Too many codes are outstanding.
    #[error("{INVITES_MAX} invite codes are outstanding; wait for some to be used or expire")]
    Full,
    /// The invites file could not be written or read.
    #[error("invites file: {0}")]
    Io(String),
}

/// Outstanding codes and when each expires (ms since the epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invites {
    codes: HashMap<String, u64>,
}

impl Invites {
    /// Make a new code valid until `now_ms + ttl_ms`.
    pub fn create(&mut self, now_ms: u64, ttl_ms: u64) -> Result<String, InviteError> {
        self.codes.retain(|_, expires| *expires > now_ms);
        if self.codes.len() >= INVITES_MAX {
            return Err(InviteError::Full);
        }
        let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        self.codes
            .insert(code.clone(), now_ms.saturating_add(ttl_ms));
        Ok(code)
    }

    /// Use a code: valid once, before it expires.
    pub fn redeem(&mut self, code: Option<&str>, now_ms: u64) -> Result<(), InviteError> {
        let code = code.ok_or(InviteError::Missing)?;
        let expires = self.codes.remove(code).ok_or(InviteError::Unknown)?;
        if expires <= now_ms {
            return Err(InviteError::Expired);
        }
        Ok(())
    }

    /// Codes outstanding.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether none is outstanding.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// The invites table with its file.
#[derive(Debug)]
pub struct InviteFile {
    path: PathBuf,
    /// The table.
    pub invites: Invites,
}

impl InviteFile {
    /// Load the file in `dir` (an empty table if there is none).
    pub fn load(dir: &Path) -> Result<InviteFile, InviteError> {
        let path = dir.join(INVITES_FILE);
        let invites = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| InviteError::Io(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Invites::default(),
            Err(e) => return Err(InviteError::Io(e.to_string())),
        };
        Ok(InviteFile { path, invites })
    }

    /// Write the table (to a temporary file, then renamed over the old one).
    pub fn save(&self) -> Result<(), InviteError> {
        let io = |e: std::io::Error| InviteError::Io(e.to_string());
        let bytes =
            serde_json::to_vec(&self.invites).map_err(|e| InviteError::Io(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_not_after_it_expires() {
        let mut invites = Invites::default();
        let code = invites.create(1_000, 500).unwrap();
        assert_eq!(invites.redeem(None, 1_100), Err(InviteError::Missing));
        assert_eq!(
            invites.redeem(Some("nope"), 1_100),
            Err(InviteError::Unknown)
        );
        assert_eq!(invites.redeem(Some(&code), 1_100), Ok(()));
        assert_eq!(
            invites.redeem(Some(&code), 1_200),
            Err(InviteError::Unknown)
        );
        let late = invites.create(2_000, 500).unwrap();
        assert_eq!(
            invites.redeem(Some(&late), 2_500),
            Err(InviteError::Expired)
        );
    }

    #[test]
    fn outstanding_codes_are_bounded_and_expired_ones_make_room() {
        let mut invites = Invites::default();
        for _ in 0..INVITES_MAX {
            invites.create(0, 10).unwrap();
        }
        assert_eq!(invites.create(5, 10), Err(InviteError::Full));
        assert!(invites.create(11, 10).is_ok());
        assert_eq!(invites.len(), 1);
    }

    #[test]
    fn the_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = InviteFile::load(dir.path()).unwrap();
        let code = file.invites.create(0, 1_000).unwrap();
        file.save().unwrap();
        let mut again = InviteFile::load(dir.path()).unwrap();
        assert_eq!(again.invites.redeem(Some(&code), 10), Ok(()));
    }
}
