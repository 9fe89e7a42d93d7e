//! A blob's name: the BLAKE3 hash of its bytes, and the reference a post carries.
//!
//! Printed like a message id but with the `&` sigil of SSB's blob links: `&<base64>.b3`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::blob::BlobError;
use crate::limits::BLOB_NAME_BYTES_MAX;

/// A blob's id: the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    /// Lowercase hex, the blob's file name.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parse a file name made by [`BlobId::hex`].
    pub fn from_hex(text: &str) -> Option<BlobId> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(BlobId(out))
    }

    /// The first characters of the printed id, for logs.
    pub fn short(&self) -> String {
        self.to_string().chars().take(9).collect()
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "&{}.b3", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for BlobId {
    type Err = BlobError;

    /// `&<base64>.b3`, the base64 alone, or 64 hex digits.
    fn from_str(text: &str) -> Result<BlobId, BlobError> {
        let text = text.trim();
        if let Some(id) = BlobId::from_hex(text) {
            return Ok(id);
        }
        let body = text.strip_prefix('&').unwrap_or(text);
        let body = body.strip_suffix(".b3").unwrap_or(body);
        let bytes = STANDARD
            .decode(body)
            .map_err(|_| BlobError::BadId(text.chars().take(80).collect()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BlobError::BadId(text.chars().take(80).collect()))?;
        Ok(BlobId(bytes))
    }
}

/// What a post says about an attached blob: its id, its size (so a follower can refuse one over
/// its limit before asking for a byte) and, optionally, the file name it was attached as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// The blob.
    pub id: BlobId,
    /// Its length in bytes.
    pub size: u64,
    /// The attached file's name (no folders), at most [`BLOB_NAME_BYTES_MAX`] bytes.
    pub name: Option<String>,
}

impl BlobRef {
    /// Check the name's bounds: one path component, no control characters.
    pub fn validate(&self) -> Result<(), BlobError> {
        if let Some(name) = &self.name {
            if name.len() > BLOB_NAME_BYTES_MAX {
                return Err(BlobError::NameInvalid(format!(
                    "the attachment's name is {} bytes; the most allowed is {BLOB_NAME_BYTES_MAX}",
                    name.len()
                )));
            }
            if name.is_empty()
                || name.contains(['/', '\\'])
                || name.chars().any(char::is_control)
                || name == "."
                || name == ".."
            {
                return Err(BlobError::NameInvalid(
                    "the attachment's name must be a plain file name".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_each_printed_form() {
        let id = BlobId::of(b"hello");
        assert_eq!(id.0, *blake3::hash(b"hello").as_bytes());
        assert_eq!(id.to_string().parse::<BlobId>().unwrap(), id);
        assert_eq!(id.hex().parse::<BlobId>().unwrap(), id);
        assert_eq!(BlobId::from_hex(&id.hex()), Some(id));
        assert!(id.to_string().starts_with('&') && id.to_string().ends_with(".b3"));
        assert!(matches!(
            "&abc.b3".parse::<BlobId>(),
            Err(BlobError::BadId(_))
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<BlobId>(),
            Err(BlobError::BadId(_))
        ));
    }

    #[test]
    fn a_reference_names_a_plain_file() {
        let r = |name: &str| BlobRef {
            id: BlobId::of(b"x"),
            size: 1,
            name: Some(name.into()),
        };
        assert!(r("cat.png").validate().is_ok());
        for bad in [
            "",
            "..",
            "a/b",
            "a\\b",
            "a\nb",
            &"x".repeat(BLOB_NAME_BYTES_MAX + 1),
        ] {
            assert!(
                matches!(r(bad).validate(), Err(BlobError::NameInvalid(_))),
                "{bad:?}"
            );
        }
    }
}
