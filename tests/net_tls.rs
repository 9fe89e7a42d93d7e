//! Identity-bound QUIC on loopback: mutual raw-public-key auth, impersonation refused, clients
//! in the wrong TLS mode refused, and the endpoint still serving afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kith::net::endpoint::accept;
use kith::net::tls::ALPN;
use kith::net::{NetError, PeerEndpoint};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Every wait in these tests is bounded by this; no test asserts on timing.
const BOUND: Duration = Duration::from_secs(10);

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn endpoint(seed: u8) -> PeerEndpoint {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    PeerEndpoint::bind(loopback, &key(seed)).expect("bind")
}

/// Accepts one connection attempt on `server` and completes it.
async fn accept_one(
    server: &PeerEndpoint,
) -> Result<(quinn::Connection, ed25519_dalek::VerifyingKey), NetError> {
    let incoming = tokio::time::timeout(BOUND, server.incoming())
        .await
        .expect("an attempt arrives")
        .expect("endpoint open");
    accept(incoming).await
}

#[tokio::test]
async fn mutual_auth_shows_each_side_the_others_key() {
    let (server, client) = (endpoint(1), endpoint(2));
    let addr = server.local_addr().expect("addr");
    let (dialed, accepted) = tokio::join!(
        client.dial(addr, key(1).verifying_key()),
        accept_one(&server)
    );
    let (client_conn, server_key) = dialed.expect("dial succeeds");
    let (server_conn, client_key) = accepted.expect("accept succeeds");
    assert_eq!(server_key, key(1).verifying_key());
    assert_eq!(client_key, key(2).verifying_key());
    assert_eq!(
        kith::net::tls::peer_key(&client_conn).expect("key"),
        key(1).verifying_key()
    );
    assert_eq!(
        kith::net::tls::peer_key(&server_conn).expect("key"),
        key(2).verifying_key()
    );
    let alpn = client_conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok());
    assert_eq!(alpn.and_then(|d| d.protocol), Some(ALPN.to_vec()));
}

#[tokio::test]
async fn both_directions_on_one_socket() {
    let (a, b) = (endpoint(3), endpoint(4));
    let (a_addr, b_addr) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
    let (ab, ba) = tokio::join!(a.dial(b_addr, key(4).verifying_key()), accept_one(&b));
    assert_eq!(ab.expect("a dials b").1, key(4).verifying_key());
    assert_eq!(ba.expect("b accepts a").1, key(3).verifying_key());
    let (ba, ab) = tokio::join!(b.dial(a_addr, key(3).verifying_key()), accept_one(&a));
    assert_eq!(ba.expect("b dials a").1, key(3).verifying_key());
    assert_eq!(ab.expect("a accepts b").1, key(4).verifying_key());
}

#[tokio::test]
async fn dialing_k_and_reaching_k_prime_fails_as_key_mismatch() {
    let (impostor, client) = (endpoint(5), endpoint(6));
    let addr = impostor.local_addr().expect("addr");
    let expected = key(7).verifying_key();
    let (dialed, accepted) = tokio::join!(client.dial(addr, expected), accept_one(&impostor));
    match dialed {
        Err(NetError::PeerKeyMismatch(m)) => {
            assert_eq!(m.expected, expected);
            assert_eq!(m.presented, key(5).verifying_key());
        }
        other => panic!("expected PeerKeyMismatch, got {other:?}"),
    }
    assert!(
        matches!(accepted, Err(NetError::Handshake(_))),
        "{accepted:?}"
    );
}

/// A test-only verifier that accepts any server; `rpk` picks the certificate type it asks for.
#[derive(Debug)]
struct AcceptAnyServer {
    rpk: bool,
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ED25519,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ]
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.rpk
    }
}

/// A quinn client config that offers no client key, in X.509 (`rpk = false`) or RPK mode.
fn keyless_client(rpk: bool) -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer { rpk }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic config");
    quinn::ClientConfig::new(Arc::new(quic))
}

async fn refused(server: &PeerEndpoint, config: quinn::ClientConfig) {
    let stranger = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
    let addr = server.local_addr().expect("addr");
    let connecting = stranger
        .connect_with(config, addr, "peer.kith")
        .expect("starts");
    let (dialed, accepted) =
        tokio::join!(tokio::time::timeout(BOUND, connecting), accept_one(server));
    let dialed = dialed.expect("bounded");
    assert!(dialed.is_err(), "the stranger must not get a connection");
    // Refused for the certificate type it offers (X.509, or no client raw public key).
    let why = format!("{accepted:?}");
    assert!(
        matches!(accepted, Err(NetError::Handshake(_))) && why.contains("CertificateType"),
        "{why}"
    );
}

#[tokio::test]
async fn clients_in_the_wrong_tls_mode_are_refused_and_the_endpoint_keeps_serving() {
    let (server, good) = (endpoint(8), endpoint(9));
    refused(&server, keyless_client(false)).await; // X.509 mode: no raw public keys at all.
    refused(&server, keyless_client(true)).await; // raw public keys, but no client key to offer.
    let addr = server.local_addr().expect("addr");
    let (dialed, accepted) =
        tokio::join!(good.dial(addr, key(8).verifying_key()), accept_one(&server));
    assert_eq!(dialed.expect("good client dials").1, key(8).verifying_key());
    assert_eq!(accepted.expect("server accepts").1, key(9).verifying_key());
}
