//! The machine's raw limit for handshakes: the public-key work one side of kith's TLS 1.3
//! handshake cannot skip, timed in the bench's own run with the very primitives the handshake
//! uses (rustls' ring provider for the key exchange and the signature check, ed25519-dalek for
//! the signature, as `net::tls`'s signer), so that `kith bench relay` can print its connects
//! and reconnects per second beside the most the machine's cores could do if they did nothing
//! else.
//!
//! Per side, a first join signs once (CertificateVerify), parses and checks the peer's key (the
//! verifiers' own `key_of_spki`), verifies its signature once, and makes one X25519 key pair and
//! one shared secret. A resumed
//! session (PSK with fresh ECDHE, the only resumption rustls offers) skips the signatures and
//! keys but still runs the X25519 exchange. Everything else (hashing, AEAD, QUIC, the hello and
//! join) comes on top, so the ceilings derived here are upper bounds no implementation of this
//! protocol on this machine can pass.

use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, NamedGroup, PeerIncompatible, SignatureScheme};

use crate::net::tls::{key_of_spki, provider, spki_of};
use crate::net::NetError;

/// A TLS 1.3 CertificateVerify input is 64 spaces, a context string, a zero and a hash: about
/// this long.
const SIGNED_BYTES: usize = 130;

/// What one side's public-key work costs, in µs of one core.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct HandshakeCrypto {
    /// A full handshake's: one signature, one key check, one verification, one X25519 exchange.
    pub full_us: f64,
    /// A resumed handshake's: one X25519 exchange.
    pub resumed_us: f64,
}

impl HandshakeCrypto {
    /// Handshakes per second `cores` could complete if they did only this work for both sides
    /// (client and server on the same machine, as in `kith bench relay`): (full, resumed).
    pub fn ceilings_per_s(&self, cores: usize) -> (f64, f64) {
        let per_s = |us: f64| cores as f64 * 1e6 / (2.0 * us).max(f64::MIN_POSITIVE);
        (per_s(self.full_us), per_s(self.resumed_us))
    }
}

/// Time `rounds` of each part on this thread; the mean per part.
pub fn measure(rounds: u32) -> Result<HandshakeCrypto, NetError> {
    let rounds = rounds.max(1);
    let provider = provider();
    let key = SigningKey::from_bytes(&[11; 32]);
    let public = key.verifying_key();
    let spki = spki_of(&public);
    let message = [0x20u8; SIGNED_BYTES];
    let signature = key.sign(&message).to_bytes();
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(key.sign(std::hint::black_box(&message)));
    }
    let sign = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..rounds {
        let peer = key_of_spki(&spki).ok_or_else(bad_key)?;
        verify(&provider, peer.as_bytes(), &message, &signature)?;
    }
    let verify = started.elapsed().as_secs_f64();
    let exchange = time_x25519(&provider, rounds)?;
    let per = |s: f64| s * 1e6 / f64::from(rounds);
    Ok(HandshakeCrypto {
        full_us: per(sign + verify + exchange),
        resumed_us: per(exchange),
    })
}

fn bad_key() -> NetError {
    NetError::Tls(CertificateError::BadEncoding.into())
}

/// The provider's ed25519 verification, as rustls runs it for a handshake signature.
fn verify(
    provider: &CryptoProvider,
    public: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), NetError> {
    let algorithms = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == SignatureScheme::ED25519)
        .and_then(|(_, algorithms)| algorithms.first())
        .ok_or(NetError::Tls(
            PeerIncompatible::NoSignatureSchemesInCommon.into(),
        ))?;
    algorithms
        .verify_signature(public, message, signature)
        .map_err(|_| NetError::Tls(CertificateError::BadSignature.into()))
}

/// Seconds for `rounds` X25519 exchanges (a key pair, then a shared secret with a peer's key),
/// through the provider's key-exchange group as rustls uses it.
fn time_x25519(provider: &CryptoProvider, rounds: u32) -> Result<f64, NetError> {
    let group = provider
        .kx_groups
        .iter()
        .find(|g| g.name() == NamedGroup::X25519)
        .ok_or(NetError::Tls(PeerIncompatible::NoKxGroupsInCommon.into()))?;
    let peer = group.start().map_err(NetError::Tls)?;
    let peer_public = peer.pub_key().to_vec();
    let started = Instant::now();
    for _ in 0..rounds {
        let ours = group.start().map_err(NetError::Tls)?;
        let secret = ours.complete(&peer_public).map_err(NetError::Tls)?;
        std::hint::black_box(secret.secret_bytes());
    }
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_handshake_costs_more_than_a_resumed_one_and_the_ceilings_follow() {
        let crypto = measure(20).unwrap();
        assert!(crypto.resumed_us > 0.0);
        assert!(crypto.full_us > crypto.resumed_us, "{crypto:?}");
        let (full, resumed) = crypto.ceilings_per_s(2);
        assert!(resumed > full);
        assert!((full - 2.0 * 1e6 / (2.0 * crypto.full_us)).abs() < 1e-6);
    }

    #[test]
    fn a_bad_signature_or_key_is_refused() {
        let provider = provider();
        let key = SigningKey::from_bytes(&[5; 32]);
        let message = [1u8; SIGNED_BYTES];
        let mut signature = key.sign(&message).to_bytes();
        verify(
            &provider,
            key.verifying_key().as_bytes(),
            &message,
            &signature,
        )
        .unwrap();
        signature[0] ^= 1;
        assert!(verify(
            &provider,
            key.verifying_key().as_bytes(),
            &message,
            &signature
        )
        .is_err());
        // The identity point is of small order: the verifiers' key check refuses it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        assert!(key_of_spki(&spki_of(&weak)).is_none());
    }
}
