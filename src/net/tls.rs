//! RFC 7250 raw-public-key TLS 1.3 bound to ed25519 identities.
//!
//! The node's ed25519 identity key is the TLS key, and the "certificate" is only its
//! SubjectPublicKeyInfo (no X.509, no CA). Both sides authenticate:
//!
//! - the **server** requires a client key and accepts any well-formed ed25519 key at the TLS level;
//!   the application decides who is welcome, from [`peer_key`];
//! - the **client** is built per dial with the key it expects and refuses any other (impersonation
//!   fails in the handshake, before a byte of application data).
//!
//! TLS 1.3 only, ed25519 only, ALPN [`ALPN`], SNI off (the server name carries the expected key
//! locally and must not leak in the cleartext Initial), no session resumption and no 0-RTT (a
//! resumed session would skip our verifiers). Providers are always explicit (ring): nothing here
//! relies on a process-wide default `CryptoProvider`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::NetError;

/// The ALPN protocol id of kith's wire protocol, version 1.
pub const ALPN: &[u8] = b"kith/1";

/// RFC 8410 PKCS#8 v1 prefix for an ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// DER prefix of an ed25519 SubjectPublicKeyInfo; the 32-byte public key follows.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The ring provider, shared by every config so that no config depends on a process default.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A node's TLS identity: its ed25519 key in the form rustls signs with, built once per endpoint.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    certified: Arc<CertifiedKey>,
    public: VerifyingKey,
}

impl TlsIdentity {
    /// Wraps `key` as a raw-public-key TLS identity.
    pub fn new(key: &SigningKey) -> Result<Self, NetError> {
        let mut pkcs8 = Vec::with_capacity(PKCS8_ED25519_PREFIX.len() + 32);
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(key.as_bytes());
        let signer = rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(pkcs8))?;
        let public = key.verifying_key();
        let spki = CertificateDer::from(spki_of(&public));
        debug_assert_eq!(signer.public_key().as_deref(), Some(spki.as_ref()));
        let certified = Arc::new(CertifiedKey::new(vec![spki], signer));
        Ok(Self { certified, public })
    }

    /// The public half of the identity.
    pub fn public(&self) -> VerifyingKey {
        self.public
    }
}

/// The rustls server config: mutual raw-public-key auth, any well-formed ed25519 client key.
pub fn server_config(identity: &TlsIdentity) -> Result<rustls::ServerConfig, NetError> {
    let verifier = Arc::new(AnyClientKey {
        provider: provider(),
    });
    let resolver = Arc::new(rustls::server::AlwaysResolvesServerRawPublicKeys::new(
        identity.certified.clone(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// The rustls client config for one dial: it proves `identity` and accepts only `expected`.
///
/// The returned [`KeyProbe`] records the key the server presented if it was not `expected`, so
/// the dialer can report a named [`NetError::PeerKeyMismatch`] rather than a bare TLS alert.
pub fn client_config(
    identity: &TlsIdentity,
    expected: VerifyingKey,
) -> Result<(rustls::ClientConfig, KeyProbe), NetError> {
    let probe = KeyProbe::default();
    let verifier = Arc::new(ExpectedServerKey {
        expected,
        probe: probe.clone(),
        provider: provider(),
    });
    let resolver = Arc::new(rustls::client::AlwaysResolvesClientRawPublicKeys::new(
        identity.certified.clone(),
    ));
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    Ok((config, probe))
}

/// The local server name for a dial to `key`: `<32 hex>.<32 hex>.peer`.
///
/// A 64-hex label would exceed DNS's 63-byte label limit, hence two labels. SNI is off, so the
/// name never leaves the process; it only labels the connection in logs.
pub fn server_name(key: &VerifyingKey) -> String {
    let hex = KeyHex(key).to_string();
    let (first, second) = hex.split_at(32);
    format!("{first}.{second}.peer")
}

/// The ed25519 key the peer proved in the TLS handshake of `conn`.
pub fn peer_key(conn: &quinn::Connection) -> Result<VerifyingKey, NetError> {
    let identity = conn.peer_identity().ok_or(NetError::NoPeerKey)?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| NetError::NoPeerKey)?;
    match chain.as_slice() {
        [spki] => key_of_spki(spki).ok_or(NetError::NoPeerKey),
        _ => Err(NetError::NoPeerKey),
    }
}

/// Records the key a server presented when it was not the expected one.
#[derive(Clone, Debug, Default)]
pub struct KeyProbe(Arc<OnceLock<VerifyingKey>>);

impl KeyProbe {
    /// The unexpected key the server presented, if the handshake saw one.
    pub fn mismatch(&self) -> Option<VerifyingKey> {
        self.0.get().copied()
    }
}

/// Lowercase hex of a public key, for messages and server names.
pub struct KeyHex<'a>(pub &'a VerifyingKey);

impl fmt::Display for KeyHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn spki_of(key: &VerifyingKey) -> Vec<u8> {
    let mut spki = Vec::with_capacity(SPKI_ED25519_PREFIX.len() + 32);
    spki.extend_from_slice(&SPKI_ED25519_PREFIX);
    spki.extend_from_slice(key.as_bytes());
    spki
}

/// Parses an ed25519 SPKI; refuses other algorithms, bad points and small-order (weak) keys.
fn key_of_spki(spki: &[u8]) -> Option<VerifyingKey> {
    let raw: [u8; 32] = spki.strip_prefix(&SPKI_ED25519_PREFIX)?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&raw).ok()?;
    (!key.is_weak()).then_some(key)
}

fn bad_key() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
}

/// Verifies a TLS 1.3 handshake signature made with the raw key in `cert`, ed25519 only.
fn verify_tls13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(cert.as_ref()),
        dss,
        &provider.signature_verification_algorithms,
    )
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

/// Client-side verifier: the server must prove exactly the expected key.
#[derive(Debug)]
struct ExpectedServerKey {
    expected: VerifyingKey,
    probe: KeyProbe,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ExpectedServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(bad_key());
        }
        let presented = key_of_spki(end_entity).ok_or_else(bad_key)?;
        if presented != self.expected {
            let _ = self.probe.0.set(presented);
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Server-side verifier: a client key is mandatory; any well-formed ed25519 key passes.
#[derive(Debug)]
struct AnyClientKey {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientKey {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() || key_of_spki(end_entity).is_none() {
            return Err(bad_key());
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trips_and_matches_rustls() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let spki = spki_of(&key);
        let alg = rustls::pki_types::alg_id::ED25519;
        assert_eq!(
            spki,
            rustls::sign::public_key_to_spki(&alg, key.as_bytes()).as_ref()
        );
        assert_eq!(key_of_spki(&spki), Some(key));
    }

    #[test]
    fn refuses_weak_truncated_and_foreign_keys() {
        // The identity point (y = 1) decodes but has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&identity)
            .expect("decodes")
            .is_weak());
        let mut weak = SPKI_ED25519_PREFIX.to_vec();
        weak.extend(identity);
        assert_eq!(key_of_spki(&weak), None);
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(key_of_spki(&spki_of(&key)[..43]), None);
        let mut foreign = spki_of(&key);
        foreign[8] ^= 1; // another algorithm OID
        assert_eq!(key_of_spki(&foreign), None);
    }

    #[test]
    fn server_name_is_two_hex_labels_and_valid_dns() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let name = server_name(&key);
        let labels: Vec<&str> = name.split('.').collect();
        assert_eq!(labels.len(), 3);
        assert_eq!(
            (labels[0].len(), labels[1].len(), labels[2]),
            (32, 32, "peer")
        );
        assert!(ServerName::try_from(name).is_ok());
    }
}
