//! A status line sealed end to end: what a daemon gives its switchboards instead of the text,
//! and how a watcher holding the owner's content key opens it.
//!
//! The switchboard stores and forwards only this ciphertext (issue 19, item 2). The content key
//! ([`StatusKey`]) goes from the owner to each contact it allows over their own end-to-end QUIC
//! connection (a `StatusKey` message of the peer protocol), never through a switchboard; it is
//! rotated when someone loses the view ([`crate::daemon::uplink::audience`]).
//!
//! Why `crypto_secretbox` (RustCrypto) with XSalsa20-Poly1305: it is libsodium's
//! `crypto_secretbox`, the most widely deployed and studied secret-key AEAD construction (NaCl),
//! kept by RustCrypto with their other AEADs (the RustCrypto AEAD crates were audited by NCC
//! Group), with 24-byte nonces that are safe to draw at random for every seal; the crate is
//! already this workspace's choice for private messages' bodies (`feed::private`), so one
//! implementation serves both. (chacha20poly1305 would do as well; a second AEAD crate would
//! buy nothing.) Nothing here is hand-written cryptography: padding and framing only.
//!
//! The plaintext is `owner (32) ‖ epoch (8, BE) ‖ length (1) ‖ text ‖ zeros`, padded to
//! [`STATUS_PADDED_BYTES`] past the header, so the ciphertext has one length whatever the text
//! (its length tells nothing), and a sealed line cannot be replayed as another owner's or under
//! another epoch (secretbox takes no associated data, so they are bound inside).

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use rand::RngCore;

use crate::daemon::uplink::audience::StatusKey;
use crate::identity::FeedId;
use crate::limits::{STATUS_BYTES_MAX, STATUS_PADDED_BYTES};
use crate::wire::switchboard::SealedStatus;

const HEADER_BYTES: usize = 32 + 8;

/// Why a status line could not be sealed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The text is over [`STATUS_BYTES_MAX`].
    #[error("a status line may be at most {STATUS_BYTES_MAX} bytes (this one is {0})")]
    TooLong(usize),
    /// The cipher refused (it does not for inputs of this size).
    #[error("the status line could not be sealed")]
    Cipher,
}

/// Seal `text` (owned by `owner`) under `key`, with a random nonce from `rng`.
pub fn seal(
    owner: &FeedId,
    key: &StatusKey,
    text: &str,
    rng: &mut impl RngCore,
) -> Result<SealedStatus, SealError> {
    let bytes = text.as_bytes();
    let len = u8::try_from(bytes.len())
        .ok()
        .filter(|n| usize::from(*n) <= STATUS_BYTES_MAX)
        .ok_or(SealError::TooLong(bytes.len()))?;
    let mut plain = Vec::with_capacity(HEADER_BYTES + STATUS_PADDED_BYTES);
    plain.extend_from_slice(&owner.0);
    plain.extend_from_slice(&key.epoch.to_be_bytes());
    plain.push(len);
    plain.extend_from_slice(bytes);
    plain.resize(HEADER_BYTES + STATUS_PADDED_BYTES, 0);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let cipher = XSalsa20Poly1305::new(&key.key.into());
    let sealed = cipher
        .encrypt(&nonce.into(), plain.as_slice())
        .map_err(|_| SealError::Cipher)?;
    Ok(SealedStatus {
        epoch: key.epoch,
        nonce,
        sealed,
    })
}

/// Open `status` (claimed to be `owner`'s) with `key`; `None` if the key is not the one it was
/// sealed with, or it was tampered with, or it is not `owner`'s.
pub fn open(owner: &FeedId, key: &StatusKey, status: &SealedStatus) -> Option<String> {
    if status.epoch != key.epoch {
        return None;
    }
    let cipher = XSalsa20Poly1305::new(&key.key.into());
    let plain = cipher
        .decrypt(&status.nonce.into(), status.sealed.as_slice())
        .ok()?;
    let (header, body) = plain.split_at_checked(HEADER_BYTES)?;
    if header[..32] != owner.0 || header[32..] != key.epoch.to_be_bytes() {
        return None;
    }
    let (len, text) = body.split_first()?;
    let text = text.get(..usize::from(*len))?;
    String::from_utf8(text.to_vec()).ok()
}

/// Bytes of a sealed status line: the same for every text.
pub const SEALED_BYTES: usize = HEADER_BYTES + STATUS_PADDED_BYTES + 16;

const _: () = assert!(SEALED_BYTES == crate::limits::SEALED_STATUS_BYTES_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    fn key(epoch: u64, b: u8) -> StatusKey {
        StatusKey {
            epoch,
            key: [b; 32],
        }
    }

    const OWNER: FeedId = FeedId([1; 32]);

    #[test]
    fn sealed_text_opens_only_with_its_key_owner_and_epoch() {
        let mut rng = rand::thread_rng();
        let k = key(5, 7);
        let s = seal(&OWNER, &k, "at the lake", &mut rng).unwrap();
        assert_eq!(open(&OWNER, &k, &s).as_deref(), Some("at the lake"));
        assert_eq!(open(&OWNER, &key(5, 8), &s), None, "another key");
        assert_eq!(open(&FeedId([2; 32]), &k, &s), None, "another owner");
        let mut relabelled = s.clone();
        relabelled.epoch = 6;
        assert_eq!(open(&OWNER, &key(6, 7), &relabelled), None, "another epoch");
        let mut tampered = s.clone();
        tampered.sealed[50] ^= 1;
        assert_eq!(open(&OWNER, &k, &tampered), None, "tampered");
    }

    #[test]
    fn every_line_seals_to_one_length_and_the_text_is_not_in_it() {
        let mut rng = rand::thread_rng();
        let k = key(1, 3);
        let short = seal(&OWNER, &k, "", &mut rng).unwrap();
        let long = "x".repeat(STATUS_BYTES_MAX);
        let full = seal(&OWNER, &k, &long, &mut rng).unwrap();
        assert_eq!(short.sealed.len(), SEALED_BYTES);
        assert_eq!(full.sealed.len(), SEALED_BYTES);
        assert_eq!(open(&OWNER, &k, &full), Some(long.clone()));
        assert!(!full.sealed.windows(8).any(|w| w == b"xxxxxxxx"));
        assert_eq!(
            seal(&OWNER, &k, &format!("{long}x"), &mut rng),
            Err(SealError::TooLong(STATUS_BYTES_MAX + 1))
        );
    }
}
