//! Private messages: one content key, sealed to each recipient and to the author, and the body
//! under that key, as SSB's private-box does. Sans-IO: bytes and keys in, bytes out.
//!
//! Layout of [`Content::Private`](crate::feed::Content::Private)'s sealed bytes:
//! [`DM_SLOTS`] key slots of [`SLOT_BYTES`] each, then a 24-byte nonce, then the body sealed with
//! XSalsa20-Poly1305 under the content key. A slot is a libsodium sealed box
//! (`crypto_box_seal`: an ephemeral X25519 key, XSalsa20-Poly1305) holding the 32-byte content
//! key. Every message has all [`DM_SLOTS`] slots, in random order, the unused ones random bytes:
//! a reader learns neither who the other readers are nor how many there are. A reader finds its
//! slot by trying each. The body (postcard [`Body`], zero-padded to a multiple of
//! [`DM_PAD_BYTES`]) names its author and recipients, so each reader knows who else reads it,
//! and a message republished in another feed is recognised ([`FeedError::PrivateForwarded`]).
//!
//! Keys: an ed25519 identity is converted to X25519 as libsodium's
//! `crypto_sign_ed25519_pk_to_curve25519` / `_sk_to_curve25519` do (the Edwards point mapped to
//! Montgomery form; the secret scalar the first half of SHA-512 of the seed, clamped).
//!
//! Why `crypto_box` (RustCrypto) and not `hpke`: a slot here is exactly libsodium's sealed box,
//! the primitive private-box builds on, so the format maps one to one onto what SSB users and
//! auditors know, with one well-kept implementation of the X25519 + XSalsa20-Poly1305 pair for
//! both the slots and the body (`crypto_secretbox`, its sibling crate). HPKE (RFC 9180) would
//! work as well but brings a second suite of KDF and AEAD choices for no gain in this design;
//! nothing here is hand-written cryptography.

use crypto_box::aead::{Aead, KeyInit};
use crypto_box::{PublicKey, SecretKey, SEALBYTES};
use crypto_secretbox::XSalsa20Poly1305;
use rand::seq::SliceRandom;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::feed::FeedError;
use crate::identity::{FeedId, Identity};
use crate::limits::{DM_PAD_BYTES, DM_RECIPIENTS_MAX, DM_SLOTS, DM_TEXT_BYTES_MAX};

/// Bytes of the content key.
const KEY_BYTES: usize = 32;
/// Bytes of one key slot: a sealed box around the content key.
pub const SLOT_BYTES: usize = SEALBYTES + KEY_BYTES;
/// Bytes of the body's nonce.
const NONCE_BYTES: usize = 24;
/// Bytes of the body's authentication tag.
const TAG_BYTES: usize = 16;
/// The fewest bytes a sealed payload can have: the slots, the nonce and an empty sealed body.
pub const SEALED_BYTES_MIN: usize = DM_SLOTS * SLOT_BYTES + NONCE_BYTES + TAG_BYTES;

/// What a private message says, as its readers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// Who sealed it (must be the feed it appears in).
    pub author: FeedId,
    /// Whom it is for (besides the author), as the author named them.
    pub recipients: Vec<FeedId>,
    /// The text.
    pub text: String,
}

impl Body {
    /// Everyone who can read it: the author and the recipients, each once, sorted.
    pub fn participants(&self) -> Vec<FeedId> {
        let mut all: Vec<FeedId> = self.recipients.clone();
        all.push(self.author);
        all.sort();
        all.dedup();
        all
    }

    fn validate(&self) -> Result<(), FeedError> {
        if self.recipients.is_empty() {
            return Err(FeedError::ContentInvalid(
                "a private message needs at least one recipient".into(),
            ));
        }
        if self.recipients.len() > DM_RECIPIENTS_MAX {
            return Err(FeedError::TooManyRecipients {
                len: self.recipients.len(),
                max: DM_RECIPIENTS_MAX,
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.recipients.iter().find(|r| !seen.insert(**r)) {
            return Err(FeedError::ContentInvalid(format!(
                "a private message names {twice} twice"
            )));
        }
        if self.text.trim().is_empty() {
            return Err(FeedError::ContentInvalid(
                "a private message needs some text".into(),
            ));
        }
        if self.text.len() > DM_TEXT_BYTES_MAX {
            return Err(FeedError::ContentInvalid(format!(
                "private message text is {} bytes; the most allowed is {DM_TEXT_BYTES_MAX}",
                self.text.len()
            )));
        }
        Ok(())
    }
}

fn malformed(why: impl Into<String>) -> FeedError {
    FeedError::PrivateMalformed(why.into())
}

/// The X25519 public key of a feed, converted from its ed25519 key as libsodium does.
pub fn x25519_public(id: &FeedId) -> Result<PublicKey, FeedError> {
    let key = id
        .strong_key()
        .map_err(|_| FeedError::BadAuthorKey(id.to_string()))?;
    Ok(PublicKey::from(key.to_montgomery().to_bytes()))
}

/// The X25519 secret key of an identity, converted from its ed25519 seed as libsodium does
/// (`SecretKey::from_bytes` clamps the scalar).
fn x25519_secret(identity: &Identity) -> SecretKey {
    SecretKey::from_bytes(identity.signing_key().to_scalar_bytes())
}

/// Check that `sealed` has the shape of a private message: every slot, the nonce, a tag, and a
/// padded body. Says nothing of who can open it.
pub fn check_shape(sealed: &[u8]) -> Result<(), FeedError> {
    if sealed.len() < SEALED_BYTES_MIN {
        return Err(malformed(format!(
            "{} bytes; a sealed message has at least {SEALED_BYTES_MIN}",
            sealed.len()
        )));
    }
    let body = sealed.len() - DM_SLOTS * SLOT_BYTES - NONCE_BYTES - TAG_BYTES;
    if !body.is_multiple_of(DM_PAD_BYTES) {
        return Err(malformed(format!(
            "the sealed body is {body} bytes, not a multiple of {DM_PAD_BYTES}"
        )));
    }
    Ok(())
}

/// Seal `text` from `author` to `recipients` (1..=[`DM_RECIPIENTS_MAX`], each once; the author
/// may not be among them: it always has its own slot).
pub fn seal(
    author: &Identity,
    recipients: &[FeedId],
    text: &str,
    rng: &mut (impl RngCore + rand::CryptoRng),
) -> Result<Vec<u8>, FeedError> {
    let me = author.id();
    if recipients.contains(&me) {
        return Err(FeedError::ContentInvalid(
            "you are always a reader of your own private messages: leave your own id out".into(),
        ));
    }
    let body = Body {
        author: me,
        recipients: recipients.to_vec(),
        text: text.to_string(),
    };
    body.validate()?;
    let mut keys = Vec::with_capacity(recipients.len() + 1);
    for id in recipients.iter().chain(std::iter::once(&me)) {
        keys.push(x25519_public(id)?);
    }
    let mut content_key = [0u8; KEY_BYTES];
    rng.fill_bytes(&mut content_key);
    let mut slots: Vec<Vec<u8>> = Vec::with_capacity(DM_SLOTS);
    for key in &keys {
        let slot = key
            .seal(rng, &content_key)
            .map_err(|_| malformed("sealing a key slot failed"))?;
        slots.push(slot);
    }
    while slots.len() < DM_SLOTS {
        let mut filler = vec![0u8; SLOT_BYTES];
        rng.fill_bytes(&mut filler);
        slots.push(filler);
    }
    slots.shuffle(rng);
    let mut plain =
        postcard::to_stdvec(&body).map_err(|e| FeedError::PayloadMalformed(e.to_string()))?;
    // Padded as if every recipient slot were named, then to the pad step: the length depends on
    // the text only, never on how many read it.
    let unnamed = (DM_RECIPIENTS_MAX - recipients.len()) * 32;
    plain.resize(
        (plain.len() + unnamed).div_ceil(DM_PAD_BYTES) * DM_PAD_BYTES,
        0,
    );
    let mut nonce = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut nonce);
    let cipher = XSalsa20Poly1305::new((&content_key).into());
    let sealed_body = cipher
        .encrypt((&nonce).into(), plain.as_slice())
        .map_err(|_| malformed("sealing the body failed"))?;
    let mut out = Vec::with_capacity(DM_SLOTS * SLOT_BYTES + NONCE_BYTES + sealed_body.len());
    for slot in &slots {
        out.extend_from_slice(slot);
    }
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed_body);
    check_shape(&out)?;
    Ok(out)
}

/// Open a private message found in `author`'s feed with `reader`'s key: `Ok(None)` if it is not
/// for this reader (no slot opens), the body if it is, and an error if a slot opens but the body
/// does not decrypt, decode or validate, or names another author.
pub fn open(reader: &Identity, author: &FeedId, sealed: &[u8]) -> Result<Option<Body>, FeedError> {
    check_shape(sealed)?;
    let secret = x25519_secret(reader);
    let (slots, rest) = sealed.split_at(DM_SLOTS * SLOT_BYTES);
    let Some(content_key) = slots
        .chunks_exact(SLOT_BYTES)
        .find_map(|slot| secret.unseal(slot).ok())
    else {
        return Ok(None);
    };
    let content_key: [u8; KEY_BYTES] = content_key
        .try_into()
        .map_err(|_| malformed("a key slot holds no content key"))?;
    let (nonce, sealed_body) = rest.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce
        .try_into()
        .map_err(|_| malformed("the nonce is cut short"))?;
    let cipher = XSalsa20Poly1305::new((&content_key).into());
    let plain = cipher
        .decrypt((&nonce).into(), sealed_body)
        .map_err(|_| malformed("the body does not open with the key in its slot"))?;
    let (body, padding) = postcard::take_from_bytes::<Body>(&plain)
        .map_err(|e| malformed(format!("the body does not decode: {e}")))?;
    if padding.iter().any(|b| *b != 0) {
        return Err(malformed("the body's padding is not zeros"));
    }
    body.validate()
        .map_err(|e| malformed(format!("the body is refused: {e}")))?;
    if body.author != *author {
        return Err(FeedError::PrivateForwarded {
            author: *author,
            sealed_by: body.author,
        });
    }
    if !body.participants().contains(&reader.id()) {
        return Err(malformed(
            "a slot opened for a reader the body does not name",
        ));
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Identity> {
        (0..n).map(|_| Identity::generate()).collect()
    }

    #[test]
    fn each_reader_opens_it_and_no_one_else_does() {
        let a = Identity::generate();
        let readers = ids(3);
        let stranger = Identity::generate();
        let to: Vec<FeedId> = readers.iter().map(Identity::id).collect();
        let sealed = seal(&a, &to, "meet at noon", &mut rand::thread_rng()).unwrap();
        for who in readers.iter().chain(std::iter::once(&a)) {
            let body = open(who, &a.id(), &sealed).unwrap().unwrap();
            assert_eq!(body.text, "meet at noon");
            assert_eq!(body.recipients, to);
            assert_eq!(body.author, a.id());
        }
        assert_eq!(open(&stranger, &a.id(), &sealed).unwrap(), None);
        // Neither the text nor any reader's key (ed25519 or X25519) shows in the bytes.
        let window = |needle: &[u8]| sealed.windows(needle.len()).any(|w| w == needle);
        assert!(!window(b"meet at noon"));
        for id in to.iter().chain(std::iter::once(&a.id())) {
            assert!(!window(&id.0));
            assert!(!window(x25519_public(id).unwrap().as_bytes()));
        }
    }

    #[test]
    fn the_size_does_not_tell_how_many_read_it() {
        let a = Identity::generate();
        let seven: Vec<FeedId> = ids(7).iter().map(Identity::id).collect();
        for text in ["hi", &"x".repeat(300)] {
            let lens: Vec<usize> = (1..=7)
                .map(|n| {
                    seal(&a, &seven[..n], text, &mut rand::thread_rng())
                        .unwrap()
                        .len()
                })
                .collect();
            assert!(lens.iter().all(|l| *l == lens[0]), "{lens:?}");
        }
    }

    #[test]
    fn eight_recipients_an_empty_text_and_a_repeat_are_refused_by_name() {
        let a = Identity::generate();
        let eight: Vec<FeedId> = ids(8).iter().map(Identity::id).collect();
        assert_eq!(
            seal(&a, &eight, "hi", &mut rand::thread_rng()),
            Err(FeedError::TooManyRecipients { len: 8, max: 7 })
        );
        let b = Identity::generate().id();
        for (to, text) in [(vec![b], "  "), (vec![b, b], "hi"), (vec![], "hi")] {
            assert!(matches!(
                seal(&a, &to, text, &mut rand::thread_rng()),
                Err(FeedError::ContentInvalid(_))
            ));
        }
        assert!(seal(&a, &[a.id()], "hi", &mut rand::thread_rng()).is_err());
        let long = "x".repeat(DM_TEXT_BYTES_MAX + 1);
        assert!(seal(&a, &[b], &long, &mut rand::thread_rng()).is_err());
        let most = "x".repeat(DM_TEXT_BYTES_MAX);
        let seven: Vec<FeedId> = ids(7).iter().map(Identity::id).collect();
        let biggest = seal(&a, &seven, &most, &mut rand::thread_rng()).unwrap();
        let payload = crate::feed::Content::Private { sealed: biggest }
            .encode()
            .unwrap();
        assert!(payload.len() <= crate::limits::PAYLOAD_BYTES_MAX);
    }

    #[test]
    fn malformed_and_tampered_payloads_are_refused_by_name() {
        let a = Identity::generate();
        let b = Identity::generate();
        let sealed = seal(&a, &[b.id()], "hello", &mut rand::thread_rng()).unwrap();
        for cut in [0, 1, SEALED_BYTES_MIN - 1, sealed.len() - 1] {
            assert!(matches!(
                open(&b, &a.id(), &sealed[..cut]),
                Err(FeedError::PrivateMalformed(_))
            ));
        }
        // A flipped body byte: b's slot opens, the body does not.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            open(&b, &a.id(), &bad),
            Err(FeedError::PrivateMalformed(_))
        ));
        // The same bytes in another feed: a republished message.
        let c = Identity::generate();
        assert_eq!(
            open(&b, &c.id(), &sealed),
            Err(FeedError::PrivateForwarded {
                author: c.id(),
                sealed_by: a.id()
            })
        );
    }
}
