//! Trust on first use: which key to dial a node at an address with, when its key may not be
//! known yet.
//!
//! A dialer given `@ID@HOST:PORT` dials with that key. Given only `HOST:PORT`, it learns the key
//! as SSH does with known hosts: a probe dial expects the dialer's own key, which no other node
//! can prove, so the handshake fails naming the key the far side *did* prove; the next dial
//! expects (pins) that key. Three dialers do this — a daemon's switchboard link, a switchboard's
//! cluster link and `kith connect` — and each decides how long to keep what it learned.
//!
//! [`learned`] reads a probe's outcome without doing any IO; [`pin`] is the thin async glue
//! around one probe dial.

use std::net::SocketAddr;

use ed25519_dalek::VerifyingKey;

use crate::net::{NetError, PeerEndpoint};

/// The key to dial with, and whether it was just learned (so the caller may keep it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// The key the node must prove.
    pub key: VerifyingKey,
    /// True if a probe learned it now (trust on first use); false if it was given.
    pub learned: bool,
}

/// Why no key could be learned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The probe dial failed without the far side proving a key (unreachable, timeout, ...).
    #[error(transparent)]
    Probe(NetError),
    /// The probe's handshake succeeded: the far side proved this endpoint's own key.
    #[error("that address is this node itself")]
    OwnAddress,
}

/// The key a first-use probe learned. The probe expected the dialer's own key, so a handshake
/// that fails on a key mismatch names the far side's key, and one that succeeds reached the
/// dialer itself.
pub fn learned<T>(probe: Result<T, NetError>) -> Result<VerifyingKey, PinError> {
    match probe {
        Err(NetError::PeerKeyMismatch(mismatch)) => Ok(mismatch.presented),
        Err(e) => Err(PinError::Probe(e)),
        Ok(_) => Err(PinError::OwnAddress),
    }
}

/// The key to dial `addr` with: `pinned` if given, else the key a probe dial from `endpoint`
/// learns (the probe expects [`PeerEndpoint::public_key`], which only this endpoint can prove).
pub async fn pin(
    endpoint: &PeerEndpoint,
    addr: SocketAddr,
    pinned: Option<VerifyingKey>,
) -> Result<Pinned, PinError> {
    if let Some(key) = pinned {
        return Ok(Pinned {
            key,
            learned: false,
        });
    }
    let key = learned(endpoint.dial(addr, endpoint.public_key()).await)?;
    Ok(Pinned { key, learned: true })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::net::endpoint::accept;
    use crate::net::KeyMismatch;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn a_mismatch_names_the_key_to_pin_and_a_success_is_the_own_address() {
        let (own, theirs) = (key(1).verifying_key(), key(2).verifying_key());
        let mismatch = NetError::PeerKeyMismatch(Box::new(KeyMismatch {
            expected: own,
            presented: theirs,
        }));
        assert_eq!(learned::<()>(Err(mismatch)).unwrap(), theirs);
        assert!(matches!(learned(Ok(())), Err(PinError::OwnAddress)));
        assert_eq!(
            learned(Ok(())).unwrap_err().to_string(),
            "that address is this node itself"
        );
        let other = learned::<()>(Err(NetError::NoPeerKey)).unwrap_err();
        assert!(matches!(other, PinError::Probe(NetError::NoPeerKey)));
        assert_eq!(other.to_string(), NetError::NoPeerKey.to_string());
    }

    fn bind(n: u8) -> Arc<PeerEndpoint> {
        let addr = "127.0.0.1:0".parse().unwrap();
        let endpoint = Arc::new(PeerEndpoint::bind(addr, &key(n)).unwrap());
        let listening = Arc::clone(&endpoint);
        tokio::spawn(async move {
            while let Some(incoming) = listening.incoming().await {
                tokio::spawn(accept(incoming));
            }
        });
        endpoint
    }

    #[tokio::test]
    async fn a_given_key_is_kept_and_an_unknown_one_is_learned_by_a_probe() {
        let (a, b) = (bind(1), bind(2));
        let b_addr = b.local_addr().unwrap();
        let given = pin(&a, b_addr, Some(key(9).verifying_key())).await.unwrap();
        assert_eq!(
            given,
            Pinned {
                key: key(9).verifying_key(),
                learned: false
            }
        );
        let first_use = pin(&a, b_addr, None).await.unwrap();
        assert_eq!(
            first_use,
            Pinned {
                key: b.public_key(),
                learned: true
            }
        );
        let own = pin(&a, a.local_addr().unwrap(), None).await;
        assert!(matches!(own, Err(PinError::OwnAddress)), "{own:?}");
    }
}
