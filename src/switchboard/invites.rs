//! Membership of an invite-only switchboard: invite codes (single use, expiring, bounded) and
//! the members they admitted, kept in a file in the switchboard's data directory so that a
//! restart voids neither.
//!
//! A code admits one key once; from then on that key is a member and rejoins without a code,
//! across reconnects and restarts, until the operator removes it. An open switchboard keeps no
//! member list (it has no `InviteFile` at all). The table is pure (time passed in);
//! [`InviteFile`] adds the load and the atomic save (0600, like every file that grants access).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::identity::FeedId;
use crate::limits::{INVITES_MAX, MEMBERS_MAX};
use crate::wire::switchboard::JoinRefusal;

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
    /// The member list is full.
    #[error(
        "this switchboard has {MEMBERS_MAX} members, its maximum; the operator can remove some"
    )]
    MembersFull,
    /// Too many codes are outstanding.
    #[error("{INVITES_MAX} invite codes are outstanding; wait for some to be used or expire")]
    Full,
    /// The invites file could not be written or read.
    #[error("invites file: {0}")]
    Io(String),
}

impl InviteError {
    /// What the refused daemon should do about it: only a new code helps a code that is
    /// missing, unknown, used or expired.
    pub fn refusal(&self) -> JoinRefusal {
        match self {
            Self::Missing | Self::Unknown | Self::Expired => JoinRefusal::Invite,
            Self::MembersFull | Self::Full => JoinRefusal::Busy,
            Self::Io(_) => JoinRefusal::Other,
        }
    }
}

/// A key an invite code admitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// When it first joined (ms since the epoch).
    pub since_ms: u64,
    /// The code it joined with (spent).
    pub code: String,
}

/// Outstanding codes and when each expires (ms since the epoch), and the members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invites {
    codes: HashMap<String, u64>,
    /// Members by printable id (JSON keys are strings; a file from before members were kept
    /// has none).
    #[serde(default)]
    members: BTreeMap<String, Member>,
}

/// Whether [`Invites::admit`] changed the table (so that it must be saved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Already a member: nothing changed.
    Member,
    /// A code was spent and the key became a member.
    NewMember,
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

    /// Admit `id`: a member rejoins without a code; anyone else spends one and becomes a member.
    pub fn admit(
        &mut self,
        id: FeedId,
        code: Option<&str>,
        now_ms: u64,
    ) -> Result<Admitted, InviteError> {
        let key = id.to_string();
        if self.members.contains_key(&key) {
            return Ok(Admitted::Member);
        }
        if self.members.len() >= MEMBERS_MAX {
            return Err(InviteError::MembersFull);
        }
        let code = code.ok_or(InviteError::Missing)?;
        self.redeem(Some(code), now_ms)?;
        let member = Member {
            since_ms: now_ms,
            code: code.to_string(),
        };
        self.members.insert(key, member);
        Ok(Admitted::NewMember)
    }

    /// Forget member `id`; false if it was not one.
    pub fn remove(&mut self, id: &FeedId) -> bool {
        self.members.remove(&id.to_string()).is_some()
    }

    /// Withdraw an outstanding code; false if there is no such code.
    pub fn revoke(&mut self, code: &str) -> bool {
        self.codes.remove(code).is_some()
    }

    /// The members, by printable id.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// The outstanding codes that have not expired, with their expiry, soonest first.
    pub fn codes(&self, now_ms: u64) -> Vec<(String, u64)> {
        let mut codes: Vec<(String, u64)> = self
            .codes
            .iter()
            .filter(|(_, expires)| **expires > now_ms)
            .map(|(code, expires)| (code.clone(), *expires))
            .collect();
        codes.sort_by_key(|(_, expires)| *expires);
        codes
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
        write_private(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

/// Write `bytes` to a new file readable only by its owner (the codes grant access).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
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
    fn a_member_rejoins_without_a_code_until_removed() {
        let mut invites = Invites::default();
        let (a, b) = (FeedId([1; 32]), FeedId([2; 32]));
        let code = invites.create(0, 1_000).unwrap();
        assert_eq!(invites.admit(a, None, 1), Err(InviteError::Missing));
        assert_eq!(invites.admit(a, Some(&code), 1), Ok(Admitted::NewMember));
        assert_eq!(invites.admit(a, None, 2), Ok(Admitted::Member));
        assert_eq!(
            invites.admit(a, Some("spent-or-not"), 3),
            Ok(Admitted::Member)
        );
        assert_eq!(invites.admit(b, Some(&code), 4), Err(InviteError::Unknown));
        assert_eq!(invites.members()[&a.to_string()].code, code);
        assert!(invites.remove(&a));
        assert!(!invites.remove(&a));
        assert_eq!(invites.admit(a, None, 5), Err(InviteError::Missing));
    }

    #[test]
    fn a_revoked_code_admits_no_one() {
        let mut invites = Invites::default();
        let code = invites.create(0, 1_000).unwrap();
        assert_eq!(invites.codes(0).len(), 1);
        assert!(invites.revoke(&code));
        assert!(!invites.revoke(&code));
        assert!(invites.codes(0).is_empty());
        let a = FeedId([1; 32]);
        assert_eq!(invites.admit(a, Some(&code), 1), Err(InviteError::Unknown));
    }

    #[test]
    fn the_file_is_private_and_keeps_members() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut file = InviteFile::load(dir.path()).unwrap();
        let code = file.invites.create(0, 1_000).unwrap();
        let a = FeedId([1; 32]);
        file.invites.admit(a, Some(&code), 1).unwrap();
        file.save().unwrap();
        let mode = std::fs::metadata(dir.path().join(INVITES_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut again = InviteFile::load(dir.path()).unwrap();
        assert_eq!(again.invites.admit(a, None, 2), Ok(Admitted::Member));
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
