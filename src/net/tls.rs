//! RFC 7250 raw-public-key TLS 1.3 bound to ed25519 identities.
//!
//! The node's ed25519 identity key is the TLS key, and the "certificate" is only its
//! SubjectPublicKeyInfo (no X.509, no CA). Both sides authenticate:
//!
//! - the **server** requires a client key and accepts any well-formed ed25519 key at the TLS level;
//!   the application decides who is welcome, from [`peer_key`];
//! - the **client** is built per peer with the key it expects and refuses any other (impersonation
//!   fails in the handshake, before a byte of application data).
//!
//! TLS 1.3 only, ed25519 only, ALPN [`ALPN`], SNI off (the server name carries the expected key
//! locally and must not leak in the cleartext Initial), no 0-RTT. Providers are always explicit
//! (ring): nothing here relies on a process-wide default `CryptoProvider`.
//!
//! **Session resumption** (a reconnect skips both signatures and both verifications; the ECDHE
//! exchange still runs). It keeps the key binding of a full handshake:
//!
//! - *Server side.* A ticket is the server's own sealed record of the session ([`TicketKeys`]),
//!   and that record holds the client key the client proved in the full handshake: on resumption
//!   rustls restores the peer's certificate from it, so [`peer_key`] names the key that was
//!   proven, never one the resuming client claims. Using a ticket needs its resumption secret
//!   (the PSK binder of the ClientHello proves it), which only the client that ran the full
//!   handshake holds: a ticket seen on the wire or stolen without that secret is refused. rustls
//!   resumes only in PSK-DHE mode (fresh ECDHE keys for every session) and we send no early data,
//!   so a replayed ClientHello gains nothing.
//! - *Client side.* Tickets are kept per client config, and there is one config per (own key,
//!   expected server key) pair ([`crate::net::endpoint`] caches them). rustls also resumes only
//!   with the very verifier and client credentials the session was made with. So a ticket is
//!   offered only to the key it was issued by, and only for the identity that proved itself; a
//!   server that completes a resumption knows the ticket key, derived from the identity key it
//!   proved when the ticket was issued.
//! - *Ticket keys* are derived from the identity's secret key and the current
//!   [`limits::TLS_TICKET_KEY_PERIOD`] (current and previous period accepted), so a switchboard
//!   restarted with the same key resumes its clients' sessions, and one restarted with another key
//!   cannot open the old tickets (a full handshake follows, which proves the new key, which the
//!   client then refuses if it expected the old one). The cost: whoever steals the identity key
//!   can open the tickets of the last two periods; they could already be that node.
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ProducesTickets;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::NetError;
use crate::limits;

/// The ALPN protocol id of kith's wire protocol, version 1.
pub const ALPN: &[u8] = b"kith/1";

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
    tickets: Arc<TicketKeys>,
}

impl TlsIdentity {
    /// Wraps `key` as a raw-public-key TLS identity.
    pub fn new(key: &SigningKey) -> Result<Self, NetError> {
        let public = key.verifying_key();
        let spki = spki_of(&public);
        let signer = Arc::new(Ed25519Signer {
            key: Arc::new(key.clone()),
            spki: spki.clone(),
        });
        let certified = Arc::new(CertifiedKey::new(vec![CertificateDer::from(spki)], signer));
        let tickets = Arc::new(TicketKeys::new(key));
        Ok(Self {
            certified,
            public,
            tickets,
        })
    }

    /// The public half of the identity.
    pub fn public(&self) -> VerifyingKey {
        self.public
    }
}

/// The identity key as rustls signs with it, over ed25519-dalek: the key we already hold (its
/// public half computed once), where ring's PKCS#8 loader derived the public key again for every
/// identity built (each simulated client of a load test or bench builds one), and dalek signs in
/// about two thirds of ring's time here (measured on this machine: ~25 µs against ~35 µs), once
/// per full handshake on each side.
struct Ed25519Signer {
    key: Arc<SigningKey>,
    /// Our SubjectPublicKeyInfo (what the peer sees as our "certificate").
    spki: Vec<u8>,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret half.
        f.debug_struct("Ed25519Signer")
            .field("public", &KeyHex(&self.key.verifying_key()).to_string())
            .finish_non_exhaustive()
    }
}

impl rustls::sign::SigningKey for Ed25519Signer {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered.contains(&SignatureScheme::ED25519).then(|| {
            Box::new(Ed25519Signing(Arc::clone(&self.key))) as Box<dyn rustls::sign::Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ED25519
    }
}

/// One handshake's signing with the identity key.
struct Ed25519Signing(Arc<SigningKey>);

impl fmt::Debug for Ed25519Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signing").finish_non_exhaustive()
    }
}

impl rustls::sign::Signer for Ed25519Signing {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(ed25519_dalek::Signer::sign(&*self.0, message)
            .to_bytes()
            .to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// The rustls server config: mutual raw-public-key auth, any well-formed ed25519 client key,
/// and one session ticket per handshake (see the module doc for why resumption keeps the binding).
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
    // Tickets are sealed records (stateless): nothing is stored per session on the server.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.ticketer = identity.tickets.clone();
    config.send_tls13_tickets = limits::TLS_TICKETS_PER_HANDSHAKE;
    config.max_early_data_size = 0;
    Ok(config)
}

/// The rustls client config towards one peer: it proves `identity` and accepts only `expected`,
/// and keeps the session tickets that peer sends (rustls holds at most 8 per server name; the
/// config serves one name, and we send [`limits::TLS_TICKETS_PER_HANDSHAKE`]). Reuse the config
/// for every dial to that peer, or nothing is resumed (rustls resumes only with the verifier and
/// credentials a session was made with).
///
/// The returned [`KeyProbe`] records the key the server presented if it was not `expected`, so
/// the dialer can report a named [`NetError::PeerKeyMismatch`] rather than a bare TLS alert, and
/// counts the handshakes in which the server proved its key in full (not resumed).
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
    config.resumption = rustls::client::Resumption::in_memory_sessions(1)
        .tls12_resumption(rustls::client::Tls12Resumption::Disabled);
    config.enable_early_data = false;
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

/// What the client's verifier saw: the key a server presented when it was not the expected one,
/// and how many full handshakes it verified (a resumed one skips the verifier).
#[derive(Clone, Debug, Default)]
pub struct KeyProbe(Arc<ProbeState>);

#[derive(Debug, Default)]
struct ProbeState {
    mismatch: Mutex<Option<VerifyingKey>>,
    full: AtomicU64,
}

impl KeyProbe {
    /// Takes the unexpected key a server presented, if a handshake saw one since the last take.
    /// A config (and its probe) serves every dial to one peer: take it when that dial failed.
    pub fn take_mismatch(&self) -> Option<VerifyingKey> {
        self.0
            .mismatch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Handshakes in which the server proved its key with a signature (not resumed), so far.
    pub fn full_handshakes(&self) -> u64 {
        self.0.full.load(Ordering::Relaxed)
    }
}

/// Full handshakes (the client proved its key with a signature) the server verifiers of this
/// process have seen; a resumed handshake does not count. [`full_server_handshakes`] reads it.
static FULL_SERVER_HANDSHAKES: AtomicU64 = AtomicU64::new(0);

/// Full (not resumed) handshakes this process's servers have verified a client key in: with the
/// accept loop's count of completed handshakes it tells how many were resumed.
pub fn full_server_handshakes() -> u64 {
    FULL_SERVER_HANDSHAKES.load(Ordering::Relaxed)
}

/// Seals and opens session tickets with a key derived from the identity's secret key and the
/// period ([`limits::TLS_TICKET_KEY_PERIOD`]) the ticket was made in. A ticket is
/// `[period: u64 LE][nonce: 24][XSalsa20-Poly1305 box]`; it opens in its own period and the next.
/// The period is bound inside (it selects the key), so a ticket's period cannot be rewritten.
pub(crate) struct TicketKeys {
    /// Derived from the identity's secret key under its own context: the root of every period's
    /// ticket key, never the identity key itself.
    root: [u8; 32],
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKeys")
    }
}

const TICKET_KEY_CONTEXT: &str = "kith 2026-11 tls session ticket keys v1";
const TICKET_PERIOD_BYTES: usize = 8;
const TICKET_NONCE_BYTES: usize = 24;

impl TicketKeys {
    pub(crate) fn new(key: &SigningKey) -> Self {
        Self {
            root: blake3::derive_key(TICKET_KEY_CONTEXT, key.as_bytes()),
        }
    }

    fn cipher(&self, period: u64) -> XSalsa20Poly1305 {
        let key = blake3::keyed_hash(&self.root, &period.to_le_bytes());
        XSalsa20Poly1305::new(key.as_bytes().into())
    }

    /// The period a moment (seconds since the Unix epoch) falls in.
    pub(crate) fn period_at(unix_secs: u64) -> u64 {
        unix_secs / limits::TLS_TICKET_KEY_PERIOD.as_secs().max(1)
    }

    /// Seals `plain` as a ticket of `period`, with a fresh random nonce.
    pub(crate) fn seal(&self, period: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; TICKET_NONCE_BYTES] = rand::random();
        let sealed = self.cipher(period).encrypt(&nonce.into(), plain).ok()?;
        let mut ticket =
            Vec::with_capacity(TICKET_PERIOD_BYTES + TICKET_NONCE_BYTES + sealed.len());
        ticket.extend_from_slice(&period.to_le_bytes());
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    /// Opens a ticket made in period `now` or the one before; `None` for anything else (another
    /// key's ticket, an old one, a tampered or truncated one).
    pub(crate) fn open(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let (period, rest) = ticket.split_first_chunk::<TICKET_PERIOD_BYTES>()?;
        let (nonce, sealed) = rest.split_first_chunk::<TICKET_NONCE_BYTES>()?;
        let period = u64::from_le_bytes(*period);
        if period != now && Some(period) != now.checked_sub(1) {
            return None;
        }
        self.cipher(period).decrypt(nonce.into(), sealed).ok()
    }

    fn now() -> u64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::period_at(secs)
    }
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(limits::TLS_TICKET_KEY_PERIOD.as_secs()).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(Self::now(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(Self::now(), cipher)
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

pub(crate) fn spki_of(key: &VerifyingKey) -> Vec<u8> {
    let mut spki = Vec::with_capacity(SPKI_ED25519_PREFIX.len() + 32);
    spki.extend_from_slice(&SPKI_ED25519_PREFIX);
    spki.extend_from_slice(key.as_bytes());
    spki
}

/// Parses an ed25519 SPKI; refuses other algorithms, bad points and small-order (weak) keys.
pub(crate) fn key_of_spki(spki: &[u8]) -> Option<VerifyingKey> {
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
            *self
                .probe
                .0
                .mismatch
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(presented);
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        self.probe.0.full.fetch_add(1, Ordering::Relaxed);
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
        let valid = verify_tls13(&self.provider, message, cert, dss)?;
        FULL_SERVER_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
        Ok(valid)
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

    use rustls::{ClientConnection, HandshakeKind, ServerConnection};

    fn identity(seed: u8) -> TlsIdentity {
        TlsIdentity::new(&SigningKey::from_bytes(&[seed; 32])).expect("identity")
    }

    /// A client config towards `server`, as the endpoint caches it per pair.
    fn client(me: &TlsIdentity, server: &TlsIdentity) -> (Arc<rustls::ClientConfig>, KeyProbe) {
        let (config, probe) = client_config(me, server.public()).expect("client config");
        (Arc::new(config), probe)
    }

    fn server(me: &TlsIdentity) -> Arc<rustls::ServerConfig> {
        Arc::new(server_config(me).expect("server config"))
    }

    fn connect(
        client: &Arc<rustls::ClientConfig>,
        server: &Arc<rustls::ServerConfig>,
        expected: &TlsIdentity,
    ) -> (ClientConnection, ServerConnection) {
        let name = ServerName::try_from(server_name(&expected.public())).expect("name");
        (
            ClientConnection::new(Arc::clone(client), name).expect("client"),
            ServerConnection::new(Arc::clone(server)).expect("server"),
        )
    }

    /// Everything `from` has to send, in TLS records.
    fn flight<D>(from: &mut rustls::ConnectionCommon<D>) -> Vec<u8> {
        let mut out = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut out).expect("write");
        }
        out
    }

    /// Hands `bytes` to `to` and lets it process them.
    fn deliver<D>(to: &mut rustls::ConnectionCommon<D>, bytes: &[u8]) -> Result<(), rustls::Error> {
        let mut reader = bytes;
        while !reader.is_empty() {
            to.read_tls(&mut reader).expect("read");
            to.process_new_packets()?;
        }
        Ok(())
    }

    /// Runs the handshake and the ticket flight after it, in memory; the first side to fail
    /// (`Err(client error)` or `Err(server error)`) ends it.
    fn run(c: &mut ClientConnection, s: &mut ServerConnection) -> Result<(), Side> {
        for _ in 0..8 {
            let to_server = flight(c);
            deliver(s, &to_server).map_err(Side::Server)?;
            let to_client = flight(s);
            deliver(c, &to_client).map_err(Side::Client)?;
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        Ok(())
    }

    /// Which side failed, and why (read through `Debug` in failure messages).
    #[derive(Debug)]
    #[allow(dead_code)]
    enum Side {
        Client(rustls::Error),
        Server(rustls::Error),
    }

    /// The key each side holds for its peer: (client's view of the server, server's of the client).
    fn keys(c: &ClientConnection, s: &ServerConnection) -> (VerifyingKey, VerifyingKey) {
        let key = |certs: Option<&[CertificateDer<'static>]>| match certs {
            Some([spki]) => key_of_spki(spki).expect("an ed25519 key"),
            other => panic!("unexpected chain {other:?}"),
        };
        (key(c.peer_certificates()), key(s.peer_certificates()))
    }

    #[test]
    fn a_reconnect_resumes_and_both_sides_still_know_the_proven_keys() {
        let (alice, sb) = (identity(1), identity(2));
        let (config, probe) = client(&alice, &sb);
        let server_config = server(&sb);
        let (mut c, mut s) = connect(&config, &server_config, &sb);
        run(&mut c, &mut s).expect("full handshake");
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(probe.full_handshakes(), 1);
        let (mut c, mut s) = connect(&config, &server_config, &sb);
        run(&mut c, &mut s).expect("resumed handshake");
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed));
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
        assert_eq!(keys(&c, &s), (sb.public(), alice.public()));
        // The client's verifier did not run again: the server proved nothing new, it knew the
        // ticket's secret.
        assert_eq!(probe.full_handshakes(), 1);
        // Each resumption earns a new ticket: the next reconnect resumes too.
        let (mut c, mut s) = connect(&config, &server_config, &sb);
        run(&mut c, &mut s).expect("resumed again");
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
    }

    #[test]
    fn a_server_restarted_with_the_same_key_resumes_and_with_another_key_cannot() {
        let (alice, sb) = (identity(1), identity(2));
        let (config, probe) = client(&alice, &sb);
        let (mut c, mut s) = connect(&config, &server(&sb), &sb);
        run(&mut c, &mut s).expect("full handshake");
        // The same key in a new process: new configs, the same ticket keys.
        let restarted = server(&identity(2));
        let (mut c, mut s) = connect(&config, &restarted, &sb);
        run(&mut c, &mut s).expect("resumed after a restart");
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Resumed));
        assert_eq!(keys(&c, &s), (sb.public(), alice.public()));
        // Another key at the same place: the client offers its ticket, the server cannot open it
        // and runs a full handshake, which proves its own key, which the client refuses.
        let other = identity(3);
        let (mut c, mut s) = connect(&config, &server(&other), &sb);
        let refused = run(&mut c, &mut s);
        assert!(
            matches!(
                refused,
                Err(Side::Client(rustls::Error::InvalidCertificate(_)))
            ),
            "{refused:?}"
        );
        assert_eq!(s.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(probe.take_mismatch(), Some(other.public()));
        assert_eq!(probe.take_mismatch(), None);
    }

    /// Where the ticket sits in a resuming ClientHello: our tickets start with their period.
    fn ticket_in(hello: &[u8]) -> std::ops::Range<usize> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        let period = TicketKeys::period_at(now.as_secs()).to_le_bytes();
        let at = hello
            .windows(period.len())
            .position(|w| w == period)
            .expect("a ticket in the ClientHello");
        let len = u16::from_be_bytes([hello[at - 2], hello[at - 1]]) as usize;
        at..at + len
    }

    #[test]
    fn a_ticket_seen_on_the_wire_does_not_let_another_key_resume() {
        let (victim, mallory, sb) = (identity(1), identity(9), identity(2));
        let server_config = server(&sb);
        let (victim_config, _) = client(&victim, &sb);
        let (mallory_config, _) = client(&mallory, &sb);
        for config in [&victim_config, &mallory_config] {
            let (mut c, mut s) = connect(config, &server_config, &sb);
            run(&mut c, &mut s).expect("full handshake");
        }
        // The victim's next ClientHello crosses the network: its ticket is in clear.
        let (mut c, _) = connect(&victim_config, &server_config, &sb);
        let victims_hello = flight(&mut c);
        let stolen = victims_hello[ticket_in(&victims_hello)].to_vec();
        // Mallory resumes her own session with the victim's ticket in its place (same length:
        // the same kind of session record). She cannot make the binder without the victim's
        // resumption secret.
        let (mut c, mut s) = connect(&mallory_config, &server_config, &sb);
        let mut hello = flight(&mut c);
        let place = ticket_in(&hello);
        assert_eq!(place.len(), stolen.len());
        hello[place].copy_from_slice(&stolen);
        let refused = deliver(&mut s, &hello);
        assert_eq!(
            refused,
            Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::IncorrectBinder
            ))
        );
        assert!(s.peer_certificates().is_none());
        // And with her own ticket untouched she resumes as herself, not as anyone else.
        let (mut c, mut s) = connect(&mallory_config, &server_config, &sb);
        run(&mut c, &mut s).expect("her own session");
        assert_eq!(keys(&c, &s).1, mallory.public());
    }

    #[test]
    fn tickets_open_in_their_period_and_the_next_only_and_only_with_their_key() {
        let keys = TicketKeys::new(&SigningKey::from_bytes(&[1; 32]));
        let ticket = keys.seal(100, b"session").expect("sealed");
        assert_eq!(keys.open(100, &ticket).as_deref(), Some(&b"session"[..]));
        assert_eq!(keys.open(101, &ticket).as_deref(), Some(&b"session"[..]));
        assert_eq!(keys.open(102, &ticket), None);
        assert_eq!(keys.open(99, &ticket), None);
        // Another identity's keys, a rewritten period, a flipped bit, a truncation: refused.
        let other = TicketKeys::new(&SigningKey::from_bytes(&[2; 32]));
        assert_eq!(other.open(100, &ticket), None);
        let mut moved = ticket.clone();
        moved[..8].copy_from_slice(&101u64.to_le_bytes());
        assert_eq!(keys.open(101, &moved), None);
        let mut flipped = ticket.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(keys.open(100, &flipped), None);
        assert_eq!(keys.open(100, &ticket[..20]), None);
        assert_eq!(keys.open(100, &[]), None);
        // Fresh nonces: the same record never seals to the same ticket.
        assert_ne!(keys.seal(100, b"session"), Some(ticket));
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
