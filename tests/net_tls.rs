//! Identity-bound QUIC on loopback: mutual raw-public-key auth, impersonation refused, clients
//! in the wrong TLS mode refused, and the endpoint still serving afterwards; TLS session
//! resumption on reconnect, across a restart with the same key, never across identities, and
//! never with a node that restarted under another key.

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

/// Full handshakes the pair (`from`, `to`) has verified so far: a resumed dial adds none. Dials
/// from an endpoint share one TLS config per pair with this probe.
fn full_handshakes(from: u8, to: u8) -> u64 {
    let (_, probe) = kith::net::endpoint::client_config_probed(&key(from), key(to).verifying_key())
        .expect("client config");
    probe.full_handshakes()
}

/// `client` dials `server` (which must prove key `to`), both ends check the keys, and one
/// stream round trip runs, so the session ticket the server sent after the handshake has
/// arrived before the connection is closed.
async fn dial_and_talk(client: &PeerEndpoint, server: &PeerEndpoint, from: u8, to: u8) {
    let addr = server.local_addr().expect("addr");
    let (dialed, accepted) = tokio::join!(
        client.dial(addr, key(to).verifying_key()),
        accept_one(server)
    );
    let (conn, server_key) = dialed.expect("dial succeeds");
    let (server_conn, client_key) = accepted.expect("accept succeeds");
    assert_eq!(server_key, key(to).verifying_key());
    assert_eq!(client_key, key(from).verifying_key());
    assert_eq!(
        kith::net::tls::peer_key(&server_conn).expect("key"),
        key(from).verifying_key()
    );
    let echo = async {
        let (mut send, mut recv) = server_conn.accept_bi().await.expect("stream");
        let got = recv.read_to_end(16).await.expect("read");
        send.write_all(&got).await.expect("write");
        send.finish().expect("finish");
    };
    let ask = async {
        let (mut send, mut recv) = conn.open_bi().await.expect("stream");
        send.write_all(b"ping").await.expect("write");
        send.finish().expect("finish");
        recv.read_to_end(16).await.expect("read")
    };
    let (_, answer) = tokio::time::timeout(BOUND, async { tokio::join!(echo, ask) })
        .await
        .expect("round trip in time");
    assert_eq!(answer, b"ping");
    conn.close(0u32.into(), b"done");
}

/// Binds `seed`'s endpoint on `addr` again once the previous one let the port go (bounded).
async fn rebind(addr: SocketAddr, seed: u8) -> PeerEndpoint {
    for _ in 0..100 {
        if let Ok(endpoint) = PeerEndpoint::bind(addr, &key(seed)) {
            return endpoint;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} not free again");
}

async fn stop(endpoint: PeerEndpoint) {
    endpoint.close(kith::net::CloseCode::Normal);
    let _ = tokio::time::timeout(BOUND, endpoint.quinn().wait_idle()).await;
}

#[tokio::test]
async fn a_reconnect_resumes_even_after_a_restart_with_the_same_key() {
    let (server, alice) = (endpoint(40), endpoint(41));
    dial_and_talk(&alice, &server, 41, 40).await;
    assert_eq!(full_handshakes(41, 40), 1);
    // The reconnect resumes: the server proves nothing new and still sees Alice's proven key.
    dial_and_talk(&alice, &server, 41, 40).await;
    assert_eq!(full_handshakes(41, 40), 1);
    // The server restarts with the same key on the same address: its tickets still open.
    let addr = server.local_addr().expect("addr");
    stop(server).await;
    let server = rebind(addr, 40).await;
    dial_and_talk(&alice, &server, 41, 40).await;
    assert_eq!(full_handshakes(41, 40), 1);
}

#[tokio::test]
async fn another_identity_in_the_same_process_never_resumes_as_the_first() {
    // Alice and Mallory dial from one process (one socket even: the identity is per dial, as in
    // the load-test harness). Mallory's first dial is a full handshake that proves her key.
    let server = endpoint(42);
    let alice = endpoint(43);
    dial_and_talk(&alice, &server, 43, 42).await;
    dial_and_talk(&alice, &server, 43, 42).await;
    assert_eq!(full_handshakes(43, 42), 1);
    let mallory = endpoint(44);
    dial_and_talk(&mallory, &server, 44, 42).await;
    assert_eq!(full_handshakes(44, 42), 1);
}

#[tokio::test]
async fn a_node_restarted_under_another_key_cannot_resume_and_is_refused() {
    let (server, alice) = (endpoint(45), endpoint(46));
    dial_and_talk(&alice, &server, 46, 45).await;
    let addr = server.local_addr().expect("addr");
    stop(server).await;
    // Another key at the address: Alice offers her ticket, the node cannot open it, proves its
    // own key in a full handshake, and Alice refuses it by name.
    let other = rebind(addr, 47).await;
    let (dialed, accepted) = tokio::join!(
        alice.dial(addr, key(45).verifying_key()),
        accept_one(&other)
    );
    match dialed {
        Err(NetError::PeerKeyMismatch(m)) => {
            assert_eq!(m.expected, key(45).verifying_key());
            assert_eq!(m.presented, key(47).verifying_key());
        }
        other => panic!("expected PeerKeyMismatch, got {other:?}"),
    }
    assert!(accepted.is_err(), "{accepted:?}");
    // The refusal came from her verifier, which a resumed handshake never reaches: no resumption.
    assert_eq!(full_handshakes(46, 45), 1);
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
