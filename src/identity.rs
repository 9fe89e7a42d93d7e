//! Node identity: an ed25519 key pair, and the printable ids derived from it.
//!
//! A [`FeedId`] is a public key. It prints as `@<base64>.ed25519` (the form SSB users know) and
//! parses back from that form, so ids can be copied between terminals and round-trip exactly.
//! The secret key lives in one file in the data directory, readable only by its owner. Its
//! 32-byte seed can be written down as a recovery phrase (24 BIP-39 English words, the last
//! carrying a checksum) and the same identity rebuilt from it ([`Identity::recovery_phrase`],
//! [`Identity::from_recovery_phrase`]).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// File name of the secret key inside the data directory.
pub const SECRET_FILE: &str = "secret.key";
const SECRET_MAGIC: &str = "kith-ed25519-secret-v1";

/// A feed's id: the author's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedId(pub [u8; 32]);

/// Why an id or identity could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The text is not `@<base64 of 32 bytes>.ed25519`.
    #[error("`{0}` is not a kith id: expected @<base64>.ed25519 (as printed by `kith whoami`)")]
    BadId(String),
    /// The bytes are not a valid ed25519 public key.
    #[error("`{0}` is not a valid ed25519 public key")]
    BadKey(String),
    /// The key is one of the weak (small-order) ed25519 points, such as all zeros: anyone can
    /// forge its signatures, so no one can hold it as an identity.
    #[error(
        "`{0}` is a weak ed25519 key (all zeros or of small order): no one can own it; refused"
    )]
    WeakKey(String),
    /// `kith init` found an identity already there.
    #[error("an identity already exists at {0}; refusing to overwrite it")]
    Exists(String),
    /// There is no identity yet.
    #[error("no identity at {0}; run `kith init` first")]
    Missing(String),
    /// The secret file is not ours or is damaged.
    #[error("the secret key file {0} is damaged or not a kith key")]
    Corrupt(String),
    /// The secret file can be read by others.
    #[error("the secret key file {path} has mode {mode:o}; it must be readable only by its owner (chmod 600)")]
    Permissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// A recovery phrase does not decode: a word not in the BIP-39 English list, a word count
    /// other than 24, or a checksum that does not match (a word mistyped or swapped).
    #[error("that is not a kith recovery phrase: {0}")]
    BadPhrase(String),
    /// Reading or writing the file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl FeedId {
    /// The verifying key, if the bytes are a valid point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadKey(self.to_string()))
    }

    /// The public key, refused if it is not valid or is weak (small order, such as all zeros):
    /// the check every id a user types and every entry's author goes through.
    pub fn strong_key(&self) -> Result<VerifyingKey, IdentityError> {
        let key = self.verifying_key()?;
        if key.is_weak() {
            return Err(IdentityError::WeakKey(self.to_string()));
        }
        Ok(key)
    }

    /// A short form for logs: the first 8 base64 characters.
    pub fn short(&self) -> String {
        let full = STANDARD.encode(self.0);
        format!("@{}", &full[..8])
    }
}

impl From<VerifyingKey> for FeedId {
    fn from(key: VerifyingKey) -> Self {
        FeedId(key.to_bytes())
    }
}

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}.ed25519", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FeedId({})", self.short())
    }
}

impl FromStr for FeedId {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let id =
            FeedId::from_printed(text).ok_or_else(|| IdentityError::BadId(text.to_string()))?;
        id.strong_key()?;
        Ok(id)
    }
}

impl FeedId {
    /// The id printed as `text` (`@<base64>.ed25519`), read as bytes only: unlike
    /// [`FromStr`], the key is not decompressed and checked (about 14 µs). Only for ids used as
    /// lookup keys (a switchboard's presence keys, matched against the ids its clients watch),
    /// never for an id anything is verified against.
    pub fn from_printed(text: &str) -> Option<FeedId> {
        let body = text
            .trim()
            .strip_prefix('@')
            .and_then(|t| t.strip_suffix(".ed25519"))?;
        let key: [u8; 32] = STANDARD.decode(body).ok()?.try_into().ok()?;
        Some(FeedId(key))
    }
}

/// This node's key pair.
pub struct Identity {
    signing: SigningKey,
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Identity {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// An identity from a 32-byte seed (tests and benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Identity {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// This node's id.
    pub fn id(&self) -> FeedId {
        FeedId(self.signing.verifying_key().to_bytes())
    }

    /// The signing key, for signing entries and for the transport's TLS identity.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The recovery phrase: the seed as 24 BIP-39 English words. Whoever holds it holds the
    /// identity.
    pub fn recovery_phrase(&self) -> String {
        // 32 bytes is a valid BIP-39 entropy length, so this cannot fail; an empty phrase (which
        // no restore accepts) stands in rather than a panic.
        bip39::Mnemonic::from_entropy(&self.signing.to_bytes())
            .map(|m| m.to_string())
            .unwrap_or_default()
    }

    /// Rebuild an identity from its recovery phrase (case and extra whitespace do not matter).
    pub fn from_recovery_phrase(phrase: &str) -> Result<Self, IdentityError> {
        let words: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
        if words.len() != 24 {
            return Err(IdentityError::BadPhrase(format!(
                "it has {} words; a recovery phrase has 24",
                words.len()
            )));
        }
        let mnemonic = bip39::Mnemonic::parse_in(bip39::Language::English, words.join(" "))
            .map_err(|e| IdentityError::BadPhrase(e.to_string()))?;
        let seed: [u8; 32] = mnemonic
            .to_entropy()
            .try_into()
            .map_err(|_| IdentityError::BadPhrase("it does not hold 32 bytes".into()))?;
        Ok(Identity::from_seed(seed))
    }

    /// Create the identity file in `dir`, refusing to overwrite one that exists.
    pub fn create(dir: &Path) -> Result<Self, IdentityError> {
        Identity::generate().save_new(dir)
    }

    /// Write this identity as the identity file in `dir`, refusing to overwrite one that exists
    /// (a new identity, or one restored from its recovery phrase).
    pub fn save_new(self, dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(SECRET_FILE);
        let shown = path.display().to_string();
        let io = |source| IdentityError::Io {
            path: shown.clone(),
            source,
        };
        let identity = self;
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(IdentityError::Exists(shown))
            }
            Err(e) => return Err(io(e)),
        };
        let text = format!(
            "{SECRET_MAGIC}\n{}\n",
            STANDARD.encode(identity.signing.to_bytes())
        );
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(identity)
    }

    /// Load the identity from `dir`; the file must be owner-only.
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(SECRET_FILE);
        let shown = path.display().to_string();
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IdentityError::Missing(shown))
            }
            Err(source) => {
                return Err(IdentityError::Io {
                    path: shown,
                    source,
                })
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions { path: shown, mode });
        }
        let text = fs::read_to_string(&path).map_err(|source| IdentityError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut lines = text.lines();
        if lines.next() != Some(SECRET_MAGIC) {
            return Err(IdentityError::Corrupt(shown));
        }
        let seed = lines
            .next()
            .and_then(|l| STANDARD.decode(l.trim()).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| IdentityError::Corrupt(shown.clone()))?;
        Ok(Identity::from_seed(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_phrase_rebuilds_the_same_identity_and_typos_are_refused() {
        let identity = Identity::generate();
        let phrase = identity.recovery_phrase();
        let words: Vec<&str> = phrase.split(' ').collect();
        assert_eq!(words.len(), 24);
        let back =
            Identity::from_recovery_phrase(&format!("  {}\n", phrase.to_uppercase())).unwrap();
        assert_eq!(back.id(), identity.id());
        assert_eq!(
            back.signing_key().to_bytes(),
            identity.signing_key().to_bytes()
        );
        // Two words swapped: the checksum no longer matches.
        let mut swapped = words.clone();
        let other = (1..24).find(|&i| swapped[i] != swapped[0]).unwrap();
        swapped.swap(0, other);
        for bad in [
            swapped.join(" "),
            words[..23].join(" "),
            format!("{} notaword", words[..23].join(" ")),
            String::new(),
        ] {
            assert!(
                matches!(
                    Identity::from_recovery_phrase(&bad),
                    Err(IdentityError::BadPhrase(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn weak_keys_are_refused_by_name() {
        let zero = FeedId([0; 32]).to_string();
        assert!(
            matches!(zero.parse::<FeedId>(), Err(IdentityError::WeakKey(_))),
            "the all-zero key parsed"
        );
        // The identity point (1, 0…) is of small order too.
        let mut one = [0u8; 32];
        one[0] = 1;
        let one = FeedId(one).to_string();
        assert!(matches!(
            one.parse::<FeedId>(),
            Err(IdentityError::WeakKey(_))
        ));
        let real = Identity::from_seed([7; 32]).id();
        assert_eq!(real.to_string().parse::<FeedId>().unwrap(), real);
    }

    #[test]
    fn from_printed_reads_the_bytes_without_the_key_check() {
        let real = Identity::from_seed([7; 32]).id();
        assert_eq!(FeedId::from_printed(&real.to_string()), Some(real));
        // A weak key reads as bytes (parse refuses it), a malformed id does not read at all.
        let zero = FeedId([0; 32]);
        assert_eq!(FeedId::from_printed(&zero.to_string()), Some(zero));
        for bad in ["", "@.ed25519", "abc", "@AAAA.ed25519", "@%%%.ed25519"] {
            assert_eq!(FeedId::from_printed(bad), None, "{bad}");
        }
    }

    #[test]
    fn id_round_trips_through_text() {
        let id = Identity::from_seed([7; 32]).id();
        let text = id.to_string();
        assert!(text.starts_with('@') && text.ends_with(".ed25519"));
        assert_eq!(text.parse::<FeedId>().unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "@.ed25519", "abc", "@AAAA.ed25519", "@%%%.ed25519"] {
            assert!(
                matches!(bad.parse::<FeedId>(), Err(IdentityError::BadId(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_refuses_to_overwrite_and_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let made = Identity::create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            Identity::create(dir.path()),
            Err(IdentityError::Exists(_))
        ));
        assert_eq!(Identity::load(dir.path()).unwrap().id(), made.id());
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::create(dir.path()).unwrap();
        let path = dir.path().join(SECRET_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::Permissions { .. })
        ));
    }
}
